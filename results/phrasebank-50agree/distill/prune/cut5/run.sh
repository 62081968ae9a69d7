#!/usr/bin/env bash
# How this folder was made (2026-12-04, Intel Xeon with AMX, 2 cores), in a scratch clone of the
# repo at 1c3567d with params.yaml's data.source set to the PhraseBank 50Agree file:
#   python stages/prepare.py && python stages/train.py minilm     # the soup default (source)
#   bash chain.sh    # prunes with prune.layers_keep 5 (seeds 42, 45; recovered from the source)
# The MPNet-teacher lines of chain.sh failed at once (prune.teacher needs models.mpnet in
# params.yaml) and were not rerun. Then, per model (minilm, p5-src42, p5-src45, and the
# 4-layer default cut retrained as p4-src42-repro):
#   finslm export models/<m> --metrics export-<m>.json
#   python tools/distill_study.py --name p5a --students 1=minilm 2=p5-src42 --out study-a.json
#   python tools/distill_study.py --name p5b --students 3=p5-src45 --out study-b.json
#   python tools/distill_study.py --name p4 --students 5=p4-src42-repro --out study-p4.json
#   python stages/benchmark.py --params params-bench.yaml --metrics benchmark.json \
#       --markdown benchmark.md --csv /tmp/b.csv --plots /tmp/b   # variants: see benchmark.md
# Later the same day, in the same clone with models.mpnet uncommented in params.yaml and the
# MPNet teacher (trained on this host, docs/methods/distillation.md) at models/mpnet:
#   bash chain-mpnet.sh   # prune.teacher mpnet, layers_keep 5, seeds 42 and 45 -> p5-mpnet42/45
#   finslm export models/p5-mpnet42 --metrics export-p5-mpnet42.json   (and p5-mpnet45)
#   python tools/distill_study.py --name p5m --students 6=p5-mpnet42 7=p5-mpnet45 \
#       --out study-mpnet.json
# Not benchmarked again: the MPNet-recovered cuts have the 5-layer graphs of p5-src42/45.
echo "see the comments: this file records the commands, it does not rerun them"
