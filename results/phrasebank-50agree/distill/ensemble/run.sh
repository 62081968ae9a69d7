#!/usr/bin/env bash
# Three MPNet teachers (train.seed 42, 43, 44) and their ensemble as one teacher (issue #23;
# README.md here). From the root of a checkout whose params.yaml has ../params.yaml laid over it
# with: data.source = the PhraseBank 50Agree file; export.reduce_range: false;
#   models.mpnet43, models.mpnet44, models.mpnet-ens = copies of models.mpnet (mpnet-ens is never
#     trained: it only names the averaged logits file, which the config check wants under models);
#   distill.teachers: {mpnet, mpnet43, mpnet44, mpnet-ens}: {batch_size: 64} each, no augmented copies;
#   distill.students minilm-x42/45/48: {teacher: mpnet-ens, alpha: 0.5, temperature: 2.0,
#     epochs: 6, seed: <s>, augmented: false}  (the recipe of ../xeon-amx's minilm-e<s>);
#   minilm-y42/45/48: the same with teacher: mpnet44 (the teacher with the best validation score)
# and minilm-x42/45/48, minilm-y42/45/48, mpnet, mpnet43, mpnet44 in export.models.
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
D=results/phrasebank-50agree/distill/ensemble
# setseed rewrites params.yaml's train.seed (through PyYAML: the file loses its comments)
setseed() { python3 -c "
import yaml,sys; p=yaml.safe_load(open('params.yaml')); p['train']['seed']=int(sys.argv[1])
yaml.safe_dump(p,open('params.yaml','w'),sort_keys=False)" "$1"; }
finslm models install all-mpnet-base-v2
python stages/prepare.py
for pair in 42:mpnet 43:mpnet43 44:mpnet44; do       # each ~14 min on the Xeon, 2 threads
  setseed "${pair%%:*}"
  python stages/train.py "${pair#*:}"
  python stages/evaluate.py "${pair#*:}"
  python stages/distill.py logits "${pair#*:}"
done
setseed 42
python tools/teacher_ensemble.py --members mpnet mpnet43 mpnet44 --name mpnet-ens \
  --phrasebank-folder ../shared/data/FinancialPhraseBank-v1.0 --out $D/teachers.json
for s in minilm-x42 minilm-x45 minilm-x48; do
  python stages/distill.py student "$s" && python stages/export.py "$s"
done
python tools/distill_study.py --name ensemble-teacher --students 42=minilm-x42 45=minilm-x45 48=minilm-x48 \
  --baseline results/phrasebank-50agree/ablation/soup3.json --out $D/students.json
for m in mpnet mpnet43 mpnet44; do python stages/export.py "$m"; done   # 8-bit INT8 (VNNI/AMX)
python tools/distill_study.py --name teachers --students 42=mpnet 43=mpnet43 44=mpnet44 \
  --out $D/teachers-3seeds.json
for m in mpnet mpnet43 mpnet44; do
  cp metrics/export/$m.json $D/export-$m.json; cp metrics/train/$m.json $D/train-$m.json
done
# The teacher chosen on validation (seed 44: val macro-F1 0.854, the best of the three) as the
# single teacher: distill.students minilm-y42/45/48 = the minilm-x entries with teacher: mpnet44
for s in minilm-y42 minilm-y45 minilm-y48; do
  python stages/distill.py student "$s" && python stages/export.py "$s"
done
python tools/distill_study.py --name best-val-teacher --students 42=minilm-y42 45=minilm-y45 48=minilm-y48 \
  --baseline results/phrasebank-50agree/ablation/soup3.json --out $D/students-mpnet44.json
# both student sets paired against the seed-42 teacher's students (../xeon-amx/plain-seeded.json)
python - <<'PY'
import json
from finslm.ablation import paired
D = "results/phrasebank-50agree/distill/"
e = json.load(open(D + "xeon-amx/plain-seeded.json"))
for name, students, what in [
    ("paired-vs-single-teacher.json", "students.json", "ensemble-teacher students (minilm-x<seed>)"),
    ("paired-mpnet44-vs-mpnet42.json", "students-mpnet44.json", "seed-44-teacher students (minilm-y<seed>)"),
]:
    x = json.load(open(D + "ensemble/" + students))
    out = {"what": what + " minus single-teacher students (xeon-amx minilm-e<seed>, teacher seed 42), "
           "same recipe and seeds, paired by seed",
           "baseline": D + "xeon-amx/plain-seeded.json",
           "backends": {b: paired(x["backends"][b]["per_seed"], e["backends"][b]["per_seed"])
                        for b in ("torch-fp32", "onnx-int8")}}
    open(D + "ensemble/" + name, "w").write(json.dumps(out, indent=2) + "\n")
PY
