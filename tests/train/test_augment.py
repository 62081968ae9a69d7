"""Augmented transfer text: perturbed copies of train sentences (word dropout, embedding-
neighbour swaps), scored by the teacher after the train rows, and learnt by students through
the KL term alone."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
import torch

from finslm.config import ConfigError, TeacherConfig, build
from finslm.train.augment import augment_texts, embedding_neighbours, perturb
from finslm.train.distill import UNLABELLED, _WithTeacher, distill_loss
from finslm.train.teacher import (
    SOURCE_COLUMN,
    aligned_logits,
    augmented_logits,
    score_train_split,
)
from tests.conftest import TRAINED_TRAIN

NEIGHBOURS = {"profit": ["income", "earnings"], "rose": ["fell"], "sharply": ["strongly"]}
TEXTS = [
    "Quarterly profit rose sharply in the north region.",
    "The board met on Tuesday to discuss the plan.",
    "Profit rose.",
]


def test_copies_are_seeded_distinct_and_point_at_their_source():
    copies = augment_texts(TEXTS, NEIGHBOURS, 3, word_dropout=0.2, word_swap=0.4, seed=7)
    assert copies == augment_texts(TEXTS, NEIGHBOURS, 3, word_dropout=0.2, word_swap=0.4, seed=7)
    assert copies != augment_texts(TEXTS, NEIGHBOURS, 3, word_dropout=0.2, word_swap=0.4, seed=8)
    texts = [text for _, text in copies]
    assert len(set(texts)) == len(texts) and not set(texts) & set(TEXTS)
    assert all(len(text.split()) >= 3 for text in texts)
    rows = [row for row, _ in copies]
    assert rows == sorted(rows) and set(rows) <= {0, 1}  # "Profit rose." cannot keep 3 words
    assert sum(row == 0 for row in rows) == 3


def test_a_swap_keeps_case_and_punctuation():
    rng = random.Random(0)
    out = perturb("Profit rose sharply.", rng, NEIGHBOURS, word_dropout=0.0, word_swap=0.999)
    first, second, third = out.split()
    assert first in {"Income", "Earnings"} and second == "fell" and third == "strongly."
    assert perturb("PROFIT", rng, NEIGHBOURS, 0.0, 0.999) in {"INCOME", "EARNINGS"}
    # nothing to swap and no dropout: the text comes back unchanged (and is then not kept)
    assert perturb("The board met.", rng, NEIGHBOURS, 0.0, 0.5) == "The board met."
    assert augment_texts(["The board met today."], NEIGHBOURS, 2, 0.0, 0.5, seed=0) == []


def test_neighbours_come_from_the_input_embeddings(tiny_checkpoint):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    model = AutoModel.from_pretrained(tiny_checkpoint)
    vocab = tokenizer.get_vocab()
    table = model.get_input_embeddings().weight
    with torch.no_grad():  # make "income" profit's twin and "revenue" its near neighbour
        table[vocab["income"]] = table[vocab["profit"]]
        table[vocab["revenue"]] = table[vocab["profit"]] + 0.05 * table[vocab["loss"]]
    near = embedding_neighbours(model, tokenizer, {"Profit", "zzzqx", "a"}, k=2)
    assert list(near) == ["profit"]  # not in the vocabulary / too short: no entry
    assert near["profit"][:2] == ["income", "revenue"]
    assert "profit" not in near["profit"]


def test_teacher_scores_copies_after_the_train_rows(tiny_classifier, tmp_path):
    from finslm.predict import load_predictor

    train = pd.DataFrame(TRAINED_TRAIN, columns=["text", "label"])
    cfg = TeacherConfig(batch_size=16, threads=1, augment_copies=2, word_dropout=0.3)
    table = score_train_split(tiny_classifier, train, cfg)
    n = len(train)
    assert len(table) > n and table[SOURCE_COLUMN].iloc[:n].tolist() == list(range(n))
    path = tmp_path / "t.parquet"
    table.to_parquet(path, index=False)
    assert aligned_logits(path, train).shape == (n, 3)  # the train rows, as before
    texts, logits = augmented_logits(path, train)
    assert len(texts) == len(table) - n and logits.shape == (len(texts), 3)
    assert not set(texts) & set(train.text)
    direct = load_predictor(tiny_classifier, "torch-fp32").logits(texts[:4])
    np.testing.assert_allclose(logits[:4], direct, atol=1e-5)
    plain = score_train_split(tiny_classifier, train, TeacherConfig(threads=1))
    plain.to_parquet(path, index=False)
    assert augmented_logits(path, train)[0] == []  # no copies asked for: none


def test_unlabelled_rows_learn_from_the_teacher_alone():
    student = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
    teacher = torch.tensor([[1.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 2.0]])
    labels = torch.tensor([0, UNLABELLED, UNLABELLED])
    ce_only = distill_loss(student, teacher, labels, alpha=0.0, temperature=2.0)
    expected = torch.nn.functional.cross_entropy(student[:1], labels[:1])
    assert torch.isclose(ce_only, expected)
    none_labelled = torch.full((3,), UNLABELLED)
    kd_only = distill_loss(student, teacher, none_labelled, alpha=0.5, temperature=2.0)
    full_kd = distill_loss(student, teacher, none_labelled, alpha=1.0, temperature=2.0)
    assert torch.isfinite(kd_only) and torch.isclose(kd_only, 0.5 * full_kd)


def test_the_student_set_marks_copies_unlabelled(tiny_checkpoint):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    logits = np.zeros((4, 3), np.float32)
    ds = _WithTeacher(
        tokenizer, ["a b c", "d e f"], ["positive", "neutral"], 16, logits, ["g h"] * 2
    )
    assert [ds[i]["labels"] for i in range(4)][2:] == [UNLABELLED, UNLABELLED]
    assert ds[0]["labels"] != UNLABELLED
    with pytest.raises(ValueError, match="3 teacher rows for 4 texts"):
        _WithTeacher(tokenizer, ["a", "b"], ["positive", "neutral"], 16, logits[:3], ["c", "d"])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"augment_copies": -1}, "augment_copies"),
        ({"word_dropout": 1.0}, "word_dropout"),
        ({"word_swap": 0.6, "word_dropout": 0.5}, "word_swap"),
        ({"swap_neighbours": 0}, "swap_neighbours"),
    ],
)
def test_augment_settings_are_checked(settings, message):
    with pytest.raises(ConfigError, match=message):
        build(TeacherConfig, settings, "distill.teachers.mpnet")
