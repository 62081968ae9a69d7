"""Hub sources, with ``hf_hub_download`` / ``snapshot_download`` replaced by local fakes."""

from __future__ import annotations

import zipfile

import huggingface_hub
import pandas as pd
import pytest

from finslm.config import ConfigError
from finslm.data.errors import DataError
from finslm.data.loaders import load

from .conftest import invented, phrasebank_bytes

ALL = [(invented(1, "positive"), "positive"), (invented(2, "negative"), "negative")]
FIFTY = [*ALL, (invented(3), "neutral")]


@pytest.fixture
def phrasebank_zip(tmp_path, monkeypatch):
    """A fake PhraseBank zip; returns the list of hf_hub_download calls made."""
    path = tmp_path / "FinancialPhraseBank-v1.0.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("FinancialPhraseBank-v1.0/Sentences_50Agree.txt", phrasebank_bytes(FIFTY))
        archive.writestr("FinancialPhraseBank-v1.0/Sentences_AllAgree.txt", phrasebank_bytes(ALL))
        archive.writestr("__MACOSX/FinancialPhraseBank-v1.0/._Sentences_50Agree.txt", b"\x00junk")
    calls = []

    def fake(repo_id, filename, **kwargs):
        calls.append((repo_id, filename, kwargs))
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake)
    return calls


def test_phrasebank_zip_reads_the_configured_file(cfg, phrasebank_zip):
    rows, rejects = load(cfg(source="hub:takala/financial_phrasebank"))
    assert list(zip(rows["text"], rows["label"], strict=True)) == FIFTY
    assert rows["source"].unique().tolist() == [
        "FinancialPhraseBank-v1.0.zip/Sentences_50Agree.txt"
    ]
    assert rejects.empty
    assert phrasebank_zip == [
        (
            "takala/financial_phrasebank",
            "data/FinancialPhraseBank-v1.0.zip",
            {"repo_type": "dataset"},
        )
    ]


def test_phrasebank_zip_allagree_config(cfg, phrasebank_zip):
    rows, _ = load(cfg(source="hub:takala/financial_phrasebank", hub_config="sentences_allagree"))
    assert list(zip(rows["text"], rows["label"], strict=True)) == ALL


def test_phrasebank_file_missing_from_zip(cfg, phrasebank_zip):
    with pytest.raises(DataError, match=r"no Sentences_75Agree\.txt inside the zip"):
        load(cfg(source="hub:takala/financial_phrasebank", hub_config="sentences_75agree"))


def test_unknown_phrasebank_config_is_a_config_error(cfg, phrasebank_zip):
    with pytest.raises(ConfigError, match=r"data\.hub_config: got 'default'.*sentences_allagree"):
        load(cfg(source="hub:takala/financial_phrasebank", hub_config="default"))
    assert phrasebank_zip == []  # rejected before any download


def test_download_failure_is_a_data_error(cfg, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(
        DataError, match=r"hub:takala/financial_phrasebank: download .* failed.*no network"
    ):
        load(cfg(source="hub:takala/financial_phrasebank"))


@pytest.fixture
def snapshot(tmp_path, monkeypatch):
    """A fake dataset snapshot with train shards and a test file; returns the calls made."""
    root = tmp_path / "snap"
    (root / "data").mkdir(parents=True)
    pd.DataFrame({"sentence": [invented(1), invented(2)], "label": [0, 2]}).to_parquet(
        root / "data" / "train-00000-of-00002.parquet"
    )
    pd.DataFrame({"sentence": [invented(3)], "label": [1]}).to_parquet(
        root / "data" / "train-00001-of-00002.parquet"
    )
    pd.DataFrame({"sentence": [invented(4)], "label": [1]}).to_parquet(
        root / "data" / "test-00000-of-00001.parquet"
    )
    calls = []

    def fake(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(root)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    return calls


def test_other_dataset_reads_the_split_shards_in_order(cfg, snapshot):
    rows, _ = load(cfg(source="hub:someone/fin-news", text_column="sentence", hub_split="train"))
    assert rows["text"].tolist() == [invented(1), invented(2), invented(3)]
    assert rows["label"].tolist() == ["0", "2", "1"]
    assert rows["line"].tolist() == [1, 2, 1]
    assert rows["source"].tolist()[-1] == "data/train-00001-of-00002.parquet"
    assert snapshot[0][0] == "someone/fin-news"
    assert snapshot[0][1]["repo_type"] == "dataset"


def test_other_dataset_test_split(cfg, snapshot):
    rows, _ = load(cfg(source="hub:someone/fin-news", text_column="sentence", hub_split="test"))
    assert rows["text"].tolist() == [invented(4)]


def test_other_dataset_unknown_split_lists_files(cfg, snapshot):
    with pytest.raises(
        DataError, match=r"no file for split 'validation'.*data/test-00000.*hub_split"
    ):
        load(cfg(source="hub:someone/fin-news", text_column="sentence", hub_split="validation"))


def test_split_in_several_config_folders_is_chosen_by_hub_config(cfg, tmp_path, monkeypatch):
    root = tmp_path / "snap"
    for config, i in (("alpha", 1), ("beta", 2)):
        (root / config).mkdir(parents=True)
        (root / config / "train.csv").write_text(f"text,label\n{invented(i)},neutral\n")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, **kw: str(root))
    rows, _ = load(cfg(source="hub:x/y", hub_config="beta"))
    assert rows["text"].tolist() == [invented(2)]
    with pytest.raises(DataError, match=r"several folders \(alpha, beta\)"):
        load(cfg(source="hub:x/y", hub_config="sentences_50agree"))
