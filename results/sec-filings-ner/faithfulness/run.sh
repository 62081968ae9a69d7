set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
source .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export W=.tmp/sec-ner-faith NER_PARAMS=results/sec-filings-ner/ner-params.yaml
mkdir -p $W
python - <<'PY'
import os, yaml
base = yaml.safe_load(open("params.yaml"))
extra = yaml.safe_load(open(os.environ["NER_PARAMS"]))
base["ner"] = extra.pop("ner")
base["ner"]["explain_entities"] = 50
yaml.safe_dump(base, open(os.environ["W"] + "/params.yaml", "w"), sort_keys=False)
PY
P=$W/params.yaml
python stages/prepare_ner.py --params $P --out $W/prepared --metrics $W/data-ner.json
R=$W/seed42
time python stages/train_ner.py ner-minilm --params $P --prepared $W/prepared --models $R/models --metrics $R/metrics --plots $R/plots --seed 42
time python stages/evaluate_ner.py ner-minilm --params $P --prepared $W/prepared --models $R/models --out $R/eval --threads 1 --explain-out $R/explain
