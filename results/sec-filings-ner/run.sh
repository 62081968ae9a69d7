#!/bin/bash
# SEC-filings NER runs, as recorded in README.md. From the repository root:
#   bash results/sec-filings-ner/run.sh 42 [43 44]
#   NER_PARAMS=results/sec-filings-ner/ner-params-document-val.yaml \
#     bash results/sec-filings-ner/run.sh 42 43 44
#   NER_PARAMS=results/sec-filings-ner/ner-params-refit.yaml W=.tmp/ner-refit \
#     bash results/sec-filings-ner/run.sh 42 43 44        # refit/ (train again on all of FIN5)
# Levers on validation by document (levers/document-val-levers.json): ner-params-document-val.yaml
# with the model entry extended by `tag_scheme: io`, or by `mention_swap_copies: 2,
# mention_swap_p: 0.5` / `1.0` (seeds 42 43 44 for io and for 1.0), each with NO_BENCH=1 and its own W.
# INT8 keep sets (levers/int8-keep-doc-seed42.json), after the by-document seed-42 run in $W:
#   python tools/ner_int8_keep.py --model $W/seed42/models/ner-minilm \
#     --export $W/seed42/exports/ner-minilm --prepared $W/prepared --keep none --keep 0,1 \
#     --keep 0,1,2 --keep 0,1,2,3,4 --keep classifier --each-layer --out int8-keep-doc-seed42.json
# Writes to $W (default .tmp/sec-ner/: models, exports, metrics); copy the JSON you report into
# this folder.
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export W=${W:-.tmp/sec-ner} MODEL=${MODEL:-ner-minilm} NER_PARAMS=${NER_PARAMS:-results/sec-filings-ner/ner-params.yaml}
mkdir -p $W
python - <<'PY'
import os, yaml
base = yaml.safe_load(open("params.yaml"))
extra = yaml.safe_load(open(os.environ["NER_PARAMS"]))
base["ner"] = extra.pop("ner")
for section, values in extra.items():  # e.g. export: {reduce_range: [ner-mpnet]}
    base[section].update(values)
yaml.safe_dump(base, open(os.environ["W"] + "/params.yaml", "w"), sort_keys=False)
PY
P=$W/params.yaml
python stages/prepare_ner.py --params $P --out $W/prepared --metrics $W/data-ner.json
[ -f $W/baseline.json ] || python -m finslm.ner.baseline $W/prepared > $W/baseline.json
for seed in "${@:-42}"; do
  R=$W/seed$seed
  nice -n "${NICE:-5}" python stages/train_ner.py ${MODEL:-ner-minilm} --params $P --prepared $W/prepared \
    --models $R/models --metrics $R/metrics --plots $R/plots --seed $seed
  nice -n "${NICE:-5}" python stages/evaluate_ner.py ${MODEL:-ner-minilm} --prepared $W/prepared --models $R/models \
    --out $R/eval --threads 1
  nice -n "${NICE:-5}" python stages/export_ner.py ${MODEL:-ner-minilm} --params $P --prepared $W/prepared \
    --models $R/models --exports $R/exports --metrics $R/export
  nice -n "${NICE:-5}" python stages/evaluate_ner.py ${MODEL:-ner-minilm} --prepared $W/prepared --models $R/models \
    --out $R/eval-int8 --backend onnx-int8 --threads 1
done
[ -n "${NO_BENCH:-}" ] && exit 0
R=$W/seed${1:-42}  # the benchmark times the first seed's model and exports
nice -n "${NICE:-5}" python stages/benchmark_ner.py --params $P --prepared $W/prepared --models $R/models \
  --exports $R/exports --out $R/bench/benchmark-ner.json --table $R/bench/benchmark-ner.md
