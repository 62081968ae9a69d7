"""Bulk scoring: a table or text file of any size -> one prediction per row, streamed.

    finslm predict --input news.parquet --text-column headline --output scored.parquet
    >>> result = score_file(predictor, Path("news.csv"), Path("scored.jsonl"))
    >>> result.rows == result.kept + sum(result.rejected.values())   # always

Input (by suffix): ``.csv`` (a header row; ``text_column`` is read, other columns are not),
``.tsv`` (the same, tab-separated),
``.parquet`` (the one column is read, row group by row group; a string column, or a binary one,
as Spark writes strings, decoded as UTF-8 per cell; any other type is an error), ``.jsonl`` (one
JSON object per line, ``text_column`` its key: a ``.jsonl`` output can be scored again) or
``.txt`` (one text per line, split as ``finslm predict --file`` splits: CRLF, lone CR or LF).
It is read ``chunk_rows`` rows at a time, never whole. ``row`` is the 1-based data row (CSV:
the record after the header; JSONL/TXT: the line), so output and rejects join back to the
input.

Within a chunk the texts are sorted by length before batching (little padding, so several
times faster than input order on mixed lengths) and the predictions are put back in input
order. Output (by suffix): ``.csv``, ``.parquet`` or ``.jsonl``, columns ``row``, ``text``,
``label``, ``p_<label>`` per class and ``truncated`` (the text is longer than the model's
``max_length`` tokens, so only its first part was read; counted in the summary), kept rows in
input order. Rows that cannot be scored are
counted, not fatal, and written to ``<output>.rejects.csv`` (``row, reason, text``), reasons:

- ``empty``: missing, blank, or only spaces, zero-width or control characters
  (:mod:`finslm.visible`);
- ``malformed``: a CSV record with the wrong number of fields, a JSONL line that is not a JSON
  object;
- ``missing_key``: a JSONL object without the ``text_column`` key (on the file's first object
  it refuses the whole file instead, naming the keys it has: a wrong ``--text-column``);
- ``not_text``: a non-string JSONL value (a number, a list);
- ``not_utf8``: bytes that are not UTF-8 in a UTF-8 file (CSV/TXT/JSONL), or in a binary
  parquet cell. A CSV, TSV or TXT file with no UTF-8 character at all is read as latin-1 /
  Windows-1252, as ``prepare`` reads it (:func:`finslm.data.encoding.stream_encoding`), and
  the summary says so; JSON Lines are UTF-8 by definition (RFC 8259);
- ``too_long``: more than ``max_chars`` characters (``data.max_chars``'s default, 2000).

A token classifier (:class:`finslm.ner.predict.Tagger`, an ``exports/<ner model>`` folder)
writes ``row``, ``text``, ``n_entities`` and ``entities`` instead: the entity spans (``text``,
``type``, ``start``, ``end`` in characters of the text, ``score``), a JSON list in ``.jsonl``
and a JSON string in ``.csv`` and ``.parquet``; long texts are tagged in overlapping windows,
never cut.

Both files are written under temporary names and renamed at the end, the output first, so an
interrupted or failed run leaves no half-written output and no rejects file of its own. Neither
file may be the input (:func:`check_paths`).
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from finslm.errors import FinslmError
from finslm.outputs import atomic_path
from finslm.tasks import tags_entities
from finslm.visible import has_content

INPUT_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".txt": "txt",
    ".jsonl": "jsonl",
}
OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl"}
REASONS = ("empty", "malformed", "missing_key", "not_text", "not_utf8", "too_long")
REJECT_TEXT_CHARS = 200  # rejects keep the start of a text: enough to find it, not a copy


class BulkError(FinslmError, ValueError):
    """The input or output cannot be used at all; the message names the file and the fix."""


@dataclass
class BulkResult:
    rows: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    output: Path | None = None
    rejects: Path | None = None
    truncated: int = 0  # kept texts longer than the model's max tokens (scored on their start)
    max_tokens: int | None = None
    encoding: str | None = None  # how a text input was decoded (None: parquet)

    @property
    def per_second(self) -> float:
        """Sentences scored per second of wall time (reading and writing included)."""
        return self.kept / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        reasons = ", ".join(f"{r} {n}" for r, n in self.rejected.items() if n) or "none"
        return (
            f"scored {self.kept} of {self.rows} rows in {self.seconds:.1f} s "
            f"({self.per_second:.1f} sentences/s) -> {self.output}; rejected "
            f"{sum(self.rejected.values())} ({reasons})"
            + (f" -> {self.rejects}" if sum(self.rejected.values()) else "")
            + (
                f"; {self.truncated} texts longer than the model's {self.max_tokens} tokens were "
                "scored on their first part (column truncated)"
                if self.truncated
                else ""
            )
            + (
                "; the input is not UTF-8: read as latin-1 / Windows-1252, as prepare reads it"
                if self.encoding == "latin-1"
                else ""
            )
        )


def rejects_path(output: Path) -> Path:
    return output.with_name(output.name + ".rejects.csv")


def check_paths(input: Path, output: Path) -> tuple[str, str]:
    """``(input format, output format)`` from the suffixes, or a BulkError. Neither the output
    nor its rejects file (:func:`rejects_path`) may be the input: both are replaced."""
    input, output = Path(input), Path(output)
    if str(input) == "-":
        raise BulkError(
            "--input -: bulk scoring reads files, not stdin. Fix: for stdin (one text per "
            "line) use `finslm predict -` without --input/--output, or save it to a file"
        )
    if input.is_dir():
        raise BulkError(f"--input {input}: is a folder; pass a file ({', '.join(INPUT_FORMATS)})")
    fmt_in = INPUT_FORMATS.get(input.suffix.lower())
    if fmt_in is None:
        raise BulkError(
            f"--input {input}: unsupported type {input.suffix or '(no suffix)'!r}; use "
            f"{', '.join(INPUT_FORMATS)}"
        )
    if not input.is_file():
        raise BulkError(f"--input {input}: no such file")
    fmt_out = OUTPUT_FORMATS.get(output.suffix.lower())
    if fmt_out is None:
        raise BulkError(
            f"--output {output}: unsupported type {output.suffix or '(no suffix)'!r}; use "
            f"{', '.join(OUTPUT_FORMATS)}"
        )
    if output.resolve() == input.resolve():
        raise BulkError(f"--output {output}: is the input file; choose another name")
    rejects = rejects_path(output)
    if rejects.resolve() == input.resolve():
        raise BulkError(
            f"--output {output}: its rejects file {rejects} is the input file {input}, and "
            "would be overwritten. Fix: choose another --output"
        )
    # A folder in the way is found now, not after every row has been scored.
    if output.is_dir():
        raise BulkError(
            f"--output {output}: is a folder; pass a file name ({', '.join(OUTPUT_FORMATS)})"
        )
    if rejects.is_dir():
        raise BulkError(
            f"--output {output}: its rejects file {rejects} is a folder. Fix: choose another "
            "--output"
        )
    return fmt_in, fmt_out


# --- reading ---


class _NotUtf8(str):
    """A TXT line whose bytes are not UTF-8 (kept, latin-1-decoded, for the rejects file)."""


class _Malformed(str):
    """A CSV record with the wrong number of fields, or a JSONL line that is not a JSON object
    (kept as text for the rejects file)."""


class _MissingKey(str):
    """A JSONL object without the text key (kept as its line for the rejects file)."""


def _open_lines(path: Path, encoding: str) -> Iterator[str]:
    """The file's lines (line ends kept, as ``csv.reader`` needs them), decoded with
    ``encoding`` (:func:`finslm.data.encoding.stream_encoding`); bytes that are not UTF-8 in a
    UTF-8 file come surrogate-escaped (then rejected as not_utf8)."""
    from finslm.data.encoding import cp1252_controls

    with open(path, encoding=encoding, errors="surrogateescape", newline="") as fh:
        if encoding == "latin-1":
            yield from map(cp1252_controls, fh)
        else:
            yield from fh


def _csv_values(
    path: Path, column: str, delimiter: str = ",", encoding: str = "utf-8-sig"
) -> Iterator[Any]:
    # The csv module, not pandas: it streams too, keeps bytes that are not UTF-8 (surrogate-
    # escaped, then rejected as not_utf8) and lets a bad record be a reject, not the end.
    from finslm.data.tables import _no_field_limit

    lines = _open_lines(path, encoding)
    with _no_field_limit():
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        start = 1
        try:
            header = [name.strip() for name in next(reader, [])]
            if not header:
                raise BulkError(f"--input {path}: empty file, no header row")
            if any(_printable(name) != name for name in header):
                raise BulkError(
                    f"--input {path}, line 1: the header is not UTF-8 text (is this a CSV "
                    "file?). Fix: save the file as UTF-8 CSV"
                )
            if column not in header:
                from finslm.data.tables import data_like_header, semicolon_hint

                if hint := semicolon_hint(header):
                    raise BulkError(f"--input {path}: {hint}")
                if data_like_header(header):
                    raise BulkError(
                        f"--input {path}: no column {column!r}: the first row "
                        f"({', '.join(map(repr, header))}) looks like data, not a header. Fix: "
                        f"add a first line naming the columns (e.g. {column}), or score a "
                        "one-text-per-line .txt file instead"
                    )
                raise BulkError(
                    f"--input {path}: no column {column!r}; it has "
                    f"{', '.join(map(repr, header))}. Fix: --text-column NAME"
                )
            at = header.index(column)
            while True:
                start = reader.line_num + 1  # a record can span lines: name where it began
                record = next(reader, None)
                if record is None:
                    break
                if not record:
                    yield None  # a blank line: a row, rejected as empty
                elif len(record) != len(header):
                    yield _Malformed(delimiter.join(record))
                else:
                    yield record[at]
        except csv.Error as exc:
            # Reported at the line where the record began: an unclosed quote makes the parser
            # read on, often for many lines, before it fails.
            ended = f", gave up at line {reader.line_num}" if reader.line_num > start else ""
            raise BulkError(
                f"--input {path}, line {start}: cannot parse CSV: a quoted field opened on this "
                f'line is not closed, or its closing " is followed by more text ({exc}{ended}). '
                'Fix: quote fields that contain commas, quotes or line breaks, and double each " '
                'inside a quoted field ("")'
            ) from None


def _parquet_chunks(path: Path, column: str, chunk_rows: int) -> Iterator[list[Any]]:
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, … for a bad file
        raise BulkError(f"--input {path}: not a readable parquet file ({exc})") from None
    names = file.schema_arrow.names
    if column not in names:
        raise BulkError(
            f"--input {path}: no column {column!r}; it has {', '.join(map(repr, names))}. "
            f"Fix: --text-column NAME"
        )
    kind = _parquet_kind(file.schema_arrow.field(column).type)
    if kind is None:  # every row would be a not_text reject: say so before reading any
        texts = [f.name for f in file.schema_arrow if _parquet_kind(f.type) in ("text", "bytes")]
        have = f"its text columns: {', '.join(map(repr, texts))}. " if texts else ""
        raise BulkError(
            f"--input {path}: column {column!r} is {file.schema_arrow.field(column).type}, not "
            f"text; {have}Fix: --text-column NAME"
        )
    for batch in file.iter_batches(batch_size=chunk_rows, columns=[column]):
        values = batch.column(0).to_pylist()
        yield [_utf8(v) for v in values] if kind == "bytes" else values


def _parquet_kind(dtype) -> str | None:
    """``text`` (strings), ``bytes`` (binary, as Spark writes strings: decoded per cell), ``null``
    (no values at all: every row an empty reject) or None (numbers, lists, …: not text)."""
    import pyarrow as pa

    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    if pa.types.is_null(dtype):
        return "null"
    t = pa.types
    if t.is_string(dtype) or t.is_large_string(dtype) or t.is_string_view(dtype):
        return "text"
    if t.is_binary(dtype) or t.is_large_binary(dtype) or t.is_binary_view(dtype):
        return "bytes"
    return None


def _utf8(value: bytes | None) -> str | None:
    """A binary cell as text; bytes that are not UTF-8 come as :class:`_NotUtf8`."""
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return _NotUtf8(value.decode("latin-1"))


_READ_CHARS = 1 << 20  # characters read at a time by _txt_lines


def _txt_lines(path: Path, encoding: str = "utf-8-sig") -> Iterator[str]:
    """Each line, BOM and line end removed, split as ``predict --file`` splits
    (:func:`finslm.data.encoding.split_lines`: CRLF, lone CR and LF; a final line end adds no
    line), but streamed; a line whose bytes are not UTF-8 comes as :class:`_NotUtf8`."""
    from finslm.data.encoding import cp1252_controls, split_lines

    def line(text: str) -> str:
        printable = _printable(text)
        return text if printable == text else _NotUtf8(printable)

    with open(path, encoding=encoding, errors="surrogateescape", newline="") as fh:
        carry: list[str] = []  # pieces of the unfinished last line (joined once: no rescans)
        cr = ""  # a final "\r" held back: maybe the first half of a CRLF cut by the read
        while chunk := fh.read(_READ_CHARS):
            if encoding == "latin-1":
                chunk = cp1252_controls(chunk)
            text = cr + chunk
            cr = "\r" if text.endswith("\r") else ""
            lines = split_lines(text[:-1] if cr else text)
            if len(lines) > 1:  # a line end: the carried line is complete
                lines[0] = "".join(carry) + lines[0]
                carry = []
            carry.append(lines.pop())
            yield from map(line, lines)
        rest = "".join(carry)
        if rest or cr:  # a last line without a line end, or one ended by the held "\r"
            yield line(rest)


def _jsonl_values(path: Path, column: str, encoding: str = "utf-8-sig") -> Iterator[Any]:
    first_object = True
    for number, line in enumerate(_txt_lines(path, encoding), start=1):
        value: Any = None  # a blank line: a row, rejected as empty
        if isinstance(line, _NotUtf8):
            value = line
        elif line.strip():
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                value = _Malformed(line)
            elif column in record:
                value = record[column]
            elif first_object:  # a wrong key would reject every row: say so instead
                keys = ", ".join(map(repr, record)) or "no keys"
                raise BulkError(
                    f"--input {path}, line {number}: no key {column!r}; it has {keys}. "
                    "Fix: --text-column NAME"
                )
            else:
                value = _MissingKey(line)
            first_object = first_object and not isinstance(record, dict)
        yield value


def _chunked(values: Iterator[Any], chunk_rows: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for value in values:
        chunk.append(value)
        if len(chunk) >= chunk_rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def read_chunks(
    path: Path, fmt: str, column: str, chunk_rows: int, encoding: str = "utf-8-sig"
) -> Iterator[list[Any]]:
    """Lists of raw cell values, ``chunk_rows`` at a time, in file order; a text format decoded
    with ``encoding`` (:func:`finslm.data.encoding.stream_encoding` chooses it)."""
    if fmt == "parquet":
        return _parquet_chunks(path, column, chunk_rows)
    if fmt in ("csv", "tsv"):
        delimiter = "\t" if fmt == "tsv" else ","
        return _chunked(_csv_values(path, column, delimiter, encoding), chunk_rows)
    if fmt == "jsonl":
        return _chunked(_jsonl_values(path, column, encoding), chunk_rows)
    return _chunked(_txt_lines(path, encoding), chunk_rows)


def classify(value: Any, max_chars: int) -> tuple[str, str | None]:
    """``(text, None)`` for a scorable value, else ``(printable value, reason)``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "", "empty"
    if isinstance(value, _NotUtf8):
        return str(value), "not_utf8"
    if isinstance(value, _Malformed):
        return _printable(str(value)), "malformed"
    if isinstance(value, _MissingKey):
        return _printable(str(value)), "missing_key"
    if not isinstance(value, str):
        return repr(value), "not_text"
    if _printable(value) != value:  # surrogate-escaped bytes from the CSV reader
        return _printable(value), "not_utf8"
    text = value.strip()
    if not has_content(text):  # blank, or only zero-width / control characters (finslm.visible)
        return _printable(text), "empty"
    if len(text) > max_chars:
        return text, "too_long"
    return text, None


def _printable(text: str) -> str:
    """``text`` with surrogate-escaped bytes read as latin-1 (so the rejects file can hold it)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("latin-1")
    return text


# --- writing ---


class _Writer:
    def __init__(self, path: Path, fmt: str, labels: tuple[str, ...], columns=None):
        self.path, self.fmt, self.labels = path, fmt, labels
        self.columns = columns or [
            "row", "text", "label", *(f"p_{label}" for label in labels), "truncated"
        ]  # fmt: skip
        self._fh = None
        self._parquet = None
        if fmt != "parquet":
            self._fh = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed in close())
            if fmt == "csv":
                self._csv = csv.writer(self._fh)
                self._csv.writerow(self.columns)

    def write(self, rows: list[int], texts: list[str], proba: np.ndarray, cut: np.ndarray) -> None:
        labels = [self.labels[i] for i in proba.argmax(axis=1)] if len(rows) else []
        cut = [bool(c) for c in cut]
        if self.fmt == "csv":
            for row, text, label, p, c in zip(rows, texts, labels, proba, cut, strict=True):
                self._csv.writerow([row, text, label, *(f"{x:.6f}" for x in p), c])
        elif self.fmt == "jsonl":
            for row, text, label, p, c in zip(rows, texts, labels, proba, cut, strict=True):
                record = {"row": row, "text": text, "label": label}
                record |= {f"p_{lb}": round(float(x), 6) for lb, x in zip(self.labels, p, strict=True)}  # fmt: skip
                record["truncated"] = c
                self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            data = {"row": pa.array(rows, pa.int64()), "text": pa.array(texts, pa.string())}
            data["label"] = pa.array(labels, pa.string())
            for i, label in enumerate(self.labels):
                data[f"p_{label}"] = pa.array(proba[:, i].astype(np.float32), pa.float32())
            data["truncated"] = pa.array(cut, pa.bool_())
            table = pa.table(data)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table)

    def close(self) -> None:
        if self.fmt == "parquet":
            if self._parquet is None:  # no row kept: still a valid, empty file
                self.write([], [], np.zeros((0, len(self.labels)), dtype=np.float32), [])
            self._parquet.close()
        else:
            self._fh.close()


class _EntityWriter(_Writer):
    """``row, text, n_entities, entities`` per kept row (a token classifier's output)."""

    def __init__(self, path: Path, fmt: str):
        super().__init__(path, fmt, (), columns=["row", "text", "n_entities", "entities"])

    def write(self, rows: list[int], texts: list[str], found: list, cut=None) -> None:
        if self.fmt == "jsonl":
            for row, text, spans in zip(rows, texts, found, strict=True):
                record = {"row": row, "text": text, "n_entities": len(spans), "entities": spans}
                self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            return
        encoded = [json.dumps(spans, ensure_ascii=False) for spans in found]
        if self.fmt == "csv":
            for row, text, spans, js in zip(rows, texts, found, encoded, strict=True):
                self._csv.writerow([row, text, len(spans), js])
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(
            {
                "row": pa.array(rows, pa.int64()),
                "text": pa.array(texts, pa.string()),
                "n_entities": pa.array([len(f) for f in found], pa.int32()),
                "entities": pa.array(encoded, pa.string()),
            }
        )
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.path, table.schema)
        self._parquet.write_table(table)

    def close(self) -> None:
        if self.fmt == "parquet" and self._parquet is None:
            self.write([], [], [])  # no row kept: still a valid, empty file
        super().close()


# --- the loop ---


def score_file(
    predictor,
    input: Path,
    output: Path,
    text_column: str = "text",
    batch_size: int = 32,
    chunk_rows: int = 10_000,
    max_chars: int = 2000,
    progress: bool | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> BulkResult:
    """Score every row of ``input`` into ``output`` (see the module docstring).

    ``progress``: a tqdm bar on stderr (None: only when stderr is a terminal).
    """
    from tqdm import tqdm

    input, output = Path(input), Path(output)
    fmt_in, fmt_out = check_paths(input, output)
    result = BulkResult(output=output, rejects=rejects_path(output))
    result.max_tokens = getattr(predictor, "max_tokens", None)
    result.rejected = Counter(dict.fromkeys(REASONS, 0))
    if fmt_in in ("csv", "tsv", "txt"):  # JSON text is UTF-8 by definition (RFC 8259)
        from finslm.data.encoding import stream_encoding

        result.encoding = stream_encoding(input)
    total = None
    if fmt_in == "parquet":
        import pyarrow.parquet as pq

        try:
            total = pq.ParquetFile(input).metadata.num_rows
        except Exception:  # reported properly by the reader below
            total = None
    start = clock()
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=total, unit=" rows", file=sys.stderr, disable=not show, mininterval=0.5)
    # The output is renamed into place first, its rejects file only after it (the inner block
    # exits first): a run that fails, even at the very end, leaves no rejects file of its own.
    with atomic_path(result.rejects) as tmp_rej, atomic_path(output) as tmp_out:
        if tags_entities(predictor):
            writer = _EntityWriter(tmp_out, fmt_out)
        else:
            writer = _Writer(tmp_out, fmt_out, tuple(predictor.labels))
        with open(tmp_rej, "w", encoding="utf-8", newline="") as rej_fh:
            rejects = csv.writer(rej_fh)
            rejects.writerow(["row", "reason", "text"])
            try:
                chunks = read_chunks(
                    input, fmt_in, text_column, chunk_rows, result.encoding or "utf-8-sig"
                )
                for values in chunks:
                    first = result.rows + 1
                    keep_rows, keep_texts = [], []
                    for offset, value in enumerate(values):
                        text, reason = classify(value, max_chars)
                        if reason is None:
                            keep_rows.append(first + offset)
                            keep_texts.append(text)
                        else:
                            result.rejected[reason] += 1
                            rejects.writerow([first + offset, reason, text[:REJECT_TEXT_CHARS]])
                    scored = _scored(predictor, keep_texts, batch_size)
                    # A token classifier tags long texts in windows; a classifier reads the start.
                    cut = [] if tags_entities(predictor) else predictor.truncated(keep_texts)
                    result.truncated += int(np.sum(cut))
                    writer.write(keep_rows, keep_texts, scored, cut)
                    result.rows += len(values)
                    result.kept += len(keep_rows)
                    bar.update(len(values))
            finally:
                writer.close()
                bar.close()
    if not sum(result.rejected.values()):
        result.rejects.unlink()  # nothing rejected: no rejects file (and no stale one)
    result.seconds = clock() - start
    assert result.rows == result.kept + sum(result.rejected.values())
    return result


def _scored(predictor, texts: list[str], batch_size: int):
    """Probabilities in ``texts`` order; :meth:`finslm.predict.Predictor.predict_proba` batches
    them in order of length (little padding) and puts the rows back. A token classifier's
    entity lists, batched the same way (:meth:`finslm.ner.predict.Tagger.entities`)."""
    if tags_entities(predictor):
        return predictor.entities(texts, batch_size=batch_size) if texts else []
    if not texts:
        return np.zeros((0, len(predictor.labels)), dtype=np.float32)
    return predictor.predict_proba(texts, batch_size=batch_size)
