"""Word splitting, deletion, and the alignment of model word pieces to words."""

from __future__ import annotations

import numpy as np
import pytest

from finslm.explain.tokens import encode_words
from finslm.explain.words import (
    WordTokenizer,
    keep_words,
    merge_to_words,
    remove_words,
    split_words,
    token_word_ids,
)

TEXT = "Net sales of the unprofitable unit rose 12.5% to EUR 1,200 mn (year-on-year)."


def test_split_words_keeps_numbers_and_hyphenated_words_whole():
    words = split_words(TEXT)
    assert [w.text for w in words] == [
        "Net", "sales", "of", "the", "unprofitable", "unit", "rose", "12.5", "%", "to", "EUR",
        "1,200", "mn", "(", "year-on-year", ")", ".",
    ]  # fmt: skip
    assert all(TEXT[w.start : w.end] == w.text for w in words)


def test_keep_all_is_identity_and_deletion_takes_the_gap():
    words = split_words(TEXT)
    assert keep_words(TEXT, words, [True] * len(words)) == TEXT
    idx = [w.text for w in words].index("rose")
    assert remove_words(TEXT, words, [idx]).startswith("Net sales of the unprofitable unit 12.5%")
    assert (
        keep_words("  Sales fell.  ", split_words("  Sales fell.  "), [False, True, True])
        == "fell."
    )
    with pytest.raises(ValueError, match=f"mask has 1 entries for {len(words)} words"):
        keep_words(TEXT, words, [True])


def test_word_tokenizer_has_the_api_shap_needs():
    out = WordTokenizer()("Sales rose 5%.")
    assert out["input_ids"] == ["Sales", "rose", "5", "%", "."]
    assert out["offset_mapping"][1] == (6, 10)
    assert WordTokenizer()("")["input_ids"] == []


def test_token_word_ids_with_offsets_and_specials():
    words = split_words("Unprofitable units")
    # [CLS] un ##pro ##fita ##ble units [SEP]
    offsets = [(0, 0), (0, 2), (2, 5), (5, 9), (9, 12), (13, 18), (0, 0)]
    assert token_word_ids(offsets, words) == [None, 0, 0, 0, 0, 1, None]
    special = [True, False, False, False, False, False, True]
    assert token_word_ids(offsets, words, special) == [None, 0, 0, 0, 0, 1, None]


def test_merge_sums_pieces_and_leaves_unseen_words_at_zero():
    merged = merge_to_words([9.0, 1.0, 2.0, 3.0, 0.5, 9.0], [None, 0, 0, 1, 1, None], 3)
    np.testing.assert_allclose(merged, [3.0, 3.5, 0.0])


def test_real_tokenizer_pieces_align_with_words(keyword_predictor):
    words = split_words(TEXT)
    enc = encode_words(keyword_predictor, TEXT, words)
    ids = enc.inputs["input_ids"][0].tolist()
    pieces = keyword_predictor.tokenizer.convert_ids_to_tokens(ids)
    assert enc.token_words[0] is None and enc.token_words[-1] is None  # [CLS], [SEP]
    assert len(pieces) > len(words)  # some words are split into pieces ...
    seen = sorted({w for w in enc.token_words if w is not None})
    assert seen == list(range(len(words)))  # ... and every word gets at least one
    for piece, w in zip(pieces, enc.token_words, strict=True):
        if w is not None:  # each piece is a part of its word (lower-cased by this tokenizer)
            assert piece.removeprefix("##") in words[w].text.lower()


def test_truncated_words_get_no_pieces(keyword_predictor):
    text = " ".join(["profit"] * 100)
    words = split_words(text)
    enc = encode_words(keyword_predictor, text, words)
    assert len(enc.token_words) == keyword_predictor.max_length
    merged = merge_to_words(np.ones(len(enc.token_words)), enc.token_words, len(words))
    assert merged[: keyword_predictor.max_length - 2].tolist() == [1.0] * 62
    assert merged[62:].sum() == 0


def test_a_token_that_starts_in_the_gap_after_a_word_belongs_to_no_word():
    """A model token that starts in the whitespace after a word (e.g. a tokenizer's space token)
    is not credited to that word when attributions are merged into words."""
    from finslm.explain.words import split_words, token_word_ids

    words = split_words("Net rose")  # Net: 0-3, rose: 4-8
    offsets = [(0, 3), (3, 4), (4, 8)]
    assert token_word_ids(offsets, words) == [0, None, 1]
