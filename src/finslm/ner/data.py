"""NER data: read, normalise to IOB2, clean (rejects counted by reason), select labels, split,
cut long sentences into windows.

Sources (``ner.source`` / ``ner.test_source``, ``ner.format``):

- CoNLL text (``.conll``, ``.txt``): one token a line, any number of space- or tab-separated
  columns, the token first and the tag last; a blank line ends a sentence; ``-DOCSTART-`` lines
  are skipped. Lines end at ``\n``, ``\r\n`` or ``\r`` only and columns split on ASCII
  spaces and tabs only, so a token keeps any other character (U+00A0 in ``5 000``);
- JSONL (``.jsonl``) or Parquet (``.parquet``) tables with a list column ``tokens`` and a list
  column ``tags`` (tag strings), or ``ner_tags`` (integers, named by the file's Hugging Face
  ``ClassLabel`` metadata); ``ner.format: jsonl`` / ``parquet`` overrides the suffix;
- ``hub:nlpaueb/finer-139`` (any hub dataset in that layout): the dataset's Parquet files,
  label names read from its ``ClassLabel`` feature, never assumed (:func:`read_hub`).

A sentence is a record ``{tokens, tags, source, line, document}`` (``line``: 1-based line of
its first token; row number for tables; ``document``: the number of ``-DOCSTART-`` lines
before it in a CoNLL file, or a table's optional ``document`` field (a string, an integer or a
whole-number float, kept as a string: ``1.0`` -> ``"1"``; missing or null: ``""``, apart from a real ``"0"``); else
``"0"``). Cleaning (:func:`clean`) rejects, counting each reason:
``malformed_line`` (a table row that is not a record: a JSONL line that is not an object,
``tokens`` / ``tags`` that are not lists of strings, ``ner_tags`` that are not lists of
integers, a ``document`` that is not a string, an integer or a whole-number float),
``length_mismatch`` (tokens and tags differ in number: a CoNLL line with no tag column),
``unknown_tag`` (not ``O`` / ``B-T`` / ``I-T``, or an integer outside the label names),
``orphan_i`` (an ``I-T`` starting an entity in data declared IOB2, with ``ner.orphan_i:
reject``; ``repair`` makes it ``B-T`` and counts it under ``repaired``; under ``scheme: auto``
such a file is detected as IOB1, where the ``I-`` is legal), ``empty``
(no tokens, or a blank token), ``duplicate`` (same tokens and tags as an earlier sentence) and
``conflicting_duplicate`` (same tokens, other tags: the first is kept). Over-long sentences are
not truncated: :func:`windows` cuts them into pieces of at most ``ner.max_words`` words, never
inside an entity when it can help it.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from finslm.data.encoding import bom_codec, bomless_utf16, split_lines
from finslm.data.errors import DataError
from finslm.ner.tags import (
    detect_scheme,
    is_valid,
    normalise_tag,
    orphan_positions,
    select_types,
    to_iob2,
)

COLUMNS = ("tokens", "tags", "source", "line", "document")
DOCSTART = "-DOCSTART-"
HUB_PREFIX = "hub:"
CONLL_SUFFIXES = {".conll", ".txt", ".iob", ".bio", ".tsv"}
FORMATS = ("auto", "conll", "jsonl", "parquet", "hub")
_COLUMN_SEP = re.compile(r"[ \t]+")  # ASCII space and tab only: tokens keep U+00A0 etc.
_PROBE = 8192  # bytes inspected for NUL (binary or BOM-less UTF-16), as git does


def _not_text(path: Path, raw: bytes) -> str | None:
    """Why ``raw`` cannot be UTF-8 text (a UTF-16/32 byte-order mark, NUL bytes), or None."""
    fix = "Fix: re-encode the file as UTF-8 (iconv -f {} -t UTF-8 {} > out)."
    if codec := bom_codec(raw):
        name = codec.upper()
        return f"{path}: {name} text (byte-order mark), not UTF-8. " + fix.format(name, path)
    probe = raw[:_PROBE]
    if b"\x00" not in probe:
        return None
    if codec := bomless_utf16(probe):  # ASCII text in UTF-16: every other byte NUL
        name = codec.upper()
        return f"{path}: looks like {name} text (no byte-order mark), not UTF-8. " + (
            fix.format(name, path)
        )
    kind = " (a Parquet file: set ner.format: parquet)" if raw.startswith(b"PAR1") else ""
    return (
        f"{path}: binary file, not text{kind}; it contains NUL bytes. Fix: point ner.source / "
        "ner.test_source at a UTF-8 CoNLL or JSONL file, or a .parquet file."
    )


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise DataError(
            f"{path}: no such file. Fix: point ner.source / ner.test_source (params.yaml) at a "
            "CoNLL, JSONL or Parquet file, or hub:<dataset id>."
        )
    raw = path.read_bytes()
    if problem := _not_text(path, raw):
        raise DataError(problem)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: not UTF-8 (byte {raw[exc.start]:#x}). Fix: re-encode the file "
            "as UTF-8 (from latin-1: iconv -f latin1 -t utf-8)."
        ) from None


def read_conll(path: Path) -> list[dict[str, Any]]:
    """Sentences of a CoNLL file: token first column, tag last column, blank-line separated.

    Columns are split on ASCII spaces and tabs; on a line with a tab, on tabs only, so a token
    may hold spaces: ``New York Mellon<TAB>B-ORG`` is read as three words tagged ``B-ORG``,
    ``I-ORG``, ``I-ORG`` (prediction splits raw text into words the same way).

    A line with a single column (a token with no tag) keeps its token and no tag, so the
    sentence is rejected as ``length_mismatch`` by :func:`clean` (counted, not fatal).
    """
    path = Path(path)
    sentences: list[dict[str, Any]] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = document = 0

    def flush() -> None:
        nonlocal tokens, tags
        if tokens or tags:
            sentences.append(
                {
                    "tokens": tokens,
                    "tags": tags,
                    "source": path.name,
                    "line": start,
                    "document": str(document),
                }
            )
        tokens, tags = [], []

    for number, line in enumerate(split_lines(_read_text(path)), start=1):
        line = line.strip(" \t")
        # A line of only blanks of any kind (U+00A0, U+3000 ...) ends a sentence, as an empty one
        # does; inside a line only ASCII space and tab separate columns.
        if "\t" in line:  # tab-separated: a token may hold spaces ("New York Mellon")
            fields = [f.strip(" ") for f in line.split("\t")]
            fields = [f for f in fields if f] if line.strip() else []
        else:
            fields = _COLUMN_SEP.split(line) if line.strip() else []
        if not fields:
            flush()
            continue
        if fields[0] == DOCSTART:
            flush()
            document += 1
            continue
        if not tokens and not tags:
            start = number
        words = fields[0].split(" ")  # a spaced token: one word each, as prediction splits
        tokens.extend(words)
        if len(fields) >= 2:
            tag = fields[-1]
            inside = "O" if tag == "O" or len(tag) < 3 else f"I-{tag[2:]}"
            tags.extend([tag] + [inside] * (len(words) - 1))
    flush()
    return sentences


def _classlabel_names(schema_metadata: dict[bytes, bytes] | None, column: str) -> list[str] | None:
    """Label names of a Sequence(ClassLabel) column from a Hugging Face Parquet file's metadata
    (None when there are none, or the metadata cannot be read)."""
    if not schema_metadata or b"huggingface" not in schema_metadata:
        return None
    try:
        info = json.loads(schema_metadata[b"huggingface"])
        features = info.get("info", {}).get("features", {}) or info.get("features", {})
        feature = features.get(column) or {}
        inner = feature.get("feature", feature)
        if isinstance(inner, list):  # the older list-of-feature form
            inner = inner[0] if inner else {}
        names = inner.get("names")
    except (ValueError, AttributeError, TypeError, RecursionError):
        return None
    return [str(n) for n in names] if isinstance(names, list) and names else None


class _Malformed(ValueError):
    """A table row that is not a sentence record; :func:`clean` rejects it as ``malformed_line``."""


class _MissingKeys(_Malformed):
    """A row without the sentence columns: a counted reject, unless no row has them (then the
    file is not in this layout at all, a DataError)."""


def _what(value: Any) -> str:
    name = type(value).__name__
    return "null" if value is None else f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _list_of(record: dict, key: str, kind: type) -> list:
    """``record[key]`` if it is a list of ``kind`` (a JSON array, a Parquet list cell)."""
    value = record[key]
    if not isinstance(value, list):  # a string would become its characters, a dict its keys
        raise _Malformed(f"{key!r} is {_what(value)}, not a list")
    for item in value:
        if not isinstance(item, kind) or isinstance(item, bool):
            raise _Malformed(f"{key!r} holds {_what(item)} ({item!r:.40}), not {kind.__name__}")
    return value


def _document(value: Any) -> str:
    """A table's ``document`` field as a string: missing / null / NaN -> ``""`` (no document;
    not ``"0"``, which a file may use as a real id), ``1.0`` -> ``"1"`` (pandas writes integer
    columns with gaps as floats)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    raise _Malformed(f"'document' is {_what(value)} ({value!r:.40}), not a string or an integer")


def _table_sentence(record: Any, path: Path, number: int, label_names: list[str] | None) -> dict:
    """One table row as a sentence; ``_Malformed`` for a bad row, DataError for a bad file."""
    if isinstance(record, _Malformed):  # a JSONL line that could not be parsed into a record
        raise record
    if not isinstance(record, dict):
        raise _Malformed(f"{_what(record)}, not a JSON object")
    if "tokens" not in record or not ({"tags", "ner_tags"} & set(record)):
        raise _MissingKeys(
            f"{path}, line {number}: needs a 'tokens' list and a 'tags' (strings) or "
            f"'ner_tags' (integers) list; has {', '.join(map(str, record)) or 'nothing'}."
        )
    tokens = _list_of(record, "tokens", str)
    if "tags" in record:
        tags = _list_of(record, "tags", str)
    else:
        if label_names is None:
            values = record.get("ner_tags")
            strings = (
                isinstance(values, list) and values and all(isinstance(v, str) for v in values)
            )
            raise DataError(
                f"{path}: 'ner_tags' hold tag strings, which finslm reads from a 'tags' column. "
                "Fix: rename 'ner_tags' to 'tags'."
                if strings
                else f"{path}: 'ner_tags' are integers but the file names no labels (no Hugging "
                "Face ClassLabel metadata). Fix: write tag strings in a 'tags' column."
            )
        ids = _list_of(record, "ner_tags", int)
        # An id outside the names becomes an invalid tag: rejected as unknown_tag.
        tags = [label_names[i] if 0 <= i < len(label_names) else f"?{i}" for i in ids]
    return {
        "tokens": list(tokens),
        "tags": list(tags),
        "source": path.name,
        "line": number,
        "document": _document(record.get("document")),
    }


def _read_parquet(path: Path) -> tuple[list[dict], list[str] | None]:
    """(rows as dicts of the columns read, ``ner_tags`` label names) of a Parquet file."""
    if not path.is_file():
        _read_text(path)  # raises the missing-file error
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{path}: not a readable Parquet file ({str(exc)[:200]}). Fix: re-write it (e.g. "
            "pandas DataFrame.to_parquet), or set ner.format to the file's format."
        ) from None
    names = table.column_names
    if "tokens" not in names or not ({"tags", "ner_tags"} & set(names)):
        raise DataError(
            f"{path}: needs a 'tokens' list column and a 'tags' (strings) or 'ner_tags' "
            f"(integers) list column; has {', '.join(names) or 'nothing'}."
        )
    wanted = [c for c in ("tokens", "tags", "ner_tags", "document") if c in names]
    # Arrow -> Python directly: list cells stay lists (a string cell stays a string, to be
    # rejected), nulls are None.
    return table.select(wanted).to_pylist(), _classlabel_names(table.schema.metadata, "ner_tags")


def _read_jsonl(path: Path) -> tuple[list[Any], list[int]]:
    """(parsed lines, their line numbers); a line that parses but cannot be a record (nested
    too deeply, a number too long) is a ``_Malformed`` in its place, invalid JSON a DataError."""
    records: list[Any] = []
    lines: list[int] = []
    for number, line in enumerate(split_lines(_read_text(path)), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}, line {number}: not valid JSON ({exc.msg}). Fix: one JSON object "
                'a line, e.g. {"tokens": ["Acme", "Corp"], "tags": ["B-ORG", "I-ORG"]}.'
            ) from None
        except RecursionError:
            records.append(_Malformed("JSON nested too deeply"))
        except ValueError as exc:  # e.g. an integer over Python's 4300-digit limit
            records.append(_Malformed(f"unreadable JSON value ({str(exc)[:80]})"))
        lines.append(number)
    return records, lines


def read_table(
    path: Path, label_names: list[str] | None = None, fmt: str = "auto"
) -> list[dict[str, Any]]:
    """Sentences of a JSONL or Parquet ``{tokens, tags}`` (or ``{tokens, ner_tags}``) table
    (``fmt``: ``jsonl``, ``parquet``, or ``auto``: Parquet for ``.parquet``, else JSONL).

    A row that is not a record (see the module docstring) is kept with no tokens and a
    ``malformed`` detail, so :func:`clean` counts it as ``malformed_line`` with its line (JSONL)
    or row number (Parquet)."""
    path = Path(path)
    if fmt == "parquet" or (fmt == "auto" and path.suffix.lower() == ".parquet"):
        records, names = _read_parquet(path)
        label_names = label_names or names
        lines = list(range(1, len(records) + 1))  # row numbers
    else:
        records, lines = _read_jsonl(path)
    out, missing = [], []
    for record, number in zip(records, lines, strict=True):
        try:
            out.append(_table_sentence(record, path, number, label_names))
        except _Malformed as exc:
            if isinstance(exc, _MissingKeys):
                missing.append(exc)
            out.append(
                {
                    "tokens": [],
                    "tags": [],
                    "source": path.name,
                    "line": number,
                    "document": "0",
                    "malformed": str(exc),
                }
            )
    if missing and len(missing) == len(records):
        raise DataError(str(missing[0]))
    return out


def read_hub(source: str, split: str, config: str) -> list[dict[str, Any]]:
    """A hub token-classification dataset (``hub:nlpaueb/finer-139``): its Parquet files for
    ``split``, ``tokens`` + integer ``ner_tags`` named by the dataset's ClassLabel feature.

    Reads the hub's Parquet conversion (``refs/convert/parquet``), so the ``datasets`` package
    and the dataset's loading script are not needed. Needs a network (or the HF cache).
    """
    import huggingface_hub

    from finslm.data.hub import _download_error, split_files

    repo_id = source.removeprefix(HUB_PREFIX).strip()
    try:
        root = Path(
            huggingface_hub.snapshot_download(
                repo_id,
                repo_type="dataset",
                revision="refs/convert/parquet",
                allow_patterns=["*.parquet"],
            )
        )
    except Exception as exc:
        raise _download_error(repo_id, exc, key="ner.source") from exc
    out = []
    for path in split_files(root, split, config, repo_id):
        records = read_table(path, fmt="parquet")
        name = str(path.relative_to(root).as_posix())
        out += [{**r, "source": name} for r in records]
    return out


def read_sentences(source: str, fmt: str = "auto", hub_split="train", hub_config="") -> list[dict]:
    """Read ``source`` in ``fmt`` (``auto``: by suffix, or ``hub:`` prefix)."""
    if fmt not in FORMATS:
        raise DataError(f"ner.format: {fmt!r} is not one of {', '.join(FORMATS)}.")
    if fmt == "hub" or (fmt == "auto" and source.startswith(HUB_PREFIX)):
        return read_hub(source, hub_split, hub_config)
    path = Path(source)
    suffix = path.suffix.lower()
    if fmt == "auto":
        if suffix in CONLL_SUFFIXES:
            fmt = "conll"
        elif suffix in {".jsonl", ".json"}:
            fmt = "jsonl"
        elif suffix == ".parquet":
            fmt = "parquet"
        else:
            raise DataError(
                f"{path}: cannot tell the format from the suffix {suffix!r}. Fix: set "
                "ner.format to conll, jsonl or parquet."
            )
    if fmt == "conll":
        return read_conll(path)
    return read_table(path, fmt=fmt)


# --- cleaning ---


@dataclass
class Cleaned:
    """Kept sentences (IOB2), rejected ones (with ``reason``), and what was counted."""

    rows: pd.DataFrame
    rejects: pd.DataFrame
    scheme: str
    counts: dict[str, int] = field(default_factory=dict)
    # Entity types in the valid sentences, renamed by label_map, before the type selection
    # (in order of appearance): what ``entity_types`` can choose from.
    types_found: list[str] = field(default_factory=list)


def _frame(records: list[dict], extra: tuple[str, ...] = ()) -> pd.DataFrame:
    return pd.DataFrame.from_records(records, columns=[*COLUMNS, *extra])


def clean(
    sentences: list[dict[str, Any]],
    *,
    scheme: str = "auto",
    orphan_i: str = "repair",
    entity_types: list[str] | tuple[str, ...] = (),
    label_map: dict[str, str] | None = None,
) -> Cleaned:
    """Validate, normalise to IOB2 and deduplicate ``sentences``; every reject has a reason.

    ``len(rows) + len(rejects) == len(sentences)`` always. ``counts`` also holds ``repaired``
    (orphan ``I-`` tags made ``B-``, sentences kept) and ``retyped_tokens`` (entity tokens
    mapped to ``O`` because their type is not in ``entity_types``).
    """
    kept: list[dict] = []
    rejects: list[dict] = []
    counts: Counter[str] = Counter()

    def reject(s: dict, reason: str, detail: str) -> None:
        rejects.append({**s, "reason": reason, "detail": detail})

    valid: list[dict] = []
    for s in sentences:
        tokens, raw_tags = list(s["tokens"]), list(s["tags"])
        tags = [normalise_tag(t) for t in raw_tags]
        counts["normalised_tags"] += sum(a != b for a, b in zip(raw_tags, tags, strict=False))
        s = {**s, "tags": tags}
        if s.get("malformed"):
            reject(s, "malformed_line", s["malformed"])
        elif not tokens or any(not t.strip() for t in tokens):
            reject(s, "empty", "no tokens" if not tokens else "a blank token")
        elif len(tokens) != len(tags):
            reject(s, "length_mismatch", f"{len(tokens)} tokens, {len(tags)} tags")
        elif bad := [t for t in tags if not is_valid(t)]:
            reject(s, "unknown_tag", f"tag {bad[0]!r}")
        else:
            valid.append(s)
    if scheme == "auto":
        scheme = detect_scheme([s["tags"] for s in valid])
    keep_types = list(entity_types)
    rename = dict(label_map or {})
    seen: dict[tuple[str, ...], tuple[str, ...]] = {}
    found: dict[str, None] = {}
    for s in valid:
        tags = list(s["tags"])
        if scheme == "iob2" and (orphans := orphan_positions(tags)):
            if orphan_i == "reject":
                reject(s, "orphan_i", f"I- with no entity before it at token {orphans[0] + 1}")
                continue
            counts["repaired"] += 1
        tags = to_iob2(tags)
        for tag in tags:
            if tag != "O":
                found.setdefault(rename.get(tag[2:], tag[2:]))
        new = select_types(tags, keep_types, rename)
        counts["retyped_tokens"] += sum(
            a != "O" and b == "O" for a, b in zip(tags, new, strict=True)
        )
        key = tuple(s["tokens"])
        if key in seen:
            same = seen[key] == tuple(new)
            reject(s, "duplicate" if same else "conflicting_duplicate", "seen earlier")
            continue
        seen[key] = tuple(new)
        kept.append({**s, "tokens": list(s["tokens"]), "tags": new})
    reject_frame = _frame(rejects, ("reason", "detail"))
    for reason in reject_frame["reason"]:
        counts[reason] += 1
    return Cleaned(_frame(kept), reject_frame, scheme, dict(counts), list(found))


# --- windows and splits ---


def _cut(tags: list[str], start: int, limit: int) -> int:
    """End of the window from ``start``: at most ``limit`` words, not inside an entity if a
    boundary exists in the second half of the window."""
    end = start + limit
    if end >= len(tags):
        return len(tags)
    for cut in range(end, start + limit // 2, -1):
        if not tags[cut].startswith("I-"):
            return cut
    return end


def windows(rows: pd.DataFrame, max_words: int) -> tuple[pd.DataFrame, int]:
    """Cut sentences longer than ``max_words`` into consecutive windows (no word dropped);
    a window starting inside an entity begins with ``B-``. Returns (rows, sentences cut)."""
    out, cut_count = [], 0
    for r in rows.to_dict("records"):
        tokens, tags = list(r["tokens"]), list(r["tags"])
        if len(tokens) <= max_words:
            out.append({**r, "tokens": tokens, "tags": tags})
            continue
        cut_count += 1
        start = 0
        while start < len(tokens):
            end = _cut(tags, start, max_words)
            out.append({**r, "tokens": tokens[start:end], "tags": to_iob2(tags[start:end])})
            start = end
    return _frame(out, tuple(c for c in rows.columns if c not in COLUMNS)), cut_count


def has_entity(rows: pd.DataFrame) -> np.ndarray:
    return np.array([any(t != "O" for t in tags) for tags in rows["tags"]])


def stratified_split(
    rows: pd.DataFrame, size: float, seed: int, key: str = "ner.val_size"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rest, held-out share ``size``), stratified by whether a sentence has an entity;
    ``key`` is the params key of ``size`` (for the error)."""
    from sklearn.model_selection import train_test_split

    n_held = int(np.ceil(size * len(rows)))
    if len(rows) < 2 or n_held < 1 or n_held >= len(rows):
        fix = "more sentences in ner.source" if len(rows) < 2 else f"a smaller {key}"
        raise DataError(
            f"{key}: {len(rows)} usable sentence(s) left cannot give a held-out share of "
            f"{size:g} and keep the rest. Fix: {fix}."
        )
    strata = has_entity(rows)
    stratify = strata if min(Counter(strata).values()) >= 2 and len(set(strata)) > 1 else None
    rest, held = train_test_split(rows, test_size=size, random_state=seed, stratify=stratify)
    return rest.reset_index(drop=True), held.reset_index(drop=True)


def document_split(rows: pd.DataFrame, size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rest, held-out whole documents): documents (``source`` + ``document``) in a seeded
    order, each held out when it brings the held-out sentence count closer to a ``size``
    share (at least one document, never all). Validation then measures what a test file of
    other documents measures: names and places the model has not seen in training."""
    keys = list(zip(rows["source"], rows["document"], strict=True))
    sizes = Counter(keys)
    if len(sizes) < 2:
        raise DataError(
            f"ner.val_by: document needs at least 2 documents in the training data; found "
            f"{len(sizes)} ({len(rows)} sentences). Documents are separated by -DOCSTART- lines "
            "(CoNLL) or a 'document' field (JSONL/Parquet). Fix: ner.val_by: sentence."
        )
    order = sorted(sizes)
    np.random.default_rng(seed).shuffle(order)
    target, held, total = size * len(rows), set(), 0
    for key in order:
        if len(held) < len(sizes) - 1 and abs(total + sizes[key] - target) < abs(total - target):
            held.add(key)
            total += sizes[key]
    if not held:  # every document is over twice the target: the smallest one
        held.add(min(order, key=lambda k: sizes[k]))
    mask = np.array([k in held for k in keys], dtype=bool)
    return rows[~mask].reset_index(drop=True), rows[mask].reset_index(drop=True)


def drop_overlap(train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Remove from ``train`` the sentences whose tokens occur in ``test``; returns (train, dropped)."""
    test_keys = {tuple(t) for t in test["tokens"]}
    mask = np.array([tuple(t) in test_keys for t in train["tokens"]], dtype=bool)
    dropped = train[mask].assign(reason="overlap_with_test", detail="also in the test file")
    return train[~mask].reset_index(drop=True), dropped.reset_index(drop=True)


def assert_no_overlap(splits: dict[str, pd.DataFrame]) -> None:
    """No token sequence in two splits (windows of one sentence always share a split)."""
    names = list(splits)
    for i, a in enumerate(names):
        keys = {tuple(t) for t in splits[a]["tokens"]}
        for b in names[i + 1 :]:
            common = keys & {tuple(t) for t in splits[b]["tokens"]}
            if common:
                example = " ".join(next(iter(common)))[:80]
                raise DataError(
                    f"splits {a} and {b} share {len(common)} sentence(s), e.g. {example!r}. "
                    "Fix: deduplicate the sources (a test file must not repeat training sentences)."
                )
