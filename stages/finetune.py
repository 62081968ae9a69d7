"""Stages ``mine`` and ``finetune``: targeted fine-tuning of params ``finetune.model`` and its ablation.

    python stages/finetune.py mine     # `dvc repro mine`: OOF + cartography on the train split
    python stages/finetune.py run      # `dvc repro finetune`: targeted vs control, every seed

``mine`` reads the train split only and writes ``analysis/<m>-mining.csv`` and
``metrics/finetune-mining.json``. ``run`` reads ``models/<m>``, ``analysis/<m>.json`` (explain
stage), the mining file, train and val (selection) and test (the report only), and writes
``models/<m>-targeted/``, ``analysis/<m>-focus.csv``, ``metrics/finetune.json`` and
``metrics/eval/<m>-targeted.json``. Bad params, data or models print one message and exit 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

from finslm.config import load_finetune_config, load_params
from finslm.finetune.workflow import FinetunePaths, run_finetune, run_mine
from finslm.stage import run_stage, stage_parser


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("step", choices=["mine", "run"])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument(
        "--root", type=Path, default=Path("."), help="where the pipeline's folders are"
    )
    args = parser.parse_args(argv)
    return run_stage("mine" if args.step == "mine" else "finetune", lambda: _step(args))


def _step(args) -> None:
    cfg = load_finetune_config(args.params)
    model_cfg = load_params(args.params).models[cfg.model]
    paths = FinetunePaths.for_model(cfg.model, args.root)
    if args.step == "mine":
        run_mine(cfg, model_cfg, paths, root=args.root)
    else:
        run_finetune(cfg, model_cfg, paths)


if __name__ == "__main__":
    sys.exit(main())
