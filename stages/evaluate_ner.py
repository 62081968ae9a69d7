"""Evaluate one trained token classifier on the NER validation and test splits.

    python stages/evaluate_ner.py ner-minilm   # metrics/eval/ner-minilm.json

Entity-level micro/macro P/R/F1 and per-type scores (seqeval, strict IOB2), token accuracy and
a token-level confusion of types, for ``val`` and ``test``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from finslm.ner.evaluate_run import score
from finslm.ner.predict import Tagger
from finslm.ner.prepare import read_split
from finslm.stage import run_stage, stage_parser


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("name")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared-ner"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--out", type=Path, default=Path("metrics/eval"))
    parser.add_argument("--backend", default="torch-fp32")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    tagger = Tagger(args.models / args.name, args.backend, threads=args.threads)
    types = tagger.meta["entity_types"]
    result = {"model": args.name, "backend": args.backend, "task": "token-classification"}
    for split in ("val", "test"):
        result[split] = score(tagger, read_split(args.prepared, split), types)
    out = args.out / f"{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    t = result["test"]
    print(
        f"wrote {out}: test entity micro-F1 {t['entity_micro_f1']:.4f}, "
        + ", ".join(f"{k} {v['f1']:.3f}" for k, v in t["per_type"].items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_stage("evaluate_ner", main))
