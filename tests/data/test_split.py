"""Split protocol: sizes, stratification, no overlap, determinism, too-small classes."""

from __future__ import annotations

import pandas as pd
import pytest

from finslm.data.clean import dedup_key
from finslm.data.errors import DataError
from finslm.data.split import check_disjoint, split

from .conftest import invented, rows_with

COUNTS = {"negative": 61, "neutral": 187, "positive": 94}  # 342 rows, skewed like PhraseBank


@pytest.fixture(scope="module")
def parts():
    return split(rows_with(COUNTS), test_size=0.2, val_size=0.1, seed=42)


def test_sizes_follow_the_protocol(parts):
    n = sum(COUNTS.values())
    assert sum(len(part) for part in parts.values()) == n
    assert abs(len(parts["test"]) - 0.2 * n) <= 1
    assert abs(len(parts["val"]) - 0.1 * (n - len(parts["test"]))) <= 1


@pytest.mark.parametrize("label", sorted(COUNTS))
def test_each_class_is_stratified_within_one_row(parts, label):
    n_test = (parts["test"]["label"] == label).sum()
    n_val = (parts["val"]["label"] == label).sum()
    assert abs(n_test - 0.2 * COUNTS[label]) <= 1
    assert abs(n_val - 0.1 * (COUNTS[label] - n_test)) <= 1


def test_splits_do_not_overlap(parts):
    keys = [set(part["text"].map(dedup_key)) for part in parts.values()]
    lines = [set(part["line"]) for part in parts.values()]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not keys[i] & keys[j]
            assert not lines[i] & lines[j]


def test_same_seed_gives_identical_splits(parts):
    again = split(rows_with(COUNTS), test_size=0.2, val_size=0.1, seed=42)
    for name in parts:
        pd.testing.assert_frame_equal(parts[name], again[name])


def test_different_seed_gives_a_different_split(parts):
    other = split(rows_with(COUNTS), test_size=0.2, val_size=0.1, seed=7)
    assert set(other["test"]["line"]) != set(parts["test"]["line"])


def test_splits_are_sorted_by_line(parts):
    for part in parts.values():
        assert part["line"].is_monotonic_increasing


def test_a_class_with_one_row_names_the_class_and_count():
    rows = rows_with({"negative": 1, "neutral": 30, "positive": 30})
    with pytest.raises(DataError, match=r"test split: class 'negative' has only 1 row\(s\)"):
        split(rows, test_size=0.2, val_size=0.1, seed=42)


def test_a_class_the_test_split_left_one_row_of_says_where_the_count_comes_from():
    """2 negatives in 62 rows: the test split takes one, the validation split cannot stratify
    the other, and the error says its counts are what the test split left."""
    rows = rows_with({"negative": 2, "neutral": 30, "positive": 30})
    with pytest.raises(
        DataError,
        match=r"validation split: class 'negative' has only 1 row\(s\) of the 49 rows left "
        r"after the test split took 13 ",
    ):
        split(rows, test_size=0.2, val_size=0.1, seed=42)


def test_too_few_rows_for_a_held_out_share_is_a_data_error():
    rows = rows_with({"negative": 2, "neutral": 2, "positive": 2})
    with pytest.raises(DataError, match=r"cannot stratify the test split of 6 rows.*smallest"):
        split(rows, test_size=0.2, val_size=0.1, seed=42)


def test_empty_input_is_a_data_error():
    with pytest.raises(DataError, match="no rows left"):
        split(rows_with({}), test_size=0.2, val_size=0.1, seed=42)


def test_check_disjoint_catches_a_leak():
    train = pd.DataFrame({"text": [invented(1), invented(2)], "line": [1, 2]})
    test = pd.DataFrame({"text": [invented(2).upper()], "line": [9]})
    with pytest.raises(
        DataError, match=r"leak: a text at source line 9 in 'test' also occurs in 'train'"
    ):
        check_disjoint({"train": train, "test": test})


def test_split_itself_refuses_a_leak():
    """split() runs the no-overlap check on its own parts: rows whose texts collide after
    normalisation (the same text under two labels here) cannot land in two splits quietly."""
    frame = rows_with({"negative": 20, "neutral": 20, "positive": 20})
    frame["text"] = frame["label"] + " results ."  # 20 copies of three texts
    with pytest.raises(DataError, match="leak"):
        split(frame, test_size=0.2, val_size=0.1, seed=42)


def test_split_errors_name_the_source_and_row_count():
    rows = rows_with({"negative": 1, "neutral": 30, "positive": 30})
    with pytest.raises(DataError, match=r"^data.source=x.csv: cannot stratify .* row\(s\) of 61 "):
        split(rows, test_size=0.2, val_size=0.1, seed=42, source="data.source=x.csv")
    rows = rows_with({"negative": 2, "neutral": 2, "positive": 2})
    with pytest.raises(DataError, match=r"^data.source=x.csv: .* split of 6 rows"):
        split(rows, test_size=0.2, val_size=0.1, seed=42, source="data.source=x.csv")
