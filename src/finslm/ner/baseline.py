"""A per-token baseline: logistic regression on hand-made word and context features.

Features of word i: the lower-cased word, its shape (Xxxx, XX, dd, …), prefix/suffix of 3,
title/upper/digit flags, and the same for words i-1 and i+1 (a CRF's usual features, without
the CRF's transition scores). Trained on train, scored on test with the same entity metrics.

    python -m finslm.ner.baseline data/prepared-ner   # prints val and test entity metrics as JSON
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from finslm.ner.evaluate import entity_metrics
from finslm.ner.prepare import read_split


def _shape(word: str) -> str:
    s = re.sub(r"[A-Z]", "X", word)
    s = re.sub(r"[a-z]", "x", s)
    s = re.sub(r"[0-9]", "d", s)
    return re.sub(r"(.)\1{2,}", r"\1\1", s)


def _word(word: str, prefix: str) -> dict[str, Any]:
    return {
        f"{prefix}w={word.lower()}": 1,
        f"{prefix}shape={_shape(word)}": 1,
        f"{prefix}suf3={word[-3:].lower()}": 1,
        f"{prefix}pre3={word[:3].lower()}": 1,
        f"{prefix}title": int(word.istitle()),
        f"{prefix}upper": int(word.isupper()),
        f"{prefix}digit": int(any(c.isdigit() for c in word)),
    }


def features(tokens: list[str]) -> list[dict[str, Any]]:
    out = []
    for i, w in enumerate(tokens):
        f = {"bias": 1, **_word(w, "")}
        f.update(_word(tokens[i - 1], "-1:") if i else {"BOS": 1})
        f.update(_word(tokens[i + 1], "+1:") if i + 1 < len(tokens) else {"EOS": 1})
        out.append(f)
    return out


def fit(train, C: float = 1.0):
    """The per-token logistic regression (DictVectorizer + LogisticRegression) on ``train``."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    x = [f for t in train.tokens for f in features(list(t))]
    y = [tag for tags in train.tags for tag in tags]
    model = make_pipeline(DictVectorizer(), LogisticRegression(C=C, max_iter=2000))
    model.fit(x, y)
    return model


def main(argv: list[str] | None = None) -> None:
    folder = Path((argv or sys.argv[1:] or ["data/prepared-ner"])[0])
    train = read_split(folder, "train")
    types = json.loads((folder / "labels.json").read_text())["entity_types"]
    out: dict[str, Any] = {"model": "per-token logistic regression"}
    model = fit(train)
    for name in ("val", "test"):
        frame = read_split(folder, name)
        pred = [list(model.predict(features(list(t)))) for t in frame.tokens]
        m = entity_metrics([list(t) for t in frame.tags], pred, types)
        m.pop("type_confusion")
        out[name] = m
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
