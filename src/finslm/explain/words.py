"""Words: the unit every explanation is reported in, whatever the model's tokenizer.

Perturbation methods (SHAP, LIME, leave-one-out, faithfulness) switch whole words on and off;
gradient and attention methods score the model's word pieces, which :func:`merge_to_words`
sums back into words. So every method returns one number per word of :func:`split_words`, and
methods can be compared position by position.

    >>> words = split_words("Net sales rose 12.5% to EUR 1,200 mn.")
    >>> [w.text for w in words]
    ['Net', 'sales', 'rose', '12.5', '%', 'to', 'EUR', '1,200', 'mn', '.']
    >>> remove_words("Net sales rose 12.5%.", split_words("Net sales rose 12.5%."), [2])
    'Net sales 12.5%.'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# A word: letters/digits joined by inner punctuation that belongs to it (12.5, 1,200,
# year-on-year, company's, M&A, 2023/24); any other non-space character is a word of its own
# (%, ., (, €), so "12.5%." is three words.
WORD_RE = re.compile(r"\w+(?:[.,'’&/\-]\w+)*|[^\w\s]")


@dataclass(frozen=True)
class Word:
    """One word of a text: ``text == source[start:end]`` (character offsets)."""

    text: str
    start: int
    end: int


def split_words(text: str) -> list[Word]:
    """The words of ``text`` in order, with their character spans."""
    return [Word(m.group(), m.start(), m.end()) for m in WORD_RE.finditer(text)]


def is_content(word: str) -> bool:
    """True for words with a letter or digit (not bare punctuation)."""
    return any(ch.isalnum() for ch in word)


def keep_words(text: str, words: Sequence[Word], keep: Iterable[bool]) -> str:
    """``text`` with only the kept words, each with the whitespace that preceded it.

    Keeping every word returns ``text`` itself (leading/trailing whitespace aside); a dropped
    word takes its preceding gap with it, so no double spaces appear.
    """
    keep = list(keep)
    if len(keep) != len(words):
        raise ValueError(f"mask has {len(keep)} entries for {len(words)} words")
    parts: list[str] = []
    prev_end = 0
    for word, kept in zip(words, keep, strict=True):
        if kept:
            parts.append(text[prev_end : word.start] + word.text)
        prev_end = word.end
    return "".join(parts).strip()


def remove_words(text: str, words: Sequence[Word], drop: Iterable[int]) -> str:
    """``text`` without the words at indices ``drop``."""
    drop = set(drop)
    return keep_words(text, words, [i not in drop for i in range(len(words))])


def token_word_ids(
    offsets: Sequence[tuple[int, int]], words: Sequence[Word], special: Sequence[bool] | None = None
) -> list[int | None]:
    """For each model token, the index of the word it belongs to (``None``: special token).

    ``offsets`` are the tokenizer's character spans (``return_offsets_mapping=True``); a token
    belongs to the word whose span contains its first character. Special tokens ([CLS], [SEP],
    padding) have empty spans, or are flagged in ``special``.
    """
    starts = np.array([w.start for w in words], dtype=np.int64)
    ends = np.array([w.end for w in words], dtype=np.int64)
    out: list[int | None] = []
    for i, (a, b) in enumerate(offsets):
        if (special is not None and special[i]) or b <= a:
            out.append(None)
            continue
        # Last word starting at or before the token's first character.
        j = int(np.searchsorted(starts, a, side="right")) - 1
        out.append(j if j >= 0 and a < ends[j] else None)
    return out


def merge_to_words(
    token_scores: Sequence[float], token_words: Sequence[int | None], n_words: int
) -> np.ndarray:
    """Sum each word's token scores: shape (n_words,), float64.

    Summing keeps additive attributions additive (integrated gradients' completeness, attention
    mass). Words the model never saw (cut off by ``max_length``) score 0.
    """
    out = np.zeros(n_words, dtype=np.float64)
    for score, word in zip(token_scores, token_words, strict=True):
        if word is not None:
            out[word] += float(score)
    return out


class WordTokenizer:
    """:func:`split_words` behind the minimal Hugging Face tokenizer API ``shap.maskers.Text`` uses.

    ``input_ids`` are the words themselves (shap only compares and indexes them) and
    ``offset_mapping`` their spans, so SHAP masks whole words, the same unit as every other
    method here.
    """

    def __call__(self, s: str, return_offsets_mapping: bool = True, **_: object) -> dict:
        words = split_words(s)
        out: dict = {"input_ids": [w.text for w in words]}
        if return_offsets_mapping:
            out["offset_mapping"] = [(w.start, w.end) for w in words]
        return out
