"""Train one token classifier listed under ner.models.

    python stages/train_ner.py ner-minilm   # models/ner-minilm, metrics/train/ner-minilm.json,
                                           # plots/train/ner-minilm/ (DVCLive curves)

Reads ``data/prepared-ner/{train,val}.parquet`` (never test) and ``ner.*`` in params.yaml.
``--seed`` overrides ``ner.seed`` (the 3-seed runs in results/sec-filings-ner/).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from finslm.config import load_ner_config, naming_entry
from finslm.ner.prepare import read_split
from finslm.ner.train import train_ner
from finslm.stage import run_stage, stage_parser


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("name", help="a model under ner.models")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared-ner"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/train"))
    parser.add_argument("--plots", type=Path, default=Path("plots/train"))
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    cfg = load_ner_config(args.params)
    model_cfg = cfg.model(args.name)
    train, val = read_split(args.prepared, "train"), read_split(args.prepared, "val")
    types = json.loads((args.prepared / "labels.json").read_text())["entity_types"]
    from dvclive import Live

    plots = args.plots / args.name
    # dvcyaml/save_dvc_exp off: inside a DVC stage, DVCLive must not rewrite dvc.yaml.
    # A check that needs the checkpoint (word_shape, a checkpoint folder) names the entry's line.
    with (
        naming_entry(f"ner.models.{args.name}", args.params),
        Live(dir=str(plots), dvcyaml=False, save_dvc_exp=False, report=None) as live,
    ):
        summary = train_ner(
            model_cfg,
            types,
            train,
            val,
            args.models / args.name,
            name=args.name,
            live=live,
            seed=cfg.seed if args.seed is None else args.seed,
            threads=cfg.threads,
        )
    out = args.metrics / f"{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.models / args.name} and {out}: val {summary['val']}")
    return 0


if __name__ == "__main__":
    sys.exit(run_stage("train_ner", main))
