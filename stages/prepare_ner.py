"""Prepare the NER splits: read ner.source (and ner.test_source), clean, split, window.

    python stages/prepare_ner.py      # `dvc repro prepare_ner`

Writes ``data/prepared-ner/{train,val,test,rejects}.parquet`` + ``labels.json`` and ``metrics/data-ner.json``
(sentences read, kept, rejected by reason, windows, entities per type and split). Bad input
prints one message naming the file and line, and exits 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from finslm.config import load_ner_config
from finslm.ner.prepare import prepare, write_labels, write_splits
from finslm.stage import run_stage, stage_parser


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("data/prepared-ner"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/data-ner.json"))
    args = parser.parse_args(argv)
    cfg = load_ner_config(args.params)
    splits, rejects, report = prepare(cfg)
    write_splits(splits, rejects, args.out)
    write_labels(report, args.out)
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    args.metrics.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    sizes = ", ".join(f"{k} {v['windows']}" for k, v in report["splits"].items())
    print(f"wrote {args.out} ({sizes}; rejects {report['rejects'] or 'none'}) and {args.metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(run_stage("prepare_ner", main))
