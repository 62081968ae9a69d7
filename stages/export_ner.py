"""Export one token classifier to ONNX (fp32, optimised, INT8) and gate on parity with PyTorch.

    python stages/export_ner.py ner-minilm   # exports/ner-minilm, metrics/export/ner-minilm.json

Graph settings (opset, optimize, quantize_from, per_channel, reduce_range, batch_size) are the
``export.*`` ones; the gate is ``ner.*`` (token agreement, entity micro-F1 drop). Exits 1, after
writing the metrics, when a graph breaks it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from finslm.config import load_export_config, load_ner_config
from finslm.export import ParityError
from finslm.ner.export import export_ner
from finslm.ner.prepare import read_split
from finslm.stage import run_stage, stage_parser


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("name")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared-ner"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--exports", type=Path, default=Path("exports"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/export"))
    args = parser.parse_args(argv)
    out = args.metrics / f"{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    cfg = load_ner_config(args.params)
    cfg.model(args.name)
    graph_cfg = load_export_config(args.params).for_model(args.name)
    val = read_split(args.prepared, "val")
    try:
        metrics = export_ner(args.models / args.name, args.exports / args.name, val, graph_cfg, cfg)
    except ParityError as exc:
        out.write_text(json.dumps(exc.metrics, indent=2) + "\n", encoding="utf-8")
        raise  # run_stage: one line on stderr, exit 1; the metrics stay for inspection
    out.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.exports / args.name} and {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_stage("export_ner", main))
