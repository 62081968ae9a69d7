#!/bin/bash
# prepare_ner + train_ner only: the validation figure of one params file, per seed (the test split
# is not scored). From the repository root, with the project venv on PATH (make setup):
#   SEEDS="42 43 44" bash results/sec-filings-ner/levers/train-only.sh \
#     results/sec-filings-ner/levers/ner-params-context64.yaml .tmp/ctx64
# Validation entity micro-F1 of the restored epoch: <W>/seed<k>/metrics/ner-minilm.json ("val").
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
NER_PARAMS=$1 W=$2
mkdir -p "$W"
NER_PARAMS=$NER_PARAMS W=$W python - <<'PY'
import os, yaml
base = yaml.safe_load(open("params.yaml"))
extra = yaml.safe_load(open(os.environ["NER_PARAMS"]))
base["ner"] = extra.pop("ner")
yaml.safe_dump(base, open(os.environ["W"] + "/params.yaml", "w"), sort_keys=False)
PY
python stages/prepare_ner.py --params "$W/params.yaml" --out "$W/prepared" --metrics "$W/data-ner.json"
for seed in ${SEEDS:-42}; do
  python stages/train_ner.py ner-minilm --params "$W/params.yaml" --prepared "$W/prepared" \
    --models "$W/seed$seed/models" --metrics "$W/seed$seed/metrics" --plots "$W/seed$seed/plots" --seed "$seed"
done
