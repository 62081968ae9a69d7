"""The leakage guard: no validation or test sentence may be in a fine-tuned model's training data.

Texts are compared after the repo's own normalisation (:func:`finslm.data.normalise_text`, then
:func:`finslm.data.dedup_key`: case, punctuation and spacing folded), the same key ``prepare``
uses for its split-disjointness check, so a copy differing only in case or punctuation still
counts as a leak. Augmented copies are checked like every other training text.

    >>> protected = protected_keys({"val": val.text, "test": test.text})
    >>> assert_no_leak(pool_texts, protected, what="minilm-targeted (seed 42)")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from finslm.data import DataError, dedup_key, normalise_text


class LeakageError(DataError):
    """A validation or test sentence is in the training data."""


def text_key(text: str) -> str:
    return dedup_key(normalise_text(str(text)))


def protected_keys(splits: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """Normalised key -> split name, for every text of the given (held-out) splits."""
    keys: dict[str, str] = {}
    for name, texts in splits.items():
        for text in texts:
            keys.setdefault(text_key(text), name)
    return keys


def assert_no_leak(texts: Iterable[str], protected: Mapping[str, str], what: str) -> int:
    """Raise :class:`LeakageError` if any of ``texts`` is a protected text; return how many
    texts were checked."""
    leaks: dict[str, list[int]] = {}
    n = 0
    for i, text in enumerate(texts):
        n += 1
        split = protected.get(text_key(text))
        if split is not None:
            leaks.setdefault(split, []).append(i)
    if leaks:
        found = "; ".join(
            f"{len(rows)} {split} sentence(s) at training positions {rows[:5]}"
            for split, rows in sorted(leaks.items())
        )
        raise LeakageError(
            f"leak: the training data of {what} contains {found} (compared after "
            "normalisation). Held-out sentences must never be trained on: check the prepared "
            "splits (`dvc repro prepare`) and any augmentation."
        )
    return n
