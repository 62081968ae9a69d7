"""Row counts of the real Financial PhraseBank, read at run time from the shared copy.

``FINSLM_REAL_DATA=<folder>`` names the copy; then these tests must pass, and a missing folder
fails them (CI: ``FINSLM_REAL_DATA=../shared/data/FinancialPhraseBank-v1.0``). Unset,
they look for ``../shared/data/FinancialPhraseBank-v1.0`` beside the clone and skip when it is
absent (a developer machine without the data). No sentence of it is stored in the repository
(it is CC BY-NC-SA data): these tests only count.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from finslm.data.phrasebank import read_phrasebank, read_phrasebank_folder
from tests.conftest import REAL_DATA_ENV

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / ".." / "shared" / "data" / "FinancialPhraseBank-v1.0"


def real_data_folder() -> Path | None:
    """The folder to read, or None to skip: FINSLM_REAL_DATA if set (a relative path is taken
    from the repository root), else the default if it is there."""
    named = os.environ.get(REAL_DATA_ENV)
    if named:
        return REPO / named  # an absolute path stays itself
    return DEFAULT if DEFAULT.is_dir() else None


@pytest.fixture(scope="module")
def folder() -> Path:
    found = real_data_folder()
    if found is None:
        pytest.skip(f"real PhraseBank not present (set {REAL_DATA_ENV} to require it)")
    # Named by the environment: absent is a failure, not a skip.
    assert found.is_dir(), f"{REAL_DATA_ENV}={found}: no such folder"
    return found


def test_named_folder_that_is_missing_fails_instead_of_skipping(monkeypatch, tmp_path):
    monkeypatch.setenv(REAL_DATA_ENV, str(tmp_path / "nowhere"))
    assert real_data_folder() == tmp_path / "nowhere"
    monkeypatch.setenv(REAL_DATA_ENV, "../elsewhere")
    assert real_data_folder() == REPO / ".." / "elsewhere"
    monkeypatch.delenv(REAL_DATA_ENV)
    assert real_data_folder() == (DEFAULT if DEFAULT.is_dir() else None)


def test_allagree_reads_every_line(folder):
    rows, rejects = read_phrasebank(folder / "Sentences_AllAgree.txt")
    assert len(rows) == 2264
    assert rejects.empty
    assert rows["line"].tolist() == list(range(1, 2265))
    assert set(rows["label"]) == {"negative", "neutral", "positive"}


def test_folder_agreement_tiers_match_the_tier_files(folder):
    rows, rejects = read_phrasebank_folder(folder)
    assert len(rows) == 4846 and rejects.empty
    # Nested files: the distinct sentences at or above a tier are that tier file's sentences
    # (counted distinct because the files repeat a few sentences).
    for name, tier in (("AllAgree", 1.0), ("75Agree", 0.75), ("66Agree", 0.66)):
        tier_rows, _ = read_phrasebank(folder / f"Sentences_{name}.txt")
        at_least = rows[rows["agreement"] >= tier]
        assert _distinct(at_least) == _distinct(tier_rows), name


def _distinct(rows) -> int:
    return len(rows.drop_duplicates(["text", "label"]))
