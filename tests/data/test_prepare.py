"""The prepare core: files written, metrics that account for every row, and read_split."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from finslm.data.errors import DataError
from finslm.data.prepare import prepare, read_split
from finslm.data.schema import REASONS

from .conftest import invented, phrasebank_bytes, rows_with


def _messy_csv(tmp_path):
    """80 good rows plus one row for each kind of trouble; returns the path."""
    good = rows_with({"negative": 20, "neutral": 35, "positive": 25})
    lines = ["text,label"] + [
        f"{t},{label}" for t, label in zip(good["text"], good["label"], strict=True)
    ]
    lines += [
        "only one field",  # malformed_line
        f"{invented(501)},bullish",  # unknown_label
        '"   ",neutral',  # empty_text
        "ab,neutral",  # too_short (min_chars 3)
        f"{good['text'][0]},neutral",  # conflicting_labels: row 0 is negative, so both go
        f"{good['text'][30]},neutral",  # duplicate
        f"{good['text'][31].upper()},neutral",  # near_duplicate
    ]
    path = tmp_path / "messy.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def run(tmp_path, cfg):
    def _run(**kw):
        out = tmp_path / "out"
        metrics = prepare(
            cfg(**kw),
            out / "prepared",
            out / "metrics" / "data.json",
            out / "prepared" / "rejects.csv",
        )
        return metrics, out

    return _run


def test_outputs_and_metrics_account_for_every_row(tmp_path, run):
    metrics, out = run(source=str(_messy_csv(tmp_path)))
    assert metrics == json.loads((out / "metrics" / "data.json").read_text())
    assert metrics["rows_in"] == 87
    assert metrics["dropped"] == {
        "malformed_line": 1,
        "unknown_label": 1,
        "empty_text": 1,
        "too_short": 1,
        "too_long": 0,
        "conflicting_labels": 2,  # both copies of row 0
        "duplicate": 1,
        "near_duplicate": 1,
    }
    assert metrics["rows_out"] == 79
    assert metrics["rows_in"] == metrics["rows_out"] + sum(metrics["dropped"].values())
    assert sum(metrics["splits"].values()) == metrics["rows_out"]
    for name, n in metrics["splits"].items():
        part = read_split(out / "prepared" / f"{name}.parquet")
        assert len(part) == n
        assert list(part.columns) == ["text", "label", "line"]
        assert part["label"].value_counts().to_dict() == {
            k: v for k, v in metrics["labels"][name].items() if v
        }
    rejects = pd.read_csv(out / "prepared" / "rejects.csv", keep_default_na=False)
    assert list(rejects.columns) == ["line", "source", "reason", "text", "label"]
    assert rejects["reason"].value_counts().to_dict() == {
        k: v for k, v in metrics["dropped"].items() if v
    }
    assert set(rejects["reason"]) <= set(REASONS)


def test_metrics_keys_are_stable(tmp_path, run):
    metrics, _ = run(source=str(_messy_csv(tmp_path)))
    assert list(metrics) == ["rows_in", "rows_out", "dropped", "repaired", "splits", "labels"]
    assert list(metrics["splits"]) == ["train", "val", "test"]
    assert all(list(v) == ["negative", "neutral", "positive"] for v in metrics["labels"].values())


def test_same_params_give_identical_files(tmp_path, run):
    source = str(_messy_csv(tmp_path))
    run(source=source)
    first = (tmp_path / "out" / "prepared" / "test.parquet").read_bytes()
    run(source=source)
    assert (tmp_path / "out" / "prepared" / "test.parquet").read_bytes() == first


def test_folder_source_writes_agreement(tmp_path, run):
    folder = tmp_path / "pb"
    folder.mkdir()
    good = rows_with({"negative": 10, "neutral": 20, "positive": 12})
    pairs = list(zip(good["text"], good["label"], strict=True))
    for name, subset in (
        ("Sentences_50Agree.txt", pairs),
        ("Sentences_66Agree.txt", pairs[:30]),
        ("Sentences_75Agree.txt", pairs[:20]),
        ("Sentences_AllAgree.txt", pairs[:10]),
    ):
        (folder / name).write_bytes(phrasebank_bytes(subset))
    metrics, out = run(source=str(folder))
    parts = [read_split(out / "prepared" / f"{n}.parquet") for n in ("train", "val", "test")]
    merged = pd.concat(parts)
    assert list(parts[0].columns) == ["text", "label", "line", "agreement"]
    assert merged["agreement"].value_counts().to_dict() == {0.5: 12, 0.66: 10, 0.75: 10, 1.0: 10}
    assert metrics["rows_out"] == 42


def test_no_rows_left_is_a_data_error_with_the_label_hint(tmp_path, cfg):
    path = tmp_path / "numeric.csv"
    path.write_text("text,label\n" + "".join(f"{invented(i)},{i % 3}\n" for i in range(9)))
    rejects = tmp_path / "rejects.csv"
    with pytest.raises(
        DataError, match=r"no rows left after cleaning \(dropped: unknown_label 9\).*label_map"
    ):
        prepare(cfg(source=str(path)), tmp_path / "p", tmp_path / "m.json", rejects)
    assert len(pd.read_csv(rejects)) == 9  # the evidence is written before the error


def test_read_split_missing_file_says_run_prepare(tmp_path):
    with pytest.raises(
        DataError, match=r"train\.parquet: not found\. Fix: run `dvc repro prepare`"
    ):
        read_split(tmp_path / "train.parquet")


def test_read_split_rejects_bad_labels_and_columns(tmp_path):
    path = tmp_path / "x.parquet"
    pd.DataFrame({"text": ["a"], "label": ["bullish"], "line": [1]}).to_parquet(path)
    with pytest.raises(
        DataError, match=r"labels outside negative, neutral, positive: \['bullish'\]"
    ):
        read_split(path)
    pd.DataFrame({"text": ["a"], "label": ["neutral"]}).to_parquet(path)
    with pytest.raises(DataError, match=r"missing column\(s\) line"):
        read_split(path)


def test_a_class_with_no_rows_is_warned_about(tmp_path, run, caplog):
    good = rows_with({"negative": 20, "neutral": 0, "positive": 20})
    path = tmp_path / "two-classes.csv"
    pd.DataFrame(good).to_csv(path, index=False)
    with caplog.at_level("WARNING", logger="finslm"):
        metrics, _ = run(source=str(path))
    assert metrics["labels"]["train"]["neutral"] == 0
    assert "no neutral sentence after cleaning" in caplog.text
    assert "negative sentence" not in caplog.text


def test_data_left_with_one_label_is_an_error(tmp_path, run):
    one = rows_with({"negative": 0, "neutral": 30, "positive": 0})
    path = tmp_path / "one.csv"
    pd.DataFrame(one).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"every kept sentence is neutral; a classifier needs at"):
        run(source=str(path))


def test_a_class_missing_from_a_held_out_split_is_warned_about(tmp_path, run, caplog):
    """3 neutral rows: stratification leaves none in validation, which prepare says (its F1
    is not measured there); the two-class warning does not fire."""
    path = tmp_path / "rare.csv"
    pd.DataFrame(rows_with({"negative": 30, "neutral": 3, "positive": 30})).to_csv(
        path, index=False
    )
    with caplog.at_level("WARNING", logger="finslm"):
        metrics, _ = run(source=str(path))
    assert metrics["labels"]["val"]["neutral"] == 0 and metrics["labels"]["test"]["neutral"] == 1
    assert "the val split has no neutral sentence" in caplog.text
    assert "the test split has no" not in caplog.text
    assert "after cleaning" not in caplog.text
