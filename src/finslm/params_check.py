"""The pipeline's first stage, ``check_params``: the whole params file checked before any work.

DVC checks a stage's file dependencies before it runs the stage's command, so a
``data.source`` that does not exist would end in DVC's bare ``[Errno 2] No such file``, never
reaching ``prepare``'s message; and a misspelled section set with ``dvc exp run -S
'++trian.seed=7'`` would change no stage's params and record an experiment that changed
nothing. This stage tracks every key of params.yaml and runs first (every stage depends on its
output), so both fail here with the file, line, key and fix:

- every section, both recipes (full and ``quick``): :func:`finslm.config.load_params`, and
  ``ner``;
- the local files the stages name as DVC dependencies (``data.source``, ``ner.source``,
  ``ner.test_source``) exist, with the hint a queued experiment needs (it runs in
  ``.dvc/tmp/exps/``, where a relative path outside the repository points elsewhere).

Its output holds the profile in force (``{"profile": "quick"}``), which changes only when the
recipe in force changes: the stages depend on it, so pointing ``data.source`` at a copy of the
sample (the full recipe, the same data) retrains, while any other params change leaves their
dependency as it was. What the quick profile overrides is logged, so a ``-S`` of an overridden
key on the sample is not a silent no-op.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finslm.config import (
    QUICK,
    SAMPLE_SOURCE,
    ConfigError,
    load_ner_config,
    load_params,
    profile_in_force,
    read_params,
)

HUB_PREFIX = "hub:"


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"models.minilm.epochs": 2, ...}`` for a nested mapping (leaves: non-mappings)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def overridden(raw: dict[str, Any]) -> list[str]:
    """``key: full -> quick`` for each value the quick profile replaces (raw, unmerged params)."""
    full = _flatten({k: v for k, v in raw.items() if k != QUICK})
    lines = []
    for key, value in _flatten(raw.get(QUICK) or {}).items():
        if key in full and full[key] != value:
            lines.append(f"{key}: {full[key]!r} -> {value!r}")
        elif key not in full:
            lines.append(f"{key}: (default) -> {value!r}")
    return lines


def _check_file(key: str, value: str, root: Path) -> None:
    if not value or value.startswith(HUB_PREFIX):
        return
    path = Path(value).expanduser()
    where = path if path.is_absolute() else root / path
    if where.exists():
        return
    hint = ""
    if not path.is_absolute():
        hint = (
            f" (relative to {root.resolve()}; a queued or --temp experiment runs in a copy "
            "under .dvc/tmp/exps/, where a path outside the repository points elsewhere: give "
            "an absolute path)"
        )
    raise ConfigError(f"{key}: {value!r} does not exist{hint}. Fix the path, or -S {key}=<file>")


def check(path: Path = Path("params.yaml")) -> dict[str, Any]:
    """Validate ``path`` and the files it names; ``{"profile", "overridden"}`` (see module)."""
    path = Path(path)
    params = load_params(path)
    ner = load_ner_config(path)
    root = path.parent
    source = params.data.source
    if source.startswith(HUB_PREFIX) and params.data.format in ("auto", "hub"):
        raise ConfigError(
            f"data.source: {source!r}: dvc repro tracks data.source as a file, and a hub id is "
            f"not one. Fix: finslm fetch --source {source} --out data/raw/data.csv, then "
            "-S data.source=data/raw/data.csv"
        )
    _check_file("data.source", source, root)
    _check_file("ner.source", ner.source, root)
    _check_file("ner.test_source", ner.test_source, root)
    raw = read_params(path, "full")
    profile = profile_in_force(raw)
    return {
        "profile": profile,
        "sample": Path(source).as_posix().removeprefix("./") == SAMPLE_SOURCE,
        "overridden": overridden(raw) if profile == QUICK else [],
    }
