"""Stage ``prepare``: raw source -> data/prepared/{train,val,test}.parquet + metrics/data.json.

    python stages/prepare.py                       # defaults below, params from params.yaml
    python stages/prepare.py --out data/prepared --metrics metrics/data.json \
        --rejects data/prepared/rejects.csv --params params.yaml

Reads only the ``data`` section of params.yaml. Bad input or params print one message (file,
line, problem, fix) to stderr and exit 1, without a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

from finslm.config import load_params
from finslm.data import prepare
from finslm.stage import run_stage, stage_parser


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("data/prepared"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/data.json"))
    parser.add_argument("--rejects", type=Path, default=Path("data/prepared/rejects.csv"))
    args = parser.parse_args(argv)

    def run() -> None:
        cfg = load_params(args.params).data
        # Relative data.source paths are from the folder holding params.yaml (the repo root).
        prepare(cfg, args.out, args.metrics, args.rejects, root=args.params.parent)

    return run_stage("prepare", run)


if __name__ == "__main__":
    sys.exit(main())
