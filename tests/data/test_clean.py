"""Cleaning: text and label normalisation, every reject reason, and the report's accounting."""

from __future__ import annotations

import pandas as pd
import pytest

from finslm.config import ConfigError
from finslm.data.clean import clean, dedup_key, normalise_label
from finslm.data.schema import REASONS, rejects_frame
from finslm.textnorm import normalise_text, repair_mojibake

from .conftest import invented


def _rows(*pairs: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"text": text, "label": label, "line": i, "source": "s.csv"}
            for i, (text, label) in enumerate(pairs, start=2)
        ]
    )


def _reasons(rejects: pd.DataFrame) -> list[tuple[int, str]]:
    return list(zip(rejects["line"], rejects["reason"], strict=True))


# --- text ------------


def test_whitespace_is_collapsed_and_stripped():
    assert (
        normalise_text("  Quillmoor\t cut \r\n its\xa0forecast  ") == "Quillmoor cut its forecast"
    )


def test_nfkc_and_invisible_characters():
    assert normalise_text("Ｚentavia ﬁnal\u200b gizmo\u00ad count") == "Zentavia final gizmo count"


def test_tokenised_text_is_not_detokenised():
    assert (
        normalise_text("Quillmoor 's profit rose , it said .")
        == "Quillmoor 's profit rose , it said ."
    )


@pytest.mark.parametrize(
    ("broken", "fixed"),
    [
        ("DÃ¼sseldorf gizmos", "Düsseldorf gizmos"),
        ("Quillmoorâ€™s gizmo", "Quillmoor’s gizmo"),
        ("Â£ 5 for a gizmo", "£ 5 for a gizmo"),
    ],
)
def test_mojibake_is_repaired(broken, fixed):
    assert repair_mojibake(broken) == fixed


@pytest.mark.parametrize(
    "text", ["Â 5 gizmos", "Caf\u00e9 au lait", "Ã alone and ä too", "DÃ¼sseldorf ä"]
)
def test_genuine_latin1_text_is_left_alone(text):
    assert repair_mojibake(text) == text


def test_dedup_key_ignores_case_punctuation_and_spacing_but_not_decimals():
    assert dedup_key("Quillmoor 's net sales , EUR 5.2 mn .") == dedup_key(
        "QUILLMOOR's net sales EUR 5.2mn"
    )
    assert dedup_key("EUR 5.2 mn") != dedup_key("EUR 52 mn")
    assert dedup_key("... -- !") == ""


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("EUR -2.1 mn", "EUR 2.1 mn"),
        ("margin 1,5 percent", "margin 15 percent"),
        ("an operating result of EUR (12.5) mn", "an operating result of EUR 12.5 mn"),
        ("a loss of (1,200)", "a loss of 1,200"),
        ("rates rose 5 ‰", "rates rose 5 %"),
    ],
)
def test_dedup_key_keeps_signs_and_digit_commas(one, other):
    # Different numbers, so not duplicates (with opposite labels they were dropped as conflicts).
    assert dedup_key(one) != dedup_key(other)
    assert dedup_key("in 2008-09") == dedup_key("in 2008 09")  # a hyphen is not a sign
    # An accounting negative is a minus sign; a parenthesised word is not.
    assert dedup_key("EUR (12.5) mn") == dedup_key("EUR -12.5 mn")
    assert dedup_key("(see note 3) sales rose") == dedup_key("see note 3: sales rose")


# --- labels ------------


def test_labels_are_stripped_and_lowercased():
    assert normalise_label(" Positive ", {}) == "positive"
    assert normalise_label("bullish", {}) is None


@pytest.mark.parametrize("raw", ["0", "0.0", " 0 ", "0.00"])
def test_numeric_labels_go_through_label_map(cfg, raw):
    rows = _rows((invented(1), raw))
    kept, _, _ = clean(rows, cfg(label_map={"0": "negative"}))
    assert kept["label"].tolist() == ["negative"]


def test_label_map_keys_are_compared_as_strings_case_insensitively(cfg):
    rows = _rows((invented(1), "Bullish"), (invented(2), "2"), (invented(3), "neutral"))
    kept, _, _ = clean(rows, cfg(label_map={"bullish": "positive", "2.0": "negative"}))
    # A partial map is fine: labels that are already canonical pass through.
    assert kept["label"].tolist() == ["positive", "negative", "neutral"]


def test_label_map_target_must_be_a_known_label(cfg):
    # Checked with the params (file and line named by the loader), before any data is read.
    with pytest.raises(ConfigError, match=r"data\.label_map: .*\('1' maps to 'good'\)"):
        cfg(label_map={"1": "good"})


def test_unknown_labels_are_rejected_with_a_note_listing_labels_seen(cfg):
    rows = _rows((invented(1), "bullish"), (invented(2), "neutral"), (invented(3), "bullish"))
    kept, rejects, report = clean(rows, cfg())
    assert kept["label"].tolist() == ["neutral"]
    assert _reasons(rejects) == [(2, "unknown_label"), (4, "unknown_label")]
    assert report["dropped"]["unknown_label"] == 2
    (note,) = report["notes"]
    assert "'bullish' (2)" in note and "Labels seen in the source: 'bullish', 'neutral'" in note
    # The example maps the source's own labels (not an integer coding it does not use).
    assert "data.label_map in params.yaml, e.g. label_map: {bullish: …}" in note
    rows = _rows((invented(1), "0"), (invented(2), "2"))
    (note,) = clean(rows, cfg())[2]["notes"]
    assert "e.g. label_map: {0: negative, 1: neutral, 2: positive}" in note


# --- rows ------------


def test_empty_short_and_long_texts(cfg):
    rows = _rows(("   ", "neutral"), ("?!", "neutral"), ("Up", "positive"), ("x" * 31, "neutral"))
    kept, rejects, _ = clean(rows, cfg(min_chars=3, max_chars=30))
    assert kept.empty
    assert _reasons(rejects) == [
        (2, "empty_text"),
        (3, "empty_text"),
        (4, "too_short"),
        (5, "too_long"),
    ]


def test_length_limits_are_inclusive_and_counted_after_normalisation(cfg):
    rows = _rows(("  abc  ", "neutral"), ("y" * 10, "neutral"))
    kept, _, _ = clean(rows, cfg(min_chars=3, max_chars=10))
    assert kept["text"].tolist() == ["abc", "y" * 10]


def test_exact_duplicates_keep_the_first(cfg):
    rows = _rows((invented(1), "neutral"), (invented(2), "neutral"), (invented(1), "neutral"))
    kept, rejects, _ = clean(rows, cfg())
    assert kept["line"].tolist() == [2, 3]
    assert _reasons(rejects) == [(4, "duplicate")]


def test_duplicates_after_whitespace_normalisation_are_exact(cfg):
    rows = _rows((invented(1), "neutral"), ("  " + invented(1).replace(" ", "   "), "Neutral"))
    _, rejects, _ = clean(rows, cfg())
    assert _reasons(rejects) == [(3, "duplicate")]


def test_near_duplicates_keep_the_first(cfg):
    text = "Quillmoor 's gizmo sales rose , it said ."
    rows = _rows((text, "positive"), ("QUILLMOOR's gizmo sales rose, it said", "positive"))
    kept, rejects, _ = clean(rows, cfg())
    assert kept["text"].tolist() == [text]
    assert _reasons(rejects) == [(3, "near_duplicate")]


def test_conflicting_labels_drop_every_copy(cfg):
    rows = _rows(
        (invented(1), "positive"),
        (invented(2), "neutral"),
        (invented(1), "positive"),  # an exact copy of a conflicted text is still conflicted
        (invented(1).upper(), "negative"),
    )
    kept, rejects, report = clean(rows, cfg())
    assert kept["line"].tolist() == [3]
    assert _reasons(rejects) == [
        (2, "conflicting_labels"),
        (4, "conflicting_labels"),
        (5, "conflicting_labels"),
    ]
    assert report["dropped"]["conflicting_labels"] == 3
    assert report["dropped"]["duplicate"] == 0


def test_an_unknown_label_copy_does_not_create_a_conflict(cfg):
    rows = _rows((invented(1), "positive"), (invented(1), "bullish"))
    kept, rejects, _ = clean(rows, cfg())
    assert kept["line"].tolist() == [2]
    assert _reasons(rejects) == [(3, "unknown_label")]


def test_rejects_keep_raw_text_and_label(cfg):
    rows = _rows((invented(1), "neutral"), (" " + invented(1) + " ", " NEUTRAL"))
    _, rejects, _ = clean(rows, cfg())
    assert rejects.loc[0, ["text", "label", "source"]].tolist() == [
        " " + invented(1) + " ",
        " NEUTRAL",
        "s.csv",
    ]


def test_report_counts_every_row_and_every_reason(cfg):
    rows = _rows(
        (invented(1), "neutral"),
        (invented(1), "neutral"),  # duplicate
        (invented(2), "bullish"),  # unknown_label
        ("", "neutral"),  # empty_text
        (invented(3), "positive"),
    )
    load_rejects = rejects_frame(
        [{"line": 9, "source": "s.csv", "reason": "malformed_line", "text": "x", "label": ""}]
    )
    kept, rejects, report = clean(rows, cfg(), load_rejects)
    assert list(report["dropped"]) == list(REASONS)
    assert report["rows_in"] == 6
    assert report["rows_out"] == len(kept) == 2
    assert report["dropped"] == {
        "malformed_line": 1,
        "unknown_label": 1,
        "empty_text": 1,
        "too_short": 0,
        "too_long": 0,
        "conflicting_labels": 0,
        "duplicate": 1,
        "near_duplicate": 0,
    }
    assert report["rows_in"] == report["rows_out"] + sum(report["dropped"].values())
    assert len(rejects) == sum(report["dropped"].values())
    assert rejects["line"].tolist() == [3, 4, 5, 9]  # sorted by source, line


def test_report_counts_repairs(cfg):
    rows = _rows(
        ("DÃ¼sseldorf gizmos rose", "neutral"),
        ("Zentavia\xa0gizmos", "neutral"),
        ("a  b c", "neutral"),
    )
    kept, _, report = clean(rows, cfg())
    assert kept["text"].tolist() == ["Düsseldorf gizmos rose", "Zentavia gizmos", "a b c"]
    assert report["repaired"] == {"mojibake": 1, "unicode": 1, "whitespace": 1}


def test_clean_keeps_extra_columns_and_does_not_modify_input(cfg):
    rows = _rows((" " + invented(1), "Neutral")).assign(agreement=[0.75])
    before = rows.copy()
    kept, _, _ = clean(rows, cfg())
    assert kept.loc[0, "agreement"] == 0.75
    pd.testing.assert_frame_equal(rows, before)


def test_input_with_a_non_default_index(cfg):
    rows = _rows((invented(1), "bullish"), (invented(2), "neutral")).set_axis([10, 3])
    kept, rejects, report = clean(rows, cfg())
    assert kept["line"].tolist() == [3]
    assert _reasons(rejects) == [(2, "unknown_label")]
    assert "'bullish' (1)" in report["notes"][0]


def test_a_sentence_read_as_a_label_is_cut_and_the_column_questioned(cfg):
    sentence = invented(7)
    assert len(sentence) > 30
    _, _, report = clean(_rows((invented(1), sentence), (invented(2), "neutral")), cfg())
    (note,) = report["notes"]
    assert sentence not in note and sentence[:29] + "…" in note
    assert "is data.label_column the label column?" in note


@pytest.mark.parametrize("blank", ["", "  "])  # loaders give a missing cell as ""
def test_a_row_with_neither_text_nor_label_is_empty_not_an_unknown_label(cfg, blank):
    """A separator-only CSV row (`,`) is an empty row: no label_map note suggesting `{: …}`.
    A blank label on a real text is still an unknown label."""
    rows = _rows((invented(1), "neutral"), ("", blank), (" ", blank), (invented(2), blank))
    kept, rejects, report = clean(rows, cfg())
    assert kept["line"].tolist() == [2]
    assert _reasons(rejects) == [(3, "empty_text"), (4, "empty_text"), (5, "unknown_label")]
    (note,) = report["notes"]
    assert note.startswith("1 row(s) have a label outside")


def test_tabs_and_newlines_separate_words_after_normalisation():
    """Normalising a text turns tabs and line breaks into single spaces; it never glues the
    words on either side together."""
    from finslm.textnorm import normalise_text

    assert normalise_text("Profit\trose\r\nsharply") == "Profit rose sharply"
