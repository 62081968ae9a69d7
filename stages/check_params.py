"""Stage ``check_params``: params.yaml and the files it names, checked before any other stage.

    python stages/check_params.py                  # -> metrics/profile.json
    python stages/check_params.py --params params.yaml --out metrics/profile.json

Tracks every key of params.yaml (a misspelled section set by ``dvc exp run -S`` fails here)
and writes the recipe in force, which every other stage depends on. See
:mod:`finslm.params_check`.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from finslm.outputs import atomic_path
from finslm.params_check import check
from finslm.stage import run_stage, stage_parser

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("metrics/profile.json"))
    args = parser.parse_args(argv)

    def run() -> None:
        result = check(args.params)
        if result["profile"] == "quick":
            log.info(
                "the quick profile is in force (%s): its section of params.yaml replaces %d "
                "value(s), so setting one of these with -S changes nothing here; "
                "data.profile: full runs the recipe as written",
                "the embedded sample" if result["sample"] else "data.profile: quick",
                len(result["overridden"]),
            )
            for line in result["overridden"]:
                log.info("  %s", line)
        else:
            log.info(
                "the full recipe is in force: on 2 CPU cores the PhraseBank takes hours "
                "(docs/results.md gives each stage's time)"
            )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(args.out) as tmp:
            tmp.write_text(json.dumps({"profile": result["profile"]}) + "\n", encoding="utf-8")

    return run_stage("check_params", run)


if __name__ == "__main__":
    sys.exit(main())
