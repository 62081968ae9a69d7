"""Constrained Viterbi decoding: always valid IOB2, the best valid path, argmax when valid."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from finslm.ner.decode import decode, log_softmax, viterbi
from finslm.ner.tags import label_list

LABELS = label_list(["PER", "ORG"])  # O, B-PER, I-PER, B-ORG, I-ORG


def valid(tags: list[str]) -> bool:
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            return False
        prev = tag
    return True


def test_a_name_split_across_two_types_becomes_one_entity():
    # Argmax: B-ORG then I-PER (two half-entities of two types); the second word is sure PER.
    logits = np.log(np.array([[0.05, 0.40, 0.0, 0.55, 0.0], [0.02, 0.0, 0.96, 0.0, 0.02]]) + 1e-9)
    assert [LABELS[i] for i in decode(logits, LABELS, "argmax")] == ["B-ORG", "I-PER"]
    assert [LABELS[i] for i in decode(logits, LABELS)] == ["B-PER", "I-PER"]


def test_an_i_tag_never_starts_a_sentence_or_follows_o():
    logits = np.log(np.array([[0.1, 0.1, 0.6, 0.1, 0.1], [0.7, 0.1, 0.1, 0.05, 0.05],
                              [0.1, 0.1, 0.1, 0.1, 0.6]]))  # fmt: skip
    tags = [LABELS[i] for i in viterbi(logits, LABELS)]
    assert valid(tags) and tags[0] != "I-PER" and tags[2] != "I-ORG"


@pytest.mark.parametrize("seed", range(20))
def test_viterbi_is_the_best_valid_sequence(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(4, len(LABELS)))
    logp = log_softmax(logits)
    best = max(
        (p for p in itertools.product(range(len(LABELS)), repeat=4)
         if valid([LABELS[i] for i in p])),
        key=lambda p: logp[np.arange(4), p].sum(),
    )  # fmt: skip
    assert viterbi(logits, LABELS).tolist() == list(best)
    argmax = logits.argmax(-1)
    if valid([LABELS[i] for i in argmax]):  # nothing to repair: the same tags as argmax
        assert viterbi(logits, LABELS).tolist() == argmax.tolist()


def test_empty_sentence_and_unknown_method():
    assert decode(np.zeros((0, 5)), LABELS).tolist() == []
    with pytest.raises(ValueError, match="choose one of viterbi, argmax"):
        decode(np.zeros((2, 5)), LABELS, "beam")


def test_io_labels_decode_runs_as_entities():
    from finslm.ner.evaluate import entity_metrics
    from finslm.ner.tags import to_iob2, to_labels

    io = label_list(["PER", "ORG"], "io")
    assert io == ["O", "I-PER", "I-ORG"]
    # An IO model may start an entity with I-T: Viterbi must not forbid it (it is argmax here).
    logits = np.log(np.array([[0.1, 0.1, 0.8], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1]]))
    ids = decode(logits, io)
    assert ids.tolist() == logits.argmax(-1).tolist()
    assert to_iob2([io[i] for i in ids]) == ["B-ORG", "I-ORG", "O", "B-PER"]
    # Training labels: B-T -> I-T; gold written in IO scores as the IOB2 it came from.
    gold = ["B-ORG", "I-ORG", "O", "B-PER"]
    assert to_labels(gold, "io") == ["I-ORG", "I-ORG", "O", "I-PER"]
    assert to_labels(gold, "iob2") == gold
    m = entity_metrics([to_labels(gold, "io")], [[io[i] for i in ids]])
    assert m["entity_micro_f1"] == 1.0 and m["entities"] == 2
    with pytest.raises(ValueError, match="choose one of iob2, io"):
        label_list(["PER"], "bilou")
