"""tools/teacher_ensemble.py: several teachers' cached logits become one teacher file that a
student reads like any other, and the shared-error counts are exact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finslm.train.teacher import (
    HASH_COLUMN,
    LOGIT_COLUMNS,
    SOURCE_COLUMN,
    TEXT_COLUMN,
    _hashes,
    aligned_logits,
    augmented_logits,
)
from tools.teacher_ensemble import average_logits, errors_shared

TEXTS = ["Profit rose.", "Sales fell sharply.", "The board met on Monday."]


def _teacher_file(path, logits, copies=()):
    texts = TEXTS + [text for _, text in copies]
    table = pd.DataFrame(np.asarray(logits, np.float32), columns=LOGIT_COLUMNS)
    table.insert(0, HASH_COLUMN, _hashes(texts))
    table.insert(1, SOURCE_COLUMN, list(range(len(TEXTS))) + [row for row, _ in copies])
    table.insert(2, TEXT_COLUMN, [""] * len(TEXTS) + [text for _, text in copies])
    table.to_parquet(path, index=False)
    return path


def test_members_logits_are_averaged_into_a_file_students_read(tmp_path):
    train = pd.DataFrame({"text": TEXTS, "label": ["positive", "negative", "neutral"]})
    a = _teacher_file(tmp_path / "a.parquet", [[0, 1, 2], [3, 0, 0], [0, 6, 0]])
    b = _teacher_file(tmp_path / "b.parquet", [[2, 1, 0], [1, 0, 0], [0, 0, 3]])
    out = tmp_path / "ens.parquet"
    average_logits([a, b], train).to_parquet(out, index=False)
    np.testing.assert_allclose(aligned_logits(out, train), [[1, 1, 1], [2, 0, 0], [0, 3, 1.5]])
    assert augmented_logits(out, train)[0] == []


def test_members_with_augmented_copies_are_refused(tmp_path):
    train = pd.DataFrame({"text": TEXTS, "label": ["positive", "negative", "neutral"]})
    a = _teacher_file(tmp_path / "a.parquet", np.zeros((4, 3)), copies=[(0, "Profit up.")])
    b = _teacher_file(tmp_path / "b.parquet", np.zeros((3, 3)))
    with pytest.raises(SystemExit, match="a.parquet: has augmented copies"):
        average_logits([a, b], train)


def test_shared_errors_by_tier():
    gold = ["a", "b", "c", "a"]
    preds = {"x": ["a", "b", "b", "b"], "y": ["a", "c", "b", "c"]}
    out = errors_shared(gold, preds, np.array([1.0, 0.5, 0.5, 0.5]))
    assert out["all"] == {"n": 4, "members_agree": 0.5, "all_wrong": 2, "oracle_accuracy": 0.5}
    assert out["agree_100"] == {
        "n": 1,
        "members_agree": 1.0,
        "all_wrong": 0,
        "oracle_accuracy": 1.0,
    }
    assert out["agree_50"]["all_wrong"] == 2 and out["agree_50"][
        "oracle_accuracy"
    ] == pytest.approx(1 / 3, abs=1e-4)
