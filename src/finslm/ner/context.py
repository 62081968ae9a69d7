"""Document context: the words around a sentence, from the same document, as extra model input.

A sentence of a filing is often ambiguous alone ("the Company", "Bank", a bare surname) and
clear from its neighbours. With ``ner.models.<m>.context_words: n`` a sentence is encoded as
``left + sentence + right``, where ``left`` is up to ``n`` words of the sentences before it in
the same document and ``right`` up to ``n`` of those after; only the sentence's own words are
labelled (training) or read (prediction). This is FLERT's document-level features (Schweter &
Akbik 2020, "FLERT: Document-Level Features for Named Entity Recognition", arXiv:2011.06993):
the encoder sees the neighbours; the labels stay per sentence.

Context comes from the same split only (a training sentence never sees a validation
sentence's words) and from the same document (``source`` + ``document``, in file order:
``line``, then window order). Rows without those columns (raw text) get no context: a text
sent to the CLI or the server is its own document and is tagged whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the slim serving install (finslm.ner.predict) has no pandas
    import pandas as pd

Context = tuple[list[str], list[str]]  # (words before the sentence, words after it)
NO_CONTEXT: Context = ([], [])


def document_context(frame: pd.DataFrame, words: int) -> list[Context]:
    """Per row of ``frame`` (in its order): up to ``words`` words of the same document before
    the row and after it. ``words`` 0, or a frame without ``source``/``document``/``line``
    columns, gives every row no context."""
    if words <= 0 or not {"source", "document", "line"} <= set(frame.columns):
        return [NO_CONTEXT] * len(frame)
    import pandas as pd

    out: list[Context] = [NO_CONTEXT] * len(frame)
    keyed = pd.DataFrame(
        {
            "source": frame["source"].astype(str).to_numpy(),
            "document": frame["document"].astype(str).to_numpy(),
            "line": pd.to_numeric(frame["line"], errors="coerce").fillna(0).to_numpy(),
            "row": range(len(frame)),
        }
    )
    # stable: windows of one sentence share its line and keep their order
    keyed = keyed.sort_values(["source", "document", "line"], kind="stable")
    tokens = frame["tokens"].tolist()
    for _, group in keyed.groupby(["source", "document"], sort=False):
        rows = group["row"].tolist()
        for k, row in enumerate(rows):
            out[row] = (_before(tokens, rows[:k], words), _after(tokens, rows[k + 1 :], words))
    return out


def _before(tokens: list, rows: list[int], n: int) -> list[str]:
    got: list[str] = []
    for row in reversed(rows):
        got = list(tokens[row]) + got
        if len(got) >= n:
            break
    return got[-n:] if got else []


def _after(tokens: list, rows: list[int], n: int) -> list[str]:
    got: list[str] = []
    for row in rows:
        got += list(tokens[row])
        if len(got) >= n:
            break
    return got[:n]


def join(sentence: Sequence[str], context: Context, keep: float = 1.0) -> tuple[list[str], int]:
    """(left + sentence + right, index of the sentence's first word), with ``keep`` (0..1) of
    each side's context words, the ones nearest the sentence."""
    left, right = context
    n_left, n_right = int(len(left) * keep), int(len(right) * keep)
    before = list(left[len(left) - n_left :]) if n_left else []
    return before + list(sentence) + list(right[:n_right]), len(before)


def less(keep: float) -> float:
    """The next, smaller share of context to try when a sentence and its context do not fit:
    1 -> 0.5 -> 0.25 -> 0 (none; the sentence is then tagged as without context)."""
    return keep / 2 if keep > 0.25 else 0.0
