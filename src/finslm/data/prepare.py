"""The ``prepare`` stage's core: load -> clean -> split -> write splits, rejects and metrics.

    python stages/prepare.py                      # what ``dvc repro prepare`` runs
    >>> metrics = prepare(cfg, Path("data/prepared"), Path("metrics/data.json"),
    ...                   Path("data/prepared/rejects.csv"))
    >>> train = read_split(Path("data/prepared/train.parquet"))

Writes ``out_dir/{train,val,test}.parquet`` (columns ``text``, ``label``, ``line`` and, for a
PhraseBank folder, ``agreement``), the rejects CSV (``line, source, reason, text, label``) and
the metrics JSON::

    {"rows_in": n, "rows_out": n, "dropped": {reason: n, ...},
     "repaired": {"mojibake": n, "unicode": n, "whitespace": n},
     "splits": {"train": n, "val": n, "test": n},
     "labels": {"train": {"negative": n, "neutral": n, "positive": n}, ...}}

``rows_in == rows_out + sum(dropped)`` always; every reason key is present (0 when none).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from finslm.config import DataConfig
from finslm.data.clean import clean, log_report
from finslm.data.errors import DataError
from finslm.data.loaders import load
from finslm.data.split import SPLITS, split
from finslm.labels import LABELS
from finslm.outputs import atomic_path, remove_outputs

log = logging.getLogger(__name__)

SPLIT_COLUMNS: tuple[str, ...] = ("text", "label", "line")
OPTIONAL_COLUMNS: tuple[str, ...] = ("agreement",)


def prepare(
    cfg: DataConfig,
    out_dir: Path,
    metrics_path: Path,
    rejects_path: Path,
    root: Path = Path("."),
) -> dict:
    """Run the stage; returns the metrics dict it wrote. ``root`` anchors a relative data.source.

    The previous run's splits, rejects and metrics are removed first and each file is written
    atomically, so a run that fails leaves no stale split for training to pick up: at most the
    new rejects file, as evidence.
    """
    out_dir = Path(out_dir)
    split_paths = {name: out_dir / f"{name}.parquet" for name in SPLITS}
    remove_outputs(*split_paths.values(), Path(metrics_path), Path(rejects_path))
    loaded = load(cfg, root)
    kept, rejects, report = clean(loaded.rows, cfg, loaded.rejects)
    log_report(report, notes=not kept.empty)  # with nothing kept, the error below says them
    _write_csv(rejects, Path(rejects_path))  # first, so a failure below still leaves the evidence
    if kept.empty:
        notes = " ".join(report["notes"])
        raise DataError(
            f"data.source={cfg.source!r}: no rows left after cleaning (dropped: "
            f"{_nonzero(report['dropped'])}); see {rejects_path}. {notes}".rstrip()
        )
    absent = [label for label in LABELS if not (kept["label"] == label).any()]
    if len(absent) >= len(LABELS) - 1:
        present = sorted(set(kept["label"]))
        raise DataError(
            f"data.source={cfg.source!r}: every kept sentence is {' or '.join(present)}; a "
            "classifier needs at least two labels. Fix: check data.label_column and "
            f"data.label_map (rejects, with their reasons: {rejects_path})"
        )
    if absent:
        log.warning(
            "data.source=%r: no %s sentence after cleaning, so no model can learn to predict it "
            "(if the file has one under another name, map it with data.label_map)",
            cfg.source,
            " or ".join(absent),
        )
    parts = split(kept, cfg.test_size, cfg.val_size, cfg.seed, source=f"data.source={cfg.source}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        columns = [*SPLIT_COLUMNS, *(c for c in OPTIONAL_COLUMNS if c in part.columns)]
        with atomic_path(split_paths[name]) as tmp:
            part[columns].to_parquet(tmp, index=False)
    metrics = build_metrics(report, parts)
    _write_json(metrics, Path(metrics_path))
    log.info("splits: %s", ", ".join(f"{k} {v}" for k, v in metrics["splits"].items()))
    for name in ("val", "test"):
        empty = [
            label for label in LABELS if label not in absent and not metrics["labels"][name][label]
        ]
        if empty:
            log.warning(
                "the %s split has no %s sentence (too few in the source to stratify): its "
                "F1 is not measured there, and macro-F1 averages the other labels "
                "(more rows of it, or a larger data.%s_size, fix this)",
                name,
                " or ".join(empty),
                name,
            )
    return metrics


def build_metrics(report: dict, parts: dict[str, pd.DataFrame]) -> dict:
    """The metrics JSON: stable keys, every reason and every label present."""
    return {
        "rows_in": report["rows_in"],
        "rows_out": report["rows_out"],
        "dropped": dict(report["dropped"]),
        "repaired": dict(report["repaired"]),
        "splits": {name: len(parts[name]) for name in SPLITS},
        "labels": {
            name: {label: int((parts[name]["label"] == label).sum()) for label in LABELS}
            for name in SPLITS
        },
    }


def read_split(path: Path) -> pd.DataFrame:
    """Read one prepared split, checking its columns and labels."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not found. Fix: run `dvc repro prepare` first.")
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(
            f"{path}: not a readable parquet file ({exc}). Fix: run `dvc repro prepare`."
        ) from None
    missing = [column for column in SPLIT_COLUMNS if column not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)} (has: "
            f"{', '.join(map(str, frame.columns))}). Fix: run `dvc repro prepare`."
        )
    bad = sorted(set(frame["label"].astype(str)) - set(LABELS))
    if bad or frame["text"].isna().any():
        problem = f"labels outside {', '.join(LABELS)}: {bad}" if bad else "empty texts"
        raise DataError(f"{path}: {problem}. Fix: run `dvc repro prepare`.")
    return frame


def _nonzero(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items() if n) or "nothing"


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def _write_json(data: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
