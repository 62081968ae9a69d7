#!/usr/bin/env bash
# The pruned MiniLM recovered from the MPNet teacher against the one recovered from its unpruned
# source (issue #23), as run for this folder on 2026-12-03. Run from the root of the checkout
# that ran ../run.sh (models/mpnet trained, ../params.yaml laid over params.yaml), with the
# renamed pruned models listed as in ../params.yaml's soups (distill.students entries
# `minilm-pruned-mpnet`, `minilm-pruned-mpnet45`, `minilm-pruned-src`: {teacher: mpnet}, only
# so that export accepts their names) and in export.models.
# Every step is the DVC stage's own script; `dvc repro prune` runs the same one.
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
here=results/phrasebank-50agree/distill/prune
set_prune() {  # set_prune <teacher> <seed>: prune.teacher and prune.seed in params.yaml
  python - "$1" "$2" <<'PY'
import re, sys
from pathlib import Path
p = Path("params.yaml"); s = p.read_text()
a, b = s.index("\nprune:"), s.index("\nfinetune:")
part = re.sub(r"\n  teacher: \S+\n", f"\n  teacher: {sys.argv[1]}\n", s[a:b], count=1)
part = re.sub(r"\n  seed: \d+\n", f"\n  seed: {sys.argv[2]}\n", part, count=1)
p.write_text(s[:a] + part + s[b:])
PY
}
prune_as() {  # prune_as <teacher> <seed> <name>: one prune stage, renamed and exported
  set_prune "$1" "$2"
  python stages/prune.py
  rm -rf "models/$3"; mv models/minilm-pruned "models/$3"
  cp metrics/prune.json "$here/prune-$3.json"
  python stages/export.py "$3"; cp "metrics/export/$3.json" "$here/export/export-$3.json"
}
python stages/train.py minilm      # the soup default (3 x 6 epochs, seeds 42-44): the source
cp metrics/train/minilm.json "$here/train-minilm.json"
python stages/export.py minilm; cp metrics/export/minilm.json "$here/export/export-minilm.json"
prune_as mpnet 42 minilm-pruned-mpnet
prune_as minilm 42 minilm-pruned-src
prune_as mpnet 45 minilm-pruned-mpnet45
python tools/distill_study.py --name prune-mpnet --students 1=minilm 3=minilm-pruned-mpnet \
  --out "$here/study-mpnet.json"
python tools/distill_study.py --name prune-src --students 2=minilm-pruned-src \
  --out "$here/study-src.json"
python tools/distill_study.py --name prune-mpnet45 --students 4=minilm-pruned-mpnet45 \
  --out "$here/study-mpnet45.json"
# the benchmark row of the teacher beside MiniLM (variants as in benchmark.md here)
python stages/benchmark.py --params params-bench.yaml --metrics "$here/benchmark.json" \
  --csv "$here/benchmark.csv" --markdown "$here/benchmark.md" --plots /tmp/bench-plots
