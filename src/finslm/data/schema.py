"""Column names, reject reasons and the loader result type shared by the data modules.

Every loader returns a :class:`Loaded`: the rows it could parse plus the rows it had to reject
(``malformed_line``), so that cleaning can count every input row exactly once.
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

# Columns of a loaded or cleaned frame. ``line`` is 1-based and points at the physical source
# line (CSV: where the record starts) or, for parquet, the 1-based row number.
ROW_COLUMNS: tuple[str, ...] = ("text", "label", "line", "source")
# Columns of the rejects frame / rejects CSV.
REJECT_COLUMNS: tuple[str, ...] = ("line", "source", "reason", "text", "label")

# Every reason a row can be dropped for, in the order the checks run. Metrics always carry all
# of them (0 when none), so ``dvc metrics diff`` compares like with like.
REASONS: tuple[str, ...] = (
    "malformed_line",  # no ``@label`` / wrong number of CSV fields
    "unknown_label",  # label not in LABELS after strip/lower/label_map
    "empty_text",  # nothing but whitespace/punctuation left after normalisation
    "too_short",  # fewer than data.min_chars characters
    "too_long",  # more than data.max_chars characters
    "conflicting_labels",  # same normalised text with different labels: every copy dropped
    "duplicate",  # same text and label as an earlier row
    "near_duplicate",  # same normalised text and label as an earlier row
)


class Loaded(NamedTuple):
    """What a loader read: ``rows`` (ROW_COLUMNS [+ agreement]) and ``rejects`` (REJECT_COLUMNS)."""

    rows: pd.DataFrame
    rejects: pd.DataFrame


def rows_frame(records: list[dict]) -> pd.DataFrame:
    """Build a rows frame with the right columns and dtypes, also when ``records`` is empty."""
    frame = pd.DataFrame.from_records(records, columns=list(ROW_COLUMNS))
    return frame.astype({"text": str, "label": str, "line": "int64", "source": str})


def rejects_frame(records: list[dict]) -> pd.DataFrame:
    """Build a rejects frame with the right columns and dtypes, also when ``records`` is empty."""
    frame = pd.DataFrame.from_records(records, columns=list(REJECT_COLUMNS))
    return frame.astype({"line": "int64", "source": str, "reason": str, "text": str, "label": str})
