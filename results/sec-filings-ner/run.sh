#!/bin/bash
# SEC-filings NER runs, as recorded in README.md. From the repository root:
#   bash results/sec-filings-ner/run.sh 42 [43 44]
# Writes to .tmp/sec-ner/ (models, exports, metrics); copy the JSON you report into this folder.
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
W=.tmp/sec-ner
mkdir -p $W
python - <<'PY'
import yaml
base = yaml.safe_load(open("params.yaml"))
base["ner"] = yaml.safe_load(open("results/sec-filings-ner/ner-params.yaml"))["ner"]
yaml.safe_dump(base, open(".tmp/sec-ner/params.yaml", "w"), sort_keys=False)
PY
P=$W/params.yaml
python stages/prepare_ner.py --params $P --out $W/prepared --metrics $W/data-ner.json
python -m finslm.ner.baseline $W/prepared > $W/baseline.json
for seed in "${@:-42}"; do
  R=$W/seed$seed
  nice -n "${NICE:-5}" python stages/train_ner.py ner-minilm --params $P --prepared $W/prepared \
    --models $R/models --metrics $R/metrics --plots $R/plots --seed $seed
  nice -n "${NICE:-5}" python stages/evaluate_ner.py ner-minilm --prepared $W/prepared --models $R/models \
    --out $R/eval --threads 1
  nice -n "${NICE:-5}" python stages/export_ner.py ner-minilm --params $P --prepared $W/prepared \
    --models $R/models --exports $R/exports --metrics $R/export
  nice -n "${NICE:-5}" python stages/evaluate_ner.py ner-minilm --prepared $W/prepared --models $R/models \
    --out $R/eval-int8 --backend onnx-int8 --threads 1
done
R=$W/seed${1:-42}  # the benchmark times the first seed's model and exports
nice -n "${NICE:-5}" python stages/benchmark_ner.py --params $P --prepared $W/prepared --models $R/models \
  --exports $R/exports --out $R/bench/benchmark-ner.json --table $R/bench/benchmark-ner.md
