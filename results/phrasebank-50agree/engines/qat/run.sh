#!/usr/bin/env bash
# Quantisation-aware fine-tuning runs (docs/speed.md). In a checkout whose data.source is the
# PhraseBank 50Agree file, after `dvc repro prepare train@minilm export@minilm`.
set -euo pipefail
common=(--model models/minilm --train data/prepared/train.parquet --val data/prepared/val.parquet
        --test data/prepared/test.parquet --default-int8 exports/minilm/model.int8.onnx)
python tools/qat.py "${common[@]}" --out /tmp/qat-logits --epochs 2 --lr 2e-5 --hidden-weight 0 \
    --report qat-logits-lr2e-5-decay.json
python tools/qat.py "${common[@]}" --out /tmp/qat-hidden --epochs 2 --lr 2e-5 --hidden-weight 1 \
    --report qat-hidden-lr2e-5-decay.json
python tools/qat.py "${common[@]}" --out /tmp/qat-default --epochs 2 --lr 3e-6 --hidden-weight 1 \
    --report qat-hidden-lr3e-6-decay.json
