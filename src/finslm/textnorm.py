"""Text normalisation shared by training data and inference: what ``prepare`` does to every
sentence it keeps (:mod:`finslm.data.clean`), and what every :class:`finslm.predict.Predictor`
does to a text before scoring it, so a model never sees at inference a form of text it was not
trained on (full-width letters, ligatures, non-breaking spaces, zero-width characters,
mojibake). Standard library only: the slim serving install imports it.

Mojibake repair ("Ã¤" -> "ä", only when the whole text round-trips to valid UTF-8), Unicode
NFKC (non-breaking space -> space, "ﬁ" -> "fi", full-width -> ASCII), invisible control/format
characters removed (zero-width space, soft hyphen, stray BOM), whitespace collapsed to single
spaces and stripped.
"""

from __future__ import annotations

import re
import unicodedata

# A latin-1/cp1252 reading of a UTF-8 lead byte (Â..ô) followed by a reading of a continuation
# byte (0x80-0xBF, or the cp1252 characters at those bytes). Cheap pre-check before trying.
_MOJIBAKE = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6"
    "\u02dc\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a"
    "\u20ac\u2122]"
)
_INVISIBLE = ("Cc", "Cf")  # control and format characters (not whitespace: that is collapsed)


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 read as latin-1/cp1252 ("Ã¤" -> "ä"); unchanged unless it is clearly that."""
    if not _MOJIBAKE.search(text):
        return text
    for encoding in ("cp1252", "latin-1"):
        try:
            # Only a text whose every character maps back to bytes that form valid UTF-8 is
            # repaired; genuine latin-1 text almost never does.
            return text.encode(encoding).decode("utf-8")
        except UnicodeError:
            continue
    return text


def drop_invisible(text: str) -> str:
    if text.isprintable():  # fast path: nothing to drop
        return text
    return "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) not in _INVISIBLE)


def normalise_text(text: str) -> str:
    """The cleaned form of one text: mojibake repair, NFKC, invisible chars, whitespace."""
    text = drop_invisible(unicodedata.normalize("NFKC", repair_mojibake(text)))
    return " ".join(text.split())
