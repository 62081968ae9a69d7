#!/usr/bin/env bash
# The engines on a Xeon with AMX (docs/speed.md, "A Xeon with AMX"). In a checkout whose
# params.yaml has data.source = the PhraseBank 50Agree file, models.minilm.epochs: 3 and
# soup_size: 1 (as results/phrasebank-50agree/engines/ on the AMD host), from its root.
set -euo pipefail
python stages/prepare.py && python stages/train.py minilm && python stages/export.py minilm
# every-layer INT8 graphs: validation (int8-explore.json), then the same graphs on test
python tools/int8_explore.py --model models/minilm --export exports/minilm \
    --val data/prepared/val.parquet --train data/prepared/train.parquet \
    --only dynamic-keep dynamic-all dynamic-all-reduce-range --out int8-explore.json
python tools/int8_explore.py --model models/minilm --export exports/minilm \
    --val data/prepared/test.parquet --train data/prepared/train.parquet \
    --only dynamic-keep dynamic-all dynamic-all-reduce-range --work int8-explore-test \
    --out int8-explore-test.json
python tools/engines.py build --model models/minilm --export exports/minilm \
    --train data/prepared/train.parquet --val data/prepared/val.parquet --out build.json
# exports-all / exports-rr: exports/minilm with model.int8.onnx replaced by int8_explore's
# dynamic-all.onnx (8-bit weights) / dynamic-all-reduce-range.onnx (7-bit)
for v in all:dynamic-all rr:dynamic-all-reduce-range; do
    mkdir -p "exports-${v%%:*}/minilm"
    cp exports/minilm/{config.json,finslm.json,tokenizer.json,tokenizer_config.json,model.onnx,model.opt.onnx} \
        "exports-${v%%:*}/minilm/"
    cp "int8-explore/${v#*:}.onnx" "exports-${v%%:*}/minilm/model.int8.onnx"
done
python tools/ov_padding.py --export exports/minilm --test data/prepared/test.parquet \
    --val data/prepared/val.parquet --out ov-padding.json
# bench-run<k>.json: this command at four states of the code: runs 1 and 2 before the
# OpenVINO padding, run 3 with both OpenVINO backends padded to 16 tokens, run 4 as committed
# (openvino-int8 padded, openvino-fp32 not)
python tools/engines.py bench --model models/minilm --export exports/minilm \
    --test data/prepared/test.parquet --warmup 120 --latency-sentences 300 --repeats 3 --rss \
    --backends torch-fp32 onnx-opt onnx-int8 openvino-fp32 openvino-int8 ct2-int8 \
    --variant minilm-all-int8-rr=exports-rr/minilm:onnx-int8 \
    --variant minilm-all-int8=exports-all/minilm:onnx-int8 --out bench-run4.json
# every engine at one thread (bench-threads1.json)
python tools/engines.py bench --model models/minilm --export exports/minilm \
    --test data/prepared/test.parquet --warmup 120 --latency-sentences 300 --repeats 3 --threads 1 \
    --backends torch-fp32 onnx-int8 openvino-int8 ct2-int8 \
    --variant minilm-all-int8=exports-all/minilm:onnx-int8 --out bench-threads1.json
# where OpenVINO INT8 spends a bulk pass, and the Amdahl bound on the batch-32 bar
# (ov-profile.json; 3523 = onnxruntime's INT8 GEMM probe in bench-run4.json)
python tools/ov_profile.py --export exports/minilm --test data/prepared/test.parquet \
    --val data/prepared/val.parquet --peak-gops 3523 --out ov-profile.json
# 2026-12-05, a model retrained by the lines at the top: two streams against the latency hint,
# twice (ov-streams-1.json, ov-streams-2.json; 3063 = that session's onnxruntime INT8 probe)
for i in 1 2; do
    python tools/ov_profile.py --export exports/minilm --test data/prepared/test.parquet \
        --peak-gops 3063 --streams 2 --out "ov-streams-$i.json"
done
