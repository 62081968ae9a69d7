"""What every ``stages/<name>.py`` script shares: one argument parser, quiet libraries, and one
way to end on a user error.

    def main(argv=None) -> int:
        args = stage_parser(__doc__).parse_args(argv)
        ...

    if __name__ == "__main__":
        sys.exit(run_stage("prepare", main))

``run_stage`` sets up logging (``<stage>: <message>``), silences the per-file progress bars and
advice that transformers prints on every model load and save (dozens of identical bars over a
run; the training bar with its ETA stays), and turns a :class:`finslm.errors.FinslmError` into
one line ``<stage>: error: <message>`` on stderr and exit status 1. Other exceptions are bugs and
keep their traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from finslm.errors import FinslmError


def stage_parser(doc: str | None) -> argparse.ArgumentParser:
    """The stage's argument parser; its description is the script docstring's first line."""
    first = (doc or "").strip().splitlines()
    return argparse.ArgumentParser(
        description=first[0] if first else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def quiet_libraries() -> None:
    """No "Loading weights" / "Writing model shards" bar per model load or checkpoint save, and
    transformers' advice at warning level only; Trainer's own progress bar is unaffected.

    Through the environment variables transformers and huggingface_hub read when imported, so a
    stage that never loads a model (data, TF-IDF, report) does not import transformers for this
    (~1 s); a user's own setting of either variable wins. Where transformers is already imported,
    its switches are set as well."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "warning")
    hf_logging = sys.modules.get("transformers.utils.logging")
    if hf_logging is not None:
        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_warning()


def run_stage(name: str, main: Callable[[], int | None], level: int = logging.INFO) -> int:
    """Run a stage's ``main``; its exit status (a user error: one line on stderr, status 1)."""
    logging.basicConfig(level=level, format=f"{name}: %(message)s")
    quiet_libraries()
    try:
        return int(main() or 0)
    except FinslmError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 1
