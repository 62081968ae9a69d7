#!/usr/bin/env bash
# The serving load test of the SEC-filings tagger (README.md). Needs the model and the prepared
# split of a by-document run: W=.tmp/ner-doc NO_BENCH=1 NER_PARAMS=results/sec-filings-ner/ner-params-document-val.yaml \
#   bash results/sec-filings-ner/run.sh 42
set -euo pipefail
W=${W:-.tmp/ner-doc}
python -m finslm.serve.loadtest --model "$W/seed42/exports/ner-minilm" \
    --test "$W/prepared/test.parquet" --duration 10 --repeats 2 \
    --metrics results/sec-filings-ner/serve/serve-int8.json \
    --report results/sec-filings-ner/serve/serve-int8.md
