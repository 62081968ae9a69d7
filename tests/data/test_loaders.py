"""Format resolution and ``load``: auto detection, overrides, and the not-found message."""

from __future__ import annotations

import pytest

from finslm.data.errors import DataError
from finslm.data.loaders import load, resolve_format

from .conftest import invented, phrasebank_bytes


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.txt", "phrasebank"),
        ("a.CSV", "csv"),
        ("a.tsv", "tsv"),
        ("a.parquet", "parquet"),
        ("a.jsonl", "jsonl"),
    ],
)
def test_auto_format_by_suffix(tmp_path, name, expected):
    assert resolve_format(name, "auto", tmp_path / name) == expected


def test_auto_format_hub_prefix_and_folder(tmp_path):
    assert resolve_format("hub:someone/data", "auto", None) == "hub"
    assert resolve_format(str(tmp_path), "auto", tmp_path) == "folder"


def test_explicit_format_overrides_the_suffix(tmp_path):
    assert resolve_format("a.txt", "csv", tmp_path / "a.txt") == "csv"


def test_unsupported_suffix_lists_the_formats(tmp_path):
    with pytest.raises(DataError, match=r"unsupported file type '\.json'.*\.csv, \.tsv, \.parquet"):
        resolve_format("a.json", "auto", tmp_path / "a.json")


def test_not_found_names_the_source_and_suggests_phrasebank(cfg, tmp_path):
    with pytest.raises(DataError) as err:
        load(cfg(source="nope/missing.csv"), root=tmp_path)
    message = str(err.value)
    assert "data.source='nope/missing.csv': file not found" in message
    assert "-S data.source=../shared/data/FinancialPhraseBank-v1.0/Sentences_50Agree.txt" in message


def test_relative_source_is_resolved_under_root(cfg, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "pb.txt").write_bytes(phrasebank_bytes([(invented(1), "neutral")]))
    rows, _ = load(cfg(source="in/pb.txt"), root=tmp_path)
    assert rows["text"].tolist() == [invented(1)]


def test_txt_read_as_csv_when_format_says_so(cfg, tmp_path):
    (tmp_path / "t.txt").write_text(f"text,label\n{invented(1)},neutral\n")
    rows, _ = load(cfg(source=str(tmp_path / "t.txt"), format="csv"))
    assert rows["label"].tolist() == ["neutral"]
