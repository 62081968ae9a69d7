"""Whether a text has anything to classify: one rule for the server, bulk scoring and the CLI.

A text counts when it holds at least one letter, digit, punctuation mark or symbol (Unicode
categories L, N, P, S). Whitespace, control characters (``\\x00``), format characters (zero-width
space, byte-order mark) and combining marks on their own do not: a label for nothing is not an
answer, and every such text would get the same "empty input" scores.

The server checks it inside pydantic's validation with :data:`VISIBLE_PATTERN` (Rust regex
Unicode classes, no Python call per text); :func:`has_content` is the same rule in Python
(tests check that the two agree).
"""

from __future__ import annotations

import unicodedata

VISIBLE_CATEGORIES = "LNPS"
# pydantic matches a pattern anywhere in the string: one visible character is enough.
VISIBLE_PATTERN = "[" + "".join(rf"\p{{{c}}}" for c in VISIBLE_CATEGORIES) + "]"


def has_content(text: str) -> bool:
    """Whether ``text`` holds a letter, digit, punctuation mark or symbol."""
    return any(unicodedata.category(c)[0] in VISIBLE_CATEGORIES for c in text)
