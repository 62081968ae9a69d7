"""Read CSV / TSV / Parquet tables with configurable text and label columns.

    >>> loaded = read_table(Path("data/sample/sentences.csv"), "csv", "text", "label")
    >>> loaded.rows.columns.tolist()     # ['text', 'label', 'line', 'source']

``line`` is the physical line where a CSV/TSV record starts (1 = header), so a quoted field with
newlines inside still points at the right line; for parquet, which has no lines, it is the
1-based row number. Labels are returned as strings exactly as stored (``0``, ``0.0``,
``Positive``); cleaning maps them. A row with the wrong number of fields is a
``malformed_line`` reject; broken quoting is a ``DataError`` with the line it starts on.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from finslm.data.encoding import read_text
from finslm.data.errors import DataError
from finslm.data.schema import Loaded, rejects_frame, rows_frame
from finslm.labels import LABELS

DELIMITERS: dict[str, str] = {"csv": ",", "tsv": "\t"}
# Likely names, used only to suggest a fix when the configured column is missing.
_TEXT_NAMES = ("text", "sentence", "content", "headline", "title", "body", "tweet")
_LABEL_NAMES = ("label", "labels", "sentiment", "class", "target")
_LIKELY = {"text_column": _TEXT_NAMES, "label_column": _LABEL_NAMES}
# The csv module refuses fields over 131,072 characters by default, which aborted a whole file
# for one over-long cell; such a row is a counted ``too_long`` reject in cleaning instead (as in
# a PhraseBank .txt). The whole file is in memory already, so lifting the limit costs nothing.
_FIELD_LIMIT = 2**31 - 1  # the C long the limit is stored in, on every platform


@contextlib.contextmanager
def _no_field_limit() -> Iterator[None]:
    old = csv.field_size_limit(_FIELD_LIMIT)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def read_table(path: Path, fmt: str, text_column: str, label_column: str) -> Loaded:
    """Read a ``csv``, ``tsv``, ``parquet`` or ``jsonl`` file into rows (+ rejects for the
    line-based formats)."""
    if fmt == "parquet":
        return read_parquet(path, text_column, label_column)
    if fmt == "jsonl":
        return read_jsonl(path, text_column, label_column)
    return read_delimited(path, DELIMITERS[fmt], text_column, label_column)


def read_delimited(path: Path, delimiter: str, text_column: str, label_column: str) -> Loaded:
    """Read a CSV/TSV (RFC 4180 quoting) with the csv module, tracking each record's first line."""
    # csv, not pandas.read_csv: pandas cannot tell on which line a multi-line record starts.
    text = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    rows: list[dict] = []
    rejects: list[dict] = []
    last_line = 0  # physical lines consumed so far; the next record starts at last_line + 1
    try:
        with _no_field_limit():
            for record in reader:
                start, last_line = last_line + 1, reader.line_num
                if not record:
                    continue  # blank line
                if header is None:
                    header = [name.strip() for name in record]
                    _check_delimiter(header, path, delimiter, text_column)
                    text_at, label_at = _column_positions(header, path, text_column, label_column)
                    continue
                if len(record) != len(header):
                    joined = delimiter.join(record)
                    rejects.append(_malformed(start, path.name, joined))
                    continue
                rows.append(
                    {"text": record[text_at], "label": record[label_at]}
                    | {"line": start, "source": path.name}
                )
    except csv.Error as exc:
        raise DataError(
            f"{path}, line {last_line + 1}: cannot parse {_kind(delimiter)}: {exc}. Fix: quote "
            "fields that contain the delimiter, quotes or line breaks (double any quote inside a "
            "quoted field), or set data.format to the file's real format."
        ) from None
    if not rows and not rejects:
        raise DataError(f"{path}: no data rows under the header. Fix: check the file.")
    return Loaded(rows_frame(rows), rejects_frame(rejects))


def read_jsonl(path: Path, text_column: str, label_column: str) -> Loaded:
    """Read JSON Lines: one object a line with the text and label keys. A line that is not a
    JSON object, lacks a key, or holds a text that is not a string is a ``malformed_line``
    reject; a first object without a key is an error naming the keys it has (a wrong
    ``data.text_column`` / ``data.label_column`` would reject every line)."""
    from finslm.data.encoding import split_lines

    rows: list[dict] = []
    rejects: list[dict] = []
    first = True
    for number, line in enumerate(split_lines(read_text(path)), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            rejects.append(_malformed(number, path.name, line))
            continue
        missing = [key for key in (text_column, label_column) if key not in record]
        if missing and first:
            key = "text_column" if text_column in missing else "label_column"
            keys = ", ".join(map(repr, record)) or "no keys"
            guess = _guess(missing[0], list(record), _LIKELY[key])
            raise DataError(
                f"{path}, line {number}: no key {missing[0]!r} (data.{key}); the object has "
                f"{keys}. Fix: -S data.{key}={guess}"
            )
        first = False
        text = record.get(text_column)
        if missing or not isinstance(text, str) or isinstance(record[label_column], (dict, list)):
            rejects.append(_malformed(number, path.name, line))
            continue
        rows.append(
            {
                "text": text,
                "label": _cell(record[label_column]),
                "line": number,
                "source": path.name,
            }
        )
    if not rows and not rejects:
        raise DataError(f"{path}: no JSON objects in the file. Fix: check the file.")
    return Loaded(rows_frame(rows), rejects_frame(rejects))


def read_parquet(path: Path, text_column: str, label_column: str) -> Loaded:
    """Read a parquet file's text and label columns; ``line`` is the 1-based row number.

    Only the two columns are read, with pyarrow and without the pandas metadata a file may
    carry (a damaged one cannot break the read), and their types are checked: text must be
    a string column (bytes, lists, structs or timestamps would be turned into their Python
    repr and trained on), labels strings or numbers (``data.label_map`` maps them).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        header = list(schema.names)
        text_at, label_at = _column_positions(header, path, text_column, label_column)
        for at, key, allowed in (
            (text_at, "text_column", (pa.types.is_string, pa.types.is_large_string)),
            (label_at, "label_column", (pa.types.is_string, pa.types.is_large_string,
                                        pa.types.is_integer, pa.types.is_floating,
                                        pa.types.is_boolean)),
        ):  # fmt: skip
            kind = schema.field(at).type
            if pa.types.is_dictionary(kind):
                kind = kind.value_type
            if not (pa.types.is_null(kind) or any(ok(kind) for ok in allowed)):
                raise DataError(
                    f"{path}: column {header[at]!r} (data.{key}) holds {kind} values, not "
                    f"{'text' if key == 'text_column' else 'labels'}. Fix: write it as a string "
                    f"column, or point data.{key} at the right column."
                )
        table = pq.read_table(path, columns=[header[text_at], header[label_at]])
    except DataError:
        raise
    except (OSError, ValueError, TypeError, KeyError, pa.ArrowException) as exc:
        raise DataError(
            f"{path}: not a readable parquet file ({type(exc).__name__}: {exc}). Fix: point "
            "data.source at a valid .parquet file, or set data.format to the file's real format."
        ) from None
    if table.num_rows == 0:
        raise DataError(f"{path}: the parquet file has no rows. Fix: check the file.")
    texts, labels = (table.column(i).to_pylist() for i in range(2))
    rows = [
        {"text": _cell(text), "label": _cell(label), "line": number, "source": path.name}
        for number, (text, label) in enumerate(zip(texts, labels, strict=True), start=1)
    ]
    return Loaded(rows_frame(rows), rejects_frame([]))


def _cell(value: object) -> str:
    """A table cell as the string cleaning sees: missing -> '', 2.0 -> '2.0', 'x' -> 'x'."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return str(value)


def _column_positions(
    header: list[str], path: Path, text_column: str, label_column: str
) -> tuple[int, int]:
    """Index of the text and label columns, or a DataError naming the file, column and fix."""
    positions = []
    for wanted, key, likely in (
        (text_column, "text_column", _TEXT_NAMES),
        (label_column, "label_column", _LABEL_NAMES),
    ):
        if wanted not in header:
            raise DataError(_missing_column(path, wanted, key, header, likely))
        if header.count(wanted) > 1:
            where = [i + 1 for i, name in enumerate(header) if name == wanted]
            raise DataError(
                f"{path}: column {wanted!r} (data.{key}) appears {len(where)} times in the "
                f"header (columns {', '.join(map(str, where))}). Fix: rename all but one."
            )
        positions.append(header.index(wanted))
    return positions[0], positions[1]


def _missing_column(
    path: Path, wanted: str, key: str, header: list[str], likely: tuple[str, ...]
) -> str:
    guess = _guess(wanted, header, likely)
    if data_like_header(header):
        return (
            f"{path}: no column {wanted!r} (data.{key}): the first row "
            f"({', '.join(map(repr, header))}) looks like data, not a header. Fix: add a first "
            "line naming the columns, e.g. text,label (in the file's column order)"
        )
    return (
        f"{path}: no column {wanted!r} (data.{key}); the file has columns: "
        f"{', '.join(map(repr, header))}. Fix: -S data.{key}={guess}"
    )


def _guess(wanted: str, names: list[str], likely: tuple[str, ...]) -> str:
    """The name in ``names`` most likely meant by ``wanted`` (case, then usual names)."""
    lowered = {str(name).lower(): str(name) for name in names}
    return next((lowered[n] for n in (wanted.lower(), *likely) if n in lowered), "<column>")


def data_like_header(header: list[str]) -> bool:
    """True when a header row reads as data: a cell of four or more words (a sentence), or a
    cell that is one of finslm's labels beside a cell of several words."""
    words = [len(str(name).split()) for name in header]
    if any(n >= 4 for n in words):
        return True
    labels = any(str(name).strip().lower() in LABELS for name in header)
    return labels and any(n >= 2 for n in words)


def semicolon_hint(header: list[str]) -> str:
    """For a one-column header holding semicolons: what to do with a semicolon-separated file
    (the CSV a European-locale Excel writes), else ''."""
    if len(header) != 1 or ";" not in header[0]:
        return ""
    return (
        f"its header {header[0]!r} is semicolon-separated (as Excel writes CSV in many European "
        'locales); finslm reads comma- or tab-separated files. Fix: save it as "CSV UTF-8 '
        '(comma delimited)" or as tab-delimited text (.tsv)'
    )


def _malformed(line: int, source: str, text: str) -> dict:
    return {"line": line, "source": source, "reason": "malformed_line", "text": text, "label": ""}


def _check_delimiter(header: list[str], path: Path, delimiter: str, text_column: str) -> None:
    """A one-column header holding the other delimiter: the file is TSV read as CSV (or back)."""
    if len(header) != 1 or text_column in header:
        return
    if hint := semicolon_hint(header):
        raise DataError(f"{path}: {hint}")
    for fmt, other in DELIMITERS.items():
        if other != delimiter and other in header[0]:
            raise DataError(
                f"{path}: read as {_kind(delimiter)}, but its header {header[0]!r} is "
                f"{_kind(other)}-separated. Fix: -S data.format={fmt}"
            )


def _kind(delimiter: str) -> str:
    return "TSV" if delimiter == "\t" else "CSV"
