"""Split cleaned rows into train / val / test, stratified by label, with a fixed seed.

    >>> parts = split(clean_df, test_size=0.2, val_size=0.1, seed=42)
    >>> {name: len(part) for name, part in parts.items()}   # {'train': …, 'val': …, 'test': …}

Protocol (FinBERT, Araci 2019): a stratified ``test_size`` share is held out as test, then a
stratified ``val_size`` share of the rest becomes validation; the remainder is train. The same
input and seed always give the same split. Each split is sorted by source line, which makes the
files easy to diff; training shuffles anyway.
"""

from __future__ import annotations

import pandas as pd

from finslm.data.clean import dedup_key
from finslm.data.errors import DataError

SPLITS: tuple[str, ...] = ("train", "val", "test")


def split(
    frame: pd.DataFrame, test_size: float, val_size: float, seed: int, source: str = "data"
) -> dict[str, pd.DataFrame]:
    """``{"train", "val", "test"}`` frames; raises DataError if a class is too small to stratify.

    ``source`` names the input in errors (``data.source``).
    """
    if frame.empty:
        raise DataError(
            f"{source}: no rows left to split after cleaning. Fix: see the rejects file."
        )
    rest, test = _stratified(frame, test_size, seed, "test", source)
    train, val = _stratified(
        rest,
        val_size,
        seed,
        "validation",
        source,
        after=f"left after the test split took {len(test)}",
    )
    parts = {"train": train, "val": val, "test": test}
    parts = {name: _ordered(part) for name, part in parts.items()}
    check_disjoint(parts)
    return parts


def _stratified(
    frame: pd.DataFrame, share: float, seed: int, what: str, source: str, after: str = ""
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out ``share`` of ``frame`` stratified by label; a clear error when it cannot.
    ``after`` says where ``frame``'s rows come from when it is not the whole cleaned source
    (the validation split is drawn from what the test split left)."""
    counts = frame["label"].value_counts()
    smallest, n = counts.idxmin(), int(counts.min())
    fix = "Fix: add rows of that class, or merge it into another with data.label_map."
    if n < 2:
        of = f"of the {len(frame)} rows {after}" if after else f"of {len(frame)}"
        raise DataError(
            f"{source}: cannot stratify the {what} split: class {smallest!r} has only {n} row(s) "
            f"{of} (need at least 2; class counts: {counts.to_dict()}). {fix}"
        )
    # Imported here: scikit-learn takes ~1.5 s to import and only the split needs it, while
    # every stage imports finslm.data (read_split).
    from sklearn.model_selection import train_test_split

    try:
        kept, held_out = train_test_split(
            frame, test_size=share, random_state=seed, shuffle=True, stratify=frame["label"]
        )
    except ValueError as exc:  # e.g. fewer held-out rows than classes
        key = "data.test_size" if what == "test" else "data.val_size"
        raise DataError(
            f"{source}: cannot stratify the {what} split of {len(frame)} rows with share {share}: {exc} "
            f"(class counts: {counts.to_dict()}; smallest: {smallest!r} with {n}). Fix: a share "
            f"that leaves each side a row of every class ({key}), or add rows of that class"
        ) from None
    return kept, held_out


def _ordered(part: pd.DataFrame) -> pd.DataFrame:
    by = [column for column in ("source", "line") if column in part.columns]
    return part.sort_values(by, kind="stable", ignore_index=True) if by else part


def check_disjoint(parts: dict[str, pd.DataFrame]) -> None:
    """Raise DataError if a normalised text occurs in two splits (a train/test leak).

    Deduplication makes this impossible; the check guards against a future change breaking it.
    """
    seen: dict[str, str] = {}
    for name, part in parts.items():
        for key, line in zip(part["text"].map(dedup_key), part["line"], strict=True):
            other = seen.setdefault(key, name)
            if other != name:
                raise DataError(
                    f"leak: a text at source line {line} in {name!r} also occurs in {other!r} "
                    "(after normalisation). Deduplication should have prevented this; please "
                    "report it."
                )
