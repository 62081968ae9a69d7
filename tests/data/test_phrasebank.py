"""The PhraseBank ``sentence@label`` reader and the agreement-tier folder reader."""

from __future__ import annotations

import codecs

import pytest

from finslm.data.errors import DataError
from finslm.data.phrasebank import parse_phrasebank, read_phrasebank, read_phrasebank_folder

from .conftest import invented, phrasebank_bytes


def test_reads_text_label_line_source(tmp_path):
    path = tmp_path / "pb.txt"
    path.write_bytes(phrasebank_bytes([(invented(1), "neutral"), (invented(2), "positive")]))
    rows, rejects = read_phrasebank(path)
    assert rows.to_dict("records") == [
        {"text": invented(1), "label": "neutral", "line": 1, "source": "pb.txt"},
        {"text": invented(2), "label": "positive", "line": 2, "source": "pb.txt"},
    ]
    assert rejects.empty


def test_splits_on_the_last_at_sign():
    rows, _ = parse_phrasebank("Mail ir@quillmoor.example @ EUR 5 a share@negative\n", "s")
    assert rows.loc[0, "text"] == "Mail ir@quillmoor.example @ EUR 5 a share"
    assert rows.loc[0, "label"] == "negative"


def test_lone_cr_and_mixed_line_ends_keep_line_numbers():
    text = "A one@neutral\r\nB two@positive\rC three@negative\r\n\rD four@neutral\nE five@neutral"
    rows, _ = parse_phrasebank(text, "s")
    assert rows["text"].str[0].tolist() == ["A", "B", "C", "D", "E"]
    assert rows["line"].tolist() == [1, 2, 3, 5, 6]  # line 4 is blank


def test_blank_lines_are_skipped_not_rejected():
    rows, rejects = parse_phrasebank("\r\nA one@neutral\r\n   \r\n\r\nB two@neutral\r\n", "s")
    assert rows["line"].tolist() == [2, 5]
    assert rejects.empty


def test_malformed_lines_become_rejects_with_their_line():
    text = "A one@neutral\r\nno label here\r\nempty label@ \r\nB two@positive\r\n"
    rows, rejects = parse_phrasebank(text, "pb.txt")
    assert rows["line"].tolist() == [1, 4]
    assert rejects[["line", "reason", "text", "label"]].to_dict("records") == [
        {"line": 2, "reason": "malformed_line", "text": "no label here", "label": ""},
        {"line": 3, "reason": "malformed_line", "text": "empty label@ ", "label": " "},
    ]
    assert set(rejects["source"]) == {"pb.txt"}


def test_a_file_with_no_valid_line_is_a_data_error():
    with pytest.raises(
        DataError, match=r"x\.txt, line 1: no line has the PhraseBank form.*format=csv"
    ):
        parse_phrasebank("text,label\nA one,neutral\n", "x.txt")


@pytest.mark.parametrize(
    "raw",
    [
        "Düsseldorf café gizmos sold@positive\r\n".encode("latin-1"),
        "Düsseldorf café gizmos sold@positive\r\n".encode(),
        codecs.BOM_UTF8 + "Düsseldorf café gizmos sold@positive\r\n".encode(),
    ],
    ids=["latin-1", "utf-8", "utf-8-bom"],
)
def test_encodings_decode_to_the_same_text(tmp_path, raw):
    path = tmp_path / "pb.txt"
    path.write_bytes(raw)
    rows, _ = read_phrasebank(path)
    assert rows.loc[0, "text"] == "Düsseldorf café gizmos sold"
    assert rows.loc[0, "label"] == "positive"


def test_binary_phrasebank_file_is_a_data_error(tmp_path):
    path = tmp_path / "pb.txt"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(DataError, match=r"pb\.txt: binary file"):
        read_phrasebank(path)


def _tiered_folder(tmp_path):
    """Four nested tier files: rows 0-1 in all, 2 up to 75, 3 up to 66, 4-5 only in 50."""
    labels = ["neutral", "positive", "negative", "neutral", "positive", "negative"]
    pairs = [(invented(i, label), label) for i, label in enumerate(labels)]
    tiers = {
        "Sentences_AllAgree.txt": pairs[:2],
        "Sentences_75Agree.txt": pairs[:3],
        "Sentences_66Agree.txt": pairs[:4],
        "Sentences_50Agree.txt": pairs,
    }
    folder = tmp_path / "FinancialPhraseBank-v1.0"
    folder.mkdir()
    for name, subset in tiers.items():
        (folder / name).write_bytes(phrasebank_bytes(subset))
    return folder


def test_folder_adds_the_highest_agreement_tier(tmp_path):
    rows, rejects = read_phrasebank_folder(_tiered_folder(tmp_path))
    assert rows["agreement"].tolist() == [1.0, 1.0, 0.75, 0.66, 0.5, 0.5]
    assert rows["source"].unique().tolist() == ["Sentences_50Agree.txt"]
    assert len(rows) == 6 and rejects.empty


def test_folder_missing_a_tier_file_names_it(tmp_path):
    folder = _tiered_folder(tmp_path)
    (folder / "Sentences_75Agree.txt").unlink()
    with pytest.raises(DataError, match=r"missing Sentences_75Agree\.txt.*-S data\.source="):
        read_phrasebank_folder(folder)
