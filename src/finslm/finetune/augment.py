"""Optional augmentation of hard samples (``finetune.augment``, off by default).

- ``synonyms``: each word found in a small built-in list of financial synonyms is replaced, with
  probability ``augment_rate``, by one of its synonyms (at least one replacement when any word
  matches; a sentence with no listed word gets no synonym copy);
- ``token_dropout``: each word is dropped with probability ``augment_rate`` (at least one is
  dropped, at least one kept; digits, negations and direction words are never dropped, since
  dropping them can flip the label).

Copies keep the label of their source. Copies that repeat a training text, each other, or a
protected text (validation and test, compared after the repo's normalisation) are discarded;
the leakage guard then checks the final training pool anyway.

    >>> copies = augment(["Net sales rose 5%."], ["positive"], "synonyms", 1, 0.15, rng, taken)
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from finslm.finetune.guard import text_key

# Small, hand-written, label-preserving substitutions for financial news wording.
FINANCIAL_SYNONYMS: dict[str, tuple[str, ...]] = {
    "rose": ("increased", "grew", "climbed"),
    "increased": ("rose", "grew"),
    "grew": ("rose", "increased"),
    "climbed": ("rose", "increased"),
    "fell": ("decreased", "declined", "dropped"),
    "decreased": ("fell", "declined"),
    "declined": ("fell", "decreased"),
    "dropped": ("fell", "declined"),
    "profit": ("earnings",),
    "earnings": ("profit",),
    "sales": ("revenue",),
    "revenue": ("sales",),
    "company": ("firm",),
    "firm": ("company",),
    "shares": ("stock",),
    "increase": ("rise", "growth"),
    "decrease": ("decline", "drop"),
    "decline": ("decrease", "drop"),
    "rise": ("increase",),
    "growth": ("increase",),
    "strong": ("robust", "solid"),
    "weak": ("soft", "poor"),
    "agreement": ("deal", "contract"),
    "contract": ("agreement", "deal"),
    "said": ("stated", "reported"),
    "expects": ("anticipates", "forecasts"),
    "approximately": ("about", "around"),
    "quarter": ("period",),
    "period": ("quarter",),
}
# Never dropped by token dropout: they carry direction or negation.
_KEEP = re.compile(
    r"\d|^(not|no|never|without|up|down|rose|fell|increase\w*|decrease\w*|loss\w*|"
    r"profit\w*|higher|lower|grew|declin\w*)$",
    re.IGNORECASE,
)
_WORD = re.compile(r"\S+")
_CORE = re.compile(r"^(\W*)(\w[\w'-]*?)(\W*)$")
METHODS = ("synonyms", "token_dropout")


def match_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def synonym_copy(text: str, rate: float, rng: np.random.Generator) -> str | None:
    """``text`` with listed words replaced by synonyms, or None when no word is listed."""
    tokens = _WORD.findall(text)
    spots = []
    for i, token in enumerate(tokens):
        m = _CORE.match(token)
        if m and m.group(2).lower() in FINANCIAL_SYNONYMS:
            spots.append((i, m))
    if not spots:
        return None
    chosen = [s for s in spots if rng.random() < rate] or [spots[rng.integers(len(spots))]]
    for i, m in chosen:
        options = FINANCIAL_SYNONYMS[m.group(2).lower()]
        new = match_case(options[rng.integers(len(options))], m.group(2))
        tokens[i] = f"{m.group(1)}{new}{m.group(3)}"
    return " ".join(tokens)


def dropout_copy(text: str, rate: float, rng: np.random.Generator) -> str | None:
    """``text`` with some droppable words removed, or None when none can be dropped."""
    tokens = _WORD.findall(text)
    droppable = [i for i, t in enumerate(tokens) if not _KEEP.search(t.strip(".,;:()\"'"))]
    if not droppable or len(tokens) < 3:
        return None
    drop = {i for i in droppable if rng.random() < rate} or {
        droppable[rng.integers(len(droppable))]
    }
    kept = [t for i, t in enumerate(tokens) if i not in drop]
    return " ".join(kept) if kept else None


def augment(
    texts: Sequence[str],
    labels: Sequence[str],
    method: str,
    copies: int,
    rate: float,
    rng: np.random.Generator,
    taken: set[str],
) -> tuple[list[str], list[str], list[int], int]:
    """(new texts, their labels, source positions, copies discarded as repeats).

    ``taken`` holds the normalised keys (:func:`text_key`) that copies must not repeat (train,
    validation, test); accepted copies are added to it.
    """
    if method not in METHODS:
        raise ValueError(f"augment method {method!r}: choose one of {', '.join(METHODS)}")
    make = synonym_copy if method == "synonyms" else dropout_copy
    out_texts, out_labels, sources, discarded = [], [], [], 0
    for pos, (text, label) in enumerate(zip(texts, labels, strict=True)):
        for _ in range(copies):
            new = make(str(text), rate, rng)
            if new is None:
                continue
            key = text_key(new)
            if not key or key in taken:
                discarded += 1
                continue
            taken.add(key)
            out_texts.append(new)
            out_labels.append(str(label))
            sources.append(pos)
    return out_texts, out_labels, sources, discarded
