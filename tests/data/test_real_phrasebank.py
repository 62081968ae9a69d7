"""Row counts of the real Financial PhraseBank, read at run time from the shared copy.

Skipped when ``../shared/data/FinancialPhraseBank-v1.0`` is absent. No sentence of it is stored
in the repository (it is CC BY-NC-SA data): these tests only count.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from finslm.data.phrasebank import read_phrasebank, read_phrasebank_folder

FOLDER = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "FinancialPhraseBank-v1.0"
pytestmark = pytest.mark.skipif(not FOLDER.is_dir(), reason="real PhraseBank not present")


def test_allagree_reads_every_line():
    rows, rejects = read_phrasebank(FOLDER / "Sentences_AllAgree.txt")
    assert len(rows) == 2264
    assert rejects.empty
    assert rows["line"].tolist() == list(range(1, 2265))
    assert set(rows["label"]) == {"negative", "neutral", "positive"}


def test_folder_agreement_tiers_match_the_tier_files():
    rows, rejects = read_phrasebank_folder(FOLDER)
    assert len(rows) == 4846 and rejects.empty
    # Nested files: the distinct sentences at or above a tier are that tier file's sentences
    # (counted distinct because the files repeat a few sentences).
    for name, tier in (("AllAgree", 1.0), ("75Agree", 0.75), ("66Agree", 0.66)):
        tier_rows, _ = read_phrasebank(FOLDER / f"Sentences_{name}.txt")
        at_least = rows[rows["agreement"] >= tier]
        assert _distinct(at_least) == _distinct(tier_rows), name


def _distinct(rows) -> int:
    return len(rows.drop_duplicates(["text", "label"]))
