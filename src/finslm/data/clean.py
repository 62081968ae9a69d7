"""Clean loaded rows: normalise text and labels, drop bad rows, and account for every one.

    >>> clean_df, rejects, report = clean(loaded.rows, cfg, loaded.rejects)
    >>> report["dropped"]          # {"malformed_line": 0, "unknown_label": 3, ...}, all REASONS

Text: :func:`finslm.textnorm.normalise_text` (mojibake repair, Unicode NFKC, invisible
control/format characters removed, whitespace collapsed), which every Predictor applies to its
input too. Tokenised PhraseBank text ("company 's") is kept: detokenising would guess.

Rows are then checked in the order of ``REASONS``; a row is rejected for the first reason that
applies and written to the rejects frame with its source line and the raw text and label.
Conflicts are resolved before duplicates, so a sentence labelled both ways is dropped in every
copy ("conflicting_labels") rather than keeping whichever copy came first.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping

import pandas as pd

from finslm.config import DataConfig
from finslm.data.schema import REASONS, REJECT_COLUMNS, rejects_frame
from finslm.labels import LABELS
from finslm.textnorm import drop_invisible, repair_mojibake

log = logging.getLogger(__name__)

# Punctuation that changes a number's value keeps a mark in the key: a decimal point between
# digits becomes "ª", a comma between digits "ⁿ", a minus sign before a digit (not a hyphen
# after a word: "2008-09") "º". NFKC never leaves these word characters in text (it maps them
# to a, n and o), so "5.2"/"52", "1,5"/"15" and "-2.1"/"2.1" keep different keys while other
# punctuation is dropped. An accounting negative "(2.1)" reads as "-2.1", and per mille "‰"
# becomes "ᵐ" (NFKC maps that to m), apart from per cent. On the four PhraseBank files these
# two marks change no near-duplicate group.
_NUMBER_MARKS = (
    # An accounting negative, "(12.5)", is a minus sign: "EUR (12.5) million" is a loss.
    (re.compile(r"(?<!\w)\((?=\d[\d.,]*\))"), "º"),
    (re.compile(r"(?<=\d)\.(?=\d)"), "ª"),
    (re.compile(r"(?<=\d),(?=\d)"), "ⁿ"),
    (re.compile(r"(?<!\w)-(?=\d)"), "º"),
    # Per cent and per mille are different quantities.
    (re.compile("‰"), "ᵐ"),
)
_NOT_WORD = re.compile(r"[\W_]+")

DESCRIPTIONS: dict[str, str] = {
    "malformed_line": "lines that are not a record (no '@label', wrong number of fields)",
    "unknown_label": "labels outside " + "/".join(LABELS) + " after data.label_map",
    "empty_text": "texts with no letters or digits",
    "too_short": "texts shorter than data.min_chars",
    "too_long": "texts longer than data.max_chars",
    "conflicting_labels": "copies of a text that carries different labels (all copies)",
    "duplicate": "exact repeats of an earlier text and label",
    "near_duplicate": "repeats differing only in case, punctuation or spacing",
}


def dedup_key(text: str) -> str:
    """Key for near-duplicates: case-folded, punctuation and spaces removed ('' = no content)."""
    text = text.casefold()
    for pattern, mark in _NUMBER_MARKS:
        text = pattern.sub(mark, text)
    return _NOT_WORD.sub("", text)


def label_lookup(label_map: Mapping[str, str]) -> dict[str, str]:
    """``data.label_map`` keyed like ``_label_key`` (so 0, "0" and "0.0" match); its targets
    are checked by :class:`DataConfig` (each one of LABELS, any case)."""
    return {_label_key(str(key)): str(value).strip().lower() for key, value in label_map.items()}


def _label_key(raw: str) -> str:
    """Stripped, lower-cased label; numbers in canonical form ("0.0", " 0" -> "0")."""
    key = raw.strip().lower()
    try:
        number = float(key)
    except ValueError:
        return key
    return str(int(number)) if number.is_integer() else key


def normalise_label(raw: str, lookup: Mapping[str, str]) -> str | None:
    """One of LABELS, or None when the label is unknown even after ``lookup``."""
    key = _label_key(raw)
    label = lookup.get(key, key)
    return label if label in LABELS else None


def _normalise_texts(texts: Iterable[str]) -> tuple[list[str], dict[str, int]]:
    """Normalise every text and count what each step changed (rows, not characters)."""
    out, repaired = [], Counter()
    for text in texts:
        step1 = repair_mojibake(text)
        step2 = drop_invisible(unicodedata.normalize("NFKC", step1))
        step3 = " ".join(step2.split())
        repaired["mojibake"] += step1 != text
        repaired["unicode"] += step2 != step1
        repaired["whitespace"] += step3 != step2
        out.append(step3)
    return out, {name: repaired[name] for name in ("mojibake", "unicode", "whitespace")}


def clean(
    rows: pd.DataFrame, cfg: DataConfig, load_rejects: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Return ``(clean rows, rejects, report)``; ``load_rejects`` are the loader's rejects.

    ``report`` = ``{"rows_in", "rows_out", "dropped": {reason: n for every REASON},
    "repaired": {"mojibake", "unicode", "whitespace"}, "notes": [str]}`` with
    ``rows_in == rows_out + sum(dropped)``; rows_in counts the loader's rejects too.
    """
    load_rejects = rejects_frame([]) if load_rejects is None else load_rejects
    raw = rows.reset_index(drop=True)  # the input as loaded, for the rejects file and notes
    frame = raw.copy()
    texts, repaired = _normalise_texts(frame["text"])
    frame["text"] = pd.Series(texts, index=frame.index, dtype=str)
    lookup = label_lookup(cfg.label_map)
    frame["label"] = [normalise_label(label, lookup) for label in frame["label"]]
    reason = _reasons(frame, cfg, _blank(raw["label"]))

    dropped = reason.notna()
    new_rejects = raw[dropped].assign(reason=reason[dropped])[list(REJECT_COLUMNS)]
    rejects = pd.concat([load_rejects, new_rejects], ignore_index=True)
    rejects = rejects.sort_values(["source", "line"], kind="stable", ignore_index=True)
    kept = frame[~dropped].reset_index(drop=True)
    kept["label"] = kept["label"].astype(str)

    counts = rejects["reason"].value_counts()
    report = {
        "rows_in": len(rows) + len(load_rejects),
        "rows_out": len(kept),
        "dropped": {name: int(counts.get(name, 0)) for name in REASONS},
        "repaired": repaired,
        "notes": _notes(raw["label"], reason == "unknown_label"),
    }
    assert report["rows_in"] == report["rows_out"] + sum(report["dropped"].values())
    return kept, rejects_frame(rejects.to_dict("records")), report


def _blank(values: pd.Series) -> pd.Series:
    """True where a raw cell is missing or only whitespace."""
    return values.map(
        lambda v: v is None or (isinstance(v, float) and v != v) or not str(v).strip()
    )


def _reasons(frame: pd.DataFrame, cfg: DataConfig, blank_label: pd.Series) -> pd.Series:
    """The first reason (in REASONS order) each row is dropped for; NA for rows kept. A row
    with neither text nor label (``,`` in a CSV) is an empty row, ``empty_text``, not a label
    to map."""
    reason = pd.Series(pd.NA, index=frame.index, dtype=object)

    def mark(mask: pd.Series, name: str) -> None:
        reason[mask & reason.isna()] = name  # the first reason that applies wins

    keys = frame["text"].map(dedup_key)
    length = frame["text"].str.len()
    mark((keys == "") & blank_label, "empty_text")
    mark(frame["label"].isna(), "unknown_label")
    mark(keys == "", "empty_text")
    mark(length < cfg.min_chars, "too_short")
    mark(length > cfg.max_chars, "too_long")

    alive = reason.isna()
    n_labels = frame.loc[alive, "label"].groupby(keys[alive]).transform("nunique")
    mark(n_labels.reindex(frame.index, fill_value=1) > 1, "conflicting_labels")

    alive = reason.isna()
    mark(
        frame[alive].duplicated(["text", "label"]).reindex(frame.index, fill_value=False),
        "duplicate",
    )
    # Conflicts are gone, so a repeated key among the survivors has the same label and a
    # different surface form: a near-duplicate of the first survivor with that key.
    alive = reason.isna()
    mark(keys[alive].duplicated().reindex(frame.index, fill_value=False), "near_duplicate")
    return reason


def _notes(raw_labels: pd.Series, unknown_label: pd.Series) -> list[str]:
    """Human-readable explanations for the report and the log (unknown labels, for now);
    ``unknown_label``: the rows dropped for their label."""
    unknown = Counter(raw_labels[unknown_label])
    if not unknown:
        return []
    listed = ", ".join(f"{_short(label)!r} ({n})" for label, n in unknown.most_common(10))
    seen = ", ".join(repr(_short(label)) for label in sorted(set(raw_labels))[:20])
    long = max(map(len, unknown)) > _LABEL_CHARS
    hint = " Long labels look like text: is data.label_column the label column?" if long else ""
    if set(unknown) <= {"0", "1", "2"}:  # the usual integer coding
        example = "{0: negative, 1: neutral, 2: positive}"
    else:  # the source's own labels, each to be given one of finslm's
        example = "{" + ", ".join(f"{_short(str(k))}: …" for k, _ in unknown.most_common(3))
        example += ", …}" if len(unknown) > 3 else "}"
    return [
        f"{sum(unknown.values())} row(s) have a label outside {', '.join(LABELS)}: {listed}. "
        f"Labels seen in the source: {seen}. Fix: map each to {', '.join(LABELS)} with "
        f"data.label_map in params.yaml, e.g. label_map: {example}, or for one experiment "
        f"-S '++data.label_map={example}' (++: new keys)" + hint
    ]


_LABEL_CHARS = 30  # a longer "label" is shown cut: it is probably a sentence


def _short(label: str) -> str:
    return label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"


def log_report(report: dict, notes: bool = True) -> None:
    """One log line for the totals and one per drop reason (every reason, zeros included), then
    the notes (``notes=False``: the caller's error says them instead)."""
    log.info("cleaning: %d rows in, %d rows out", report["rows_in"], report["rows_out"])
    for name, n in report["dropped"].items():
        log.info("dropped %6d %-18s %s", n, name, DESCRIPTIONS[name])
    for name, n in report["repaired"].items():
        if n:
            log.info("repaired %5d texts (%s)", n, name)
    for note in report["notes"] if notes else ():
        log.warning("%s", note)
