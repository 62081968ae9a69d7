#!/usr/bin/env bash
set -euo pipefail
cd "${CHECKOUT:-.}"   # a scratch clone with data.source = the 50Agree file
export PATH=/tmp/p5/.venv/bin:$PATH HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p out
set_prune() {  # set_prune <teacher> <seed> <layers>
  python - "$1" "$2" "$3" <<'PY'
import re, sys
from pathlib import Path
p = Path("params.yaml"); s = p.read_text()
a, b = s.index("\nprune:"), s.index("\nfinetune:")
part = re.sub(r"\n  teacher: \S+\n", f"\n  teacher: {sys.argv[1]}\n", s[a:b], count=1)
part = re.sub(r"\n  seed: \d+\n", f"\n  seed: {sys.argv[2]}\n", part, count=1)
part, n = re.subn(r"\n  layers_keep: \d+", f"\n  layers_keep: {sys.argv[3]}", part, count=1)
assert n == 1, "layers_keep not found"
p.write_text(s[:a] + part + s[b:])
PY
}
prune_as() {  # prune_as <teacher> <seed> <layers> <name>
  set_prune "$1" "$2" "$3"
  date; echo "prune $*"
  python stages/prune.py
  rm -rf "models/$4"; mv models/minilm-pruned "models/$4"
  cp metrics/prune.json "out/prune-$4.json"
}
prune_as minilm 42 5 p5-src42
prune_as minilm 45 5 p5-src45
rm -rf models/mpnet; cp -r mpnet-teacher models/mpnet
prune_as mpnet 42 5 p5-mpnet42
prune_as mpnet 45 5 p5-mpnet45
date; echo done
