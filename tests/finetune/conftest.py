"""Fixtures for the targeted fine-tune: a keyword-driven dataset with planted hard rows.

Every sentence is invented. Clean rows carry one direction keyword that decides the label;
planted rows are (a) label-flipped (a clear keyword, the other label) or (b) ambiguous (a
positive and a negative keyword, either label). Mining must find the planted rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

KEYWORDS = {
    "positive": ["rose", "grew", "improved", "climbed", "strengthened"],
    "negative": ["fell", "dropped", "weakened", "declined", "shrank"],
    "neutral": ["was scheduled", "was located", "was listed", "was announced", "was reported"],
}
SUBJECTS = ["Net sales", "Operating profit", "The order book", "Quarterly revenue", "Export volume",
            "The dividend", "Gross margin", "Market share", "Cash flow", "The share price"]  # fmt: skip
TAILS = ["in the third quarter", "in Finland", "during the period", "for the unit",
         "at the Tampere plant", "over the year", "in the Baltic region", "in early trading"]  # fmt: skip


def keyword_dataset(n_clean: int = 240, n_flipped: int = 15, n_ambiguous: int = 15, seed: int = 0):
    """(frame, planted mask): columns text, label, line; planted rows are flipped or ambiguous."""
    rng = np.random.default_rng(seed)
    labels = list(KEYWORDS)
    rows, planted = [], []

    def sentence(word: str, i: int) -> str:
        subject, tail = SUBJECTS[i % len(SUBJECTS)], TAILS[(i // len(SUBJECTS)) % len(TAILS)]
        return f"{subject} {word} {tail} ({i})."

    for i in range(n_clean):
        label = labels[i % 3]
        rows.append((sentence(rng.choice(KEYWORDS[label]), i), label))
        planted.append(False)
    for j in range(n_flipped):
        true = labels[j % 3]
        wrong = labels[(j + 1 + j % 2) % 3]
        rows.append((sentence(rng.choice(KEYWORDS[true]), 1000 + j), wrong))
        planted.append(True)
    for j in range(n_ambiguous):
        word = f"{rng.choice(KEYWORDS['positive'])} but then {rng.choice(KEYWORDS['negative'])}"
        rows.append((sentence(word, 2000 + j), ["positive", "negative"][j % 2]))
        planted.append(True)
    frame = pd.DataFrame(rows, columns=["text", "label"])
    frame["line"] = np.arange(2, len(frame) + 2)
    order = rng.permutation(len(frame))
    return frame.iloc[order].reset_index(drop=True), np.asarray(planted)[order]


@pytest.fixture(scope="session")
def planted():
    return keyword_dataset()
