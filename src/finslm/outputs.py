"""Write stage outputs so a failed run never leaves stale or half-written files behind.

    >>> remove_outputs(Path("data/prepared/train.parquet"), Path("metrics/data.json"))  # at start
    >>> with atomic_path(Path("metrics/data.json")) as tmp:
    ...     tmp.write_text("{}")          # renamed over the target only if the block succeeds

A stage first removes the outputs it is about to write, so that a failure part-way (bad input,
Ctrl-C) cannot leave the previous run's files beside the new ones, where the next stage would
read them as current. Each file is written to a temporary name in the same folder and renamed
into place (atomic on POSIX), so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def remove_outputs(*paths: Path) -> None:
    """Delete these output files if they exist (folders are left alone)."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            Path(path).unlink()


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
