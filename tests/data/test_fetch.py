"""`finslm fetch`: a hub dataset (faked locally) written to a table that loads back the same."""

from __future__ import annotations

import zipfile

import huggingface_hub
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from finslm.cli import app
from finslm.data.errors import DataError
from finslm.data.fetch import fetch
from finslm.data.loaders import load

from .conftest import invented, phrasebank_bytes
from .test_hub import snapshot  # noqa: F401  (fixture)

runner = CliRunner()


@pytest.fixture
def zip_with_a_bad_line(tmp_path, monkeypatch):
    good = [(invented(1, "positive"), "positive"), (invented(2), "neutral")]
    raw = phrasebank_bytes(good) + b"a line without a label\r\n"
    path = tmp_path / "FinancialPhraseBank-v1.0.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("FinancialPhraseBank-v1.0/Sentences_50Agree.txt", raw)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: str(path))
    return good


def test_fetched_table_loads_back_as_the_hub_rows(cfg, tmp_path, snapshot):  # noqa: F811
    hub = cfg(source="hub:someone/fin-news", text_column="sentence", hub_split="train")
    result = fetch(hub, tmp_path / "raw" / "news.csv")
    assert (result.rows, result.rejects, result.rejects_path) == (3, 0, None)
    local = cfg(source=str(result.out), text_column="sentence")
    a, b = load(hub).rows, load(local).rows
    assert a.text.tolist() == b.text.tolist()
    assert a.label.tolist() == b.label.tolist() == ["0", "2", "1"]  # raw: label_map still applies
    assert pd.read_csv(result.out).columns.tolist() == ["sentence", "label"]


@pytest.mark.parametrize("suffix", [".tsv", ".parquet"])
def test_other_table_formats(cfg, tmp_path, snapshot, suffix):  # noqa: F811
    hub = cfg(source="hub:someone/fin-news", text_column="sentence", hub_split="test")
    out = fetch(hub, tmp_path / f"news{suffix}").out
    assert load(cfg(source=str(out), text_column="sentence")).rows.text.tolist() == [invented(4)]


def test_unreadable_lines_are_counted_and_written_beside(cfg, tmp_path, zip_with_a_bad_line):
    result = fetch(cfg(source="hub:takala/financial_phrasebank"), tmp_path / "pb.csv")
    assert result.rows == 2 and result.rejects == 1
    assert result.rejects_path == tmp_path / "pb.rejects.csv"
    rejects = pd.read_csv(result.rejects_path)
    assert rejects.text.tolist() == ["a line without a label"]
    back = load(cfg(source=str(result.out))).rows
    assert list(zip(back.text, back.label, strict=True)) == zip_with_a_bad_line


def test_local_source_and_bad_suffix_are_refused(cfg, tmp_path):
    with pytest.raises(DataError, match="not a hub dataset"):
        fetch(cfg(source="data/sample/sentences.csv"), tmp_path / "x.csv")
    with pytest.raises(DataError, match=r"x\.json: write a \.parquet, \.csv, \.tsv file"):
        fetch(cfg(source="hub:someone/fin-news"), tmp_path / "x.json")


def test_cli_reads_params_and_says_what_to_do_next(tmp_path, zip_with_a_bad_line, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = {
        "data": {"source": "hub:takala/financial_phrasebank"},
        "models": {"m": {"kind": "tfidf"}},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = runner.invoke(app, ["fetch", "--out", "data/raw/pb.csv"])
    assert result.exit_code == 0, result.output
    assert "wrote 2 rows from hub:takala/financial_phrasebank to data/raw/pb.csv" in result.output
    assert "1 unreadable lines rejected" in result.output
    assert "dvc exp run -S data.source=data/raw/pb.csv" in result.output
    bad = runner.invoke(app, ["fetch", "--out", "x.csv", "--source", "params.yaml"])
    assert bad.exit_code == 2 and "not a hub dataset" in bad.output
