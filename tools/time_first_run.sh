#!/bin/bash
# Time the first `dvc repro` from nothing: a fresh clone of this repository (committed state),
# this checkout's .venv linked in, an empty DVC cache; each output line gets a timestamp so the
# stages' seconds can be read off the "Running stage" lines. Then two no-op runs.
#   bash tools/time_first_run.sh [/tmp/first-run]      # results in <dir>.log / <dir>-time.log
#   FORCE=1 bash tools/time_first_run.sh ...           # dvc repro --force: every stage runs
# Without FORCE, stages whose outputs are committed to git (evaluate, benchmark: metrics and
# reports) are skipped when the retrained models hash the same as in dvc.lock, which they do on
# a CPU like the one that wrote dvc.lock (training is deterministic); FORCE=1 times them too.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-/tmp/first-run}"
rm -rf "$dir" && git clone -q "$repo" "$dir" && cd "$dir"
ln -s "$repo/.venv" .venv
export PATH="$dir/.venv/bin:$PATH" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
dvc config --local core.analytics false
start=$(date +%s.%N)
/usr/bin/time -v dvc repro ${FORCE:+--force} 2>"$dir-time.log" |
  while IFS= read -r line; do printf '%s %s\n' "$(date +%s.%N)" "$line"; done >"$dir.log"
end=$(date +%s.%N)
python3 - "$dir.log" "$start" "$end" <<'PY'
import re, sys
log, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
marks = []
for line in open(log, encoding="utf-8"):
    stamp, _, rest = line.partition(" ")
    m = re.match(r"Running stage '([^']*)'", rest)
    if m:
        marks.append((m.group(1), float(stamp)))
for i, (name, t) in enumerate(marks):
    nxt = marks[i + 1][1] if i + 1 < len(marks) else end
    print(f"{name:32s} {nxt - t:7.1f} s")
print(f"{'total (wall)':32s} {end - start:7.1f} s")
PY
for i in 1 2; do
  s=$(date +%s.%N); dvc repro >/dev/null; e=$(date +%s.%N)
  python3 -c "print(f'no-op dvc repro: {$e - $s:.2f} s')"
done
