#!/usr/bin/env bash
set -euo pipefail
cd /tmp/p5   # the scratch clone of run.sh
source <(sed -n '/^set_prune()/,/^}$/p;/^prune_as()/,/^}$/p' chain.sh)
export PATH=/tmp/p5/.venv/bin:$PATH HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
prune_as mpnet 42 5 p5-mpnet42
prune_as mpnet 45 5 p5-mpnet45
date; echo done
