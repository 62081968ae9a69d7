#!/usr/bin/env bash
# Temperature 4 vs 2 on one host (README.md here). From the root of a checkout whose params.yaml
# has ../params.yaml laid over it, then: data.source = the PhraseBank 50Agree file,
# export.reduce_range: false, distill.teachers.mpnet.augment_copies: 0, and in distill.students
#   minilm-t42/45/48: {teacher: mpnet, alpha: 0.5, temperature: 4.0, epochs: 6, seed: <s>, augmented: false}
#   minilm-tsoup: {teacher: mpnet}
# with minilm-t42 minilm-t45 minilm-t48 minilm-tsoup added to export.models.
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
finslm models install all-mpnet-base-v2
python stages/prepare.py
python stages/train.py mpnet && python stages/evaluate.py mpnet
python stages/distill.py logits mpnet
for s in minilm-t42 minilm-t45 minilm-t48 minilm-d42 minilm-d45 minilm-d48; do
  python stages/distill.py student "$s" && python stages/export.py "$s"
done
finslm soup models/minilm-tsoup models/minilm-t42 models/minilm-t45 models/minilm-t48 --method uniform
python stages/export.py minilm-tsoup
python stages/export.py mpnet     # 8-bit weights: passes the gate on a VNNI/AMX CPU
D=results/phrasebank-50agree/distill/xeon-amx
python tools/distill_study.py --name temperature4 --students 42=minilm-t42 45=minilm-t45 48=minilm-t48 \
  --baseline results/phrasebank-50agree/ablation/soup3.json --out $D/temp4.json
python tools/distill_study.py --name plain-t2-this-host --students 42=minilm-d42 45=minilm-d45 48=minilm-d48 \
  --baseline results/phrasebank-50agree/ablation/soup3.json --out $D/plain-t2.json
python tools/distill_study.py --name tsoup --students 1=minilm-tsoup --out $D/tsoup.json
python tools/distill_study.py --name teacher --students 42=mpnet --out $D/teacher.json
# alpha 0.3: distill.students minilm-l42/45/48 = the minilm-d entries with alpha: 0.3
for s in minilm-l42 minilm-l45 minilm-l48; do
  python stages/distill.py student "$s" && python stages/export.py "$s"
done
python tools/distill_study.py --name alpha0.3 --students 42=minilm-l42 45=minilm-l45 48=minilm-l48 \
  --baseline results/phrasebank-50agree/ablation/soup3.json --out $D/alpha03.json
# T 4 (and alpha 0.3) minus T 2: differences of the per_seed blocks of temp4.json (alpha03.json)
# and plain-t2.json, seed by seed
# Intermediate-layer matching (hidden.json) and the seeded plain students (plain-seeded.json):
# distill.teachers.mpnet.hidden_layers: [4, 8, 12], and in distill.students
#   minilm-e42/45/48: the minilm-d entries (same recipe, run with the seeded head)
#   minilm-h42/45/48: the same plus hidden_weight: 1.0, hidden_layers: [2, 4, 6]
python stages/distill.py logits mpnet     # logits unchanged; adds hidden_4/8/12
for s in 42 45 48; do
  for arm in h e; do python stages/distill.py student minilm-$arm$s; done
done
for s in 42 45 48; do for arm in h e; do python stages/export.py minilm-$arm$s; done; done
python tools/distill_study.py --name hidden --students 42=minilm-h42 45=minilm-h45 48=minilm-h48 \
  --baseline results/phrasebank-50agree/ablation/soup3.json --out $D/hidden.json
python tools/distill_study.py --name plain-seeded --students 42=minilm-e42 45=minilm-e45 48=minilm-e48 \
  --baseline results/phrasebank-50agree/ablation/soup3.json --out $D/plain-seeded.json
# Four augmented copies (augment4.json): distill.teachers.mpnet: augment_copies: 4, hidden_layers: []
# (the minilm-h entries removed: they need the cached layers), and in distill.students
#   minilm-g42/45/48: {teacher: mpnet, alpha: 0.5, temperature: 2.0, epochs: 3, seed: <s>, augmented: true}
python stages/distill.py logits mpnet     # 3,479 train rows + 13,904 copies: 9 min here
for s in 42 45 48; do python stages/distill.py student minilm-g$s; done
for s in 42 45 48; do python stages/export.py minilm-g$s; done
python tools/distill_study.py --name augment4 --students 42=minilm-g42 45=minilm-g45 48=minilm-g48 \
  --baseline results/phrasebank-50agree/ablation/soup3.json --out $D/augment4.json
# Six epochs over the four copies (augment4-6ep.json): distill.students minilm-k42/45/48 = the
# minilm-g entries with epochs: 6 (same teacher logits), exported like the others
for s in 42 45 48; do python stages/distill.py student minilm-k$s; done
for s in 42 45 48; do python stages/export.py minilm-k$s; done
python tools/distill_study.py --name augment4-6ep --students 42=minilm-k42 45=minilm-k45 48=minilm-k48 \
  --baseline results/phrasebank-50agree/ablation/soup3.json --out $D/augment4-6ep.json
