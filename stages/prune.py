"""Stage prune: structured pruning of params `prune.model` with distillation recovery.

python stages/prune.py    # writes models/<m>-pruned/, metrics/prune.json, plots/prune/
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from finslm.config import load_prune_config
from finslm.data import read_split
from finslm.models import ModelError
from finslm.prune.run import prune_model
from finslm.stage import run_stage, stage_parser


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    args = parser.parse_args(argv)
    return run_stage("prune", lambda: prune(args.params, args.prepared))


def prune(params: Path, prepared: Path) -> None:
    cfg = load_prune_config(params)
    source, out_dir = Path("models") / cfg.model, Path("models") / cfg.output
    if not source.is_dir():
        raise ModelError(f"{source}: not found; run `dvc repro train@{cfg.model}` first")
    teacher = None if cfg.recovery_teacher == cfg.model else Path("models") / cfg.recovery_teacher
    from dvclive import Live

    # dvcyaml/save_dvc_exp off: inside a DVC stage, DVCLive must not rewrite dvc.yaml.
    with Live(dir="plots/prune", dvcyaml=False, save_dvc_exp=False, report=None) as live:
        summary = prune_model(
            cfg,
            source,
            read_split(prepared / "train.parquet"),
            read_split(prepared / "val.parquet"),
            out_dir,
            live=live,
            teacher_dir=teacher,
        )
    path = Path("metrics/prune.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    logging.info(
        "%s (recovered from %s): layers %s, FFN %d, encoder params -%.1f%%, val accuracy %.4f, "
        "macro-F1 %.4f",
        cfg.output,
        cfg.recovery_teacher,
        summary["layers_kept"],
        summary["intermediate_size"],
        100 * summary["encoder_params_removed"],
        summary["val"]["accuracy"],
        summary["val"]["macro_f1"],
    )


if __name__ == "__main__":
    sys.exit(main())
