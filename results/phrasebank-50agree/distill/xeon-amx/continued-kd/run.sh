#!/usr/bin/env bash
# Continued distillation: the soup default (models/minilm) trained further on the MPNet
# teacher's soft labels, nothing cut (prune with layers_keep 6, ffn_keep 1.0, soup_size 1).
set -euo pipefail
cd /tmp/p5   # the scratch clone of ../../prune/cut5/run.sh (real 50Agree split, soup source, MPNet teacher)
source <(sed -n '/^set_prune()/,/^}$/p;/^prune_as()/,/^}$/p' chain.sh)
export PATH=/tmp/p5/.venv/bin:$PATH HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
for s in 42 45 48; do prune_as mpnet $s 6 kd6-mpnet$s; done
for s in 42 45 48; do finslm export models/kd6-mpnet$s --metrics out/export-kd6-mpnet$s.json; done
python tools/distill_study.py --name kd6 --students 42=kd6-mpnet42 45=kd6-mpnet45 48=kd6-mpnet48 --out out/study-kd6.json
date; echo done
