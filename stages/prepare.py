"""Stage ``prepare``: raw source -> data/prepared/{train,val,test}.parquet + metrics/data.json.

    python stages/prepare.py                       # defaults below, params from params.yaml
    python stages/prepare.py --out data/prepared --metrics metrics/data.json \
        --rejects data/prepared/rejects.csv --params params.yaml

Reads only the ``data`` section of params.yaml. Bad input or params print one message (file,
line, problem, fix) to stderr and exit 1, without a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from finslm.config import ConfigError, load_params
from finslm.data import DataError, prepare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("data/prepared"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/data.json"))
    parser.add_argument("--rejects", type=Path, default=Path("data/prepared/rejects.csv"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="prepare: %(message)s")
    try:
        cfg = load_params(args.params).data
        # Relative data.source paths are from the folder holding params.yaml (the repo root).
        prepare(cfg, args.out, args.metrics, args.rejects, root=args.params.parent)
    except (DataError, ConfigError) as exc:
        print(f"prepare: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
