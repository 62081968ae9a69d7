"""Sub-word alignment, raw-text word offsets, and entity-level metrics."""

from __future__ import annotations

import numpy as np
import pytest

from finslm.ner.align import (
    IGNORE,
    align_labels,
    encode_dataset,
    fit_to_length,
    shape_type_ids,
    split_words,
    word_scores,
)
from finslm.ner.evaluate import entity_metrics, tags_from_logits


def test_first_subtoken_labelled_rest_ignored():
    # [CLS] Vel ##mont Trust [SEP]: word 0 has two sub-tokens.
    word_ids = [None, 0, 0, 1, None]
    ids = {"O": 0, "B-ORG": 1, "I-ORG": 2}
    assert align_labels(word_ids, ["B-ORG", "I-ORG"], ids) == [IGNORE, 1, IGNORE, 2, IGNORE]


def test_alignment_with_the_real_tokenizer():
    from transformers import AutoTokenizer

    from finslm.models import resolve_checkpoint

    tok = AutoTokenizer.from_pretrained(resolve_checkpoint("packaged:all-MiniLM-L6-v2"))
    words = ["Kessingtonwald", "Bancorp", "paid", "$1,250"]
    enc = tok([words], is_split_into_words=True)
    labels = align_labels(
        enc.word_ids(0), ["B-ORG", "I-ORG", "O", "O"], {"O": 0, "B-ORG": 1, "I-ORG": 2}
    )
    assert [x for x in labels if x != IGNORE] == [1, 2, 0, 0]  # one label per word
    assert len(enc.input_ids[0]) > len(words) + 2  # words were split into sub-tokens


def test_word_scores_use_first_subtoken_and_truncated_words_are_o():
    sub = np.arange(12, dtype=np.float32).reshape(4, 3)  # [CLS] w0 w0' w1
    out = word_scores(sub, [None, 0, 0, 1], n_words=3)
    assert out[0].tolist() == [3, 4, 5] and out[1].tolist() == [9, 10, 11]
    assert out[2].tolist() == [1, 0, 0]  # word 2 was truncated away: O


def test_split_words_offsets_point_into_the_text():
    text = "Velmont Corp. paid $4.2 million to Dagny Strand (U.S.) on 3/1."
    words = split_words(text)
    assert all(text[a:b] == w for w, a, b in words)
    assert [w for w, _, _ in words][:6] == ["Velmont", "Corp.", "paid", "$", "4.2", "million"]
    assert "U.S." in [w for w, _, _ in words]


def test_entity_metrics_strict_iob2():
    gold = [["B-ORG", "I-ORG", "O", "B-PER"], ["B-LOC", "O"]]
    pred = [["B-ORG", "O", "O", "B-PER"], ["B-LOC", "O"]]  # ORG boundary wrong
    m = entity_metrics(gold, pred, ["PER", "ORG", "LOC"])
    assert m["entity_micro_f1"] == pytest.approx(2 / 3)
    assert m["per_type"]["ORG"]["f1"] == 0 and m["per_type"]["PER"]["f1"] == 1
    assert m["entity_macro_f1"] == pytest.approx(2 / 3)
    assert m["token_accuracy"] == pytest.approx(5 / 6)
    conf = m["type_confusion"]
    assert conf["labels"] == ["O", "PER", "ORG", "LOC"]
    assert conf["matrix"][2][0] == 1  # one ORG token predicted O
    # A stray I- is read as the start of an entity, as finslm ner returns it.
    assert entity_metrics([["B-PER", "I-PER"]], [["I-PER", "I-PER"]])["entity_micro_f1"] == 1.0


def test_tags_from_trainer_logits_skip_ignored_positions():
    logits = np.zeros((1, 4, 3))
    logits[0, 1, 1] = logits[0, 3, 2] = 5
    labels = np.array([[IGNORE, 1, IGNORE, 2]])
    gold, pred = tags_from_logits(logits, labels, ["O", "B-ORG", "I-ORG"])
    assert gold == pred == [["B-ORG", "I-ORG"]]


def test_word_shape_types_mark_capitalised_words_in_training_and_prediction(tmp_path):
    from transformers import AutoTokenizer

    from finslm.models import resolve_checkpoint
    from finslm.ner.predict import WordEncoder

    assert shape_type_ids(["Acme", "paid", "$5", "IBM"], [None, 0, 0, 1, 2, 3, None]) == [
        0, 1, 1, 0, 0, 1, 0,
    ]  # fmt: skip
    folder = resolve_checkpoint("packaged:all-MiniLM-L6-v2")
    tok = AutoTokenizer.from_pretrained(folder)
    words = [["Kessingtonwald", "Bancorp", "paid", "$1,250"], ["the", "Borrower"]]
    plain = encode_dataset(tok, words, [["O"] * 4, ["O"] * 2], {"O": 0}, 32)
    shaped = encode_dataset(tok, words, [["O"] * 4, ["O"] * 2], {"O": 0}, 32, word_shape=True)
    assert all(set(f["token_type_ids"]) == {0} for f in plain)
    assert [f["input_ids"] for f in plain] == [f["input_ids"] for f in shaped]  # case-blind ids
    feeds, _ = WordEncoder(folder, 32, word_shape=True)(words)
    for row, f in zip(feeds["token_type_ids"], shaped, strict=True):
        n = len(f["token_type_ids"])
        assert row[:n].tolist() == f["token_type_ids"]  # training == prediction
        assert not row[n:].any()  # padding
    assert not WordEncoder(folder, 32)(words)[0]["token_type_ids"].any()


def test_word_shape_needs_token_types():
    from transformers import DistilBertConfig, DistilBertForTokenClassification

    from finslm.models import ModelError
    from finslm.ner.train import check_word_shape

    model = DistilBertForTokenClassification(
        DistilBertConfig(vocab_size=50, dim=16, hidden_dim=32, n_layers=1, n_heads=2)
    )
    with pytest.raises(
        ModelError, match=r"models.<name>.word_shape: needs .* token type ids.*set it to false"
    ):
        check_word_shape(model, "tiny-distilbert")


def test_macro_f1_averages_the_types_present_in_gold():
    """A type with no gold entity (PER predicted once, LOC never seen) is not averaged in as 0:
    macro-F1 is over the types the test set has (seqeval's support > 0)."""
    m = entity_metrics([["B-ORG", "O"]], [["B-ORG", "B-PER"]], types=["ORG", "PER", "LOC"])
    assert m["entity_macro_f1"] == 1.0
    assert m["entity_micro_f1"] < 1.0  # the spurious PER still costs micro precision


def test_sentences_longer_than_max_length_are_split_so_no_labelled_word_is_cut():
    """A sentence of many-sub-token numbers is split at word boundaries into pieces that fit;
    every word keeps its label (a piece starting inside an entity starts with B-), short
    sentences and their context pass unchanged, and the pieces encode without truncation."""
    from transformers import AutoTokenizer

    from finslm.models import resolve_checkpoint

    tok = AutoTokenizer.from_pretrained(resolve_checkpoint("packaged:all-MiniLM-L6-v2"))
    numbers = ["4,213,567.89"] * 12  # about 9 sub-tokens each
    long_words = ["Velmont", "Trust", *numbers, "Harrow", "Bank", "said"]
    long_tags = ["B-ORG", "I-ORG", *["O"] * 12, "B-ORG", "I-ORG", "O"]
    short = (["Acme", "rose"], ["B-ORG", "O"])
    context = (["before"], ["after"])
    tokens, tags, contexts, n_split = fit_to_length(
        tok, [long_words, short[0]], [long_tags, short[1]], 32, [context, context]
    )
    assert n_split == 1 and len(tokens) > 3
    assert [w for piece in tokens[:-1] for w in piece] == long_words  # no word lost, in order
    assert (tokens[-1], tags[-1], contexts[-1]) == (short[0], short[1], context)
    for piece, piece_tags in zip(tokens[:-1], tags[:-1], strict=True):
        assert len(tok(piece, is_split_into_words=True)["input_ids"]) <= 32
        assert piece_tags[0] != "I-ORG"  # IOB2 within each piece
    assert sum(t.startswith("B-") for piece in tags for t in piece) == 3
    ids = {"O": 0, "B-ORG": 1, "I-ORG": 2}
    features = encode_dataset(tok, tokens, tags, ids, 32)
    labelled = sum(sum(1 for x in f["labels"] if x != IGNORE) for f in features)
    assert labelled == len(long_words) + len(short[0])  # every word carries its label


def test_split_words_keeps_combining_marks_and_soft_hyphens_in_their_word():
    """Decomposed (NFD) accents and a soft hyphen do not cut a word in two."""
    import unicodedata

    nfd = unicodedata.normalize("NFD", "Kemal Nuñez joined Vortane in Zürich.")
    assert [w for w, _, _ in split_words(nfd)] == [
        "Kemal", unicodedata.normalize("NFD", "Nuñez"), "joined", "Vortane", "in",
        unicodedata.normalize("NFD", "Zürich"), ".",
    ]  # fmt: skip
    words = split_words("Vortane\u00adHoldings rose")
    assert [w for w, _, _ in words] == ["Vortane\u00adHoldings", "rose"]
    assert [(s, e) for _, s, e in words] == [(0, 16), (17, 21)]
