"""Comprehensiveness, sufficiency and leave-one-out correlation on a model we can compute by hand."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from finslm.explain.faithfulness import (
    deletion_curves,
    leave_one_out,
    most_faithful,
    rank_methods,
    ranking,
    spearman,
    summarise,
    top_counts,
)
from finslm.explain.scorer import Scorer
from finslm.explain.words import split_words
from finslm.labels import LABELS
from finslm.predict import Predictor

WEIGHTS = {"soared": 0.6, "record": 0.3, "profit": 0.1}


class WeightedWords(Predictor):
    """p(positive) = sum of the weights of the words present; the rest split evenly."""

    def __init__(self):
        super().__init__(".", {"labels": list(LABELS)})

    def _predict_batch(self, texts):
        out = []
        for text in texts:
            pos = sum(WEIGHTS.get(w.text.lower(), 0.0) for w in split_words(text))
            out.append([(1 - pos) / 2, (1 - pos) / 2, pos])
        return np.array(out)


TEXT = "Profit soared to a record in March"  # 7 words; weights 0.1, 0.6, 0, 0, 0.3, 0, 0


@pytest.fixture
def scorer():
    return Scorer(WeightedWords(), batch_size=4)


def test_top_counts_round_up_and_stay_in_range():
    assert top_counts(7, [0.1, 0.2, 0.5]) == [1, 2, 4]
    assert top_counts(10, [0.1, 0.2, 0.5, 1.0]) == [1, 2, 5, 10]
    assert top_counts(1, [0.1]) == [1]


def test_ranking_is_descending_and_stable():
    assert ranking(np.array([0.1, 0.5, 0.5, -1.0])).tolist() == [1, 2, 0, 3]


def test_curves_for_the_true_ranking_by_hand(scorer):
    words = split_words(TEXT)
    true = np.array([0.1, 0.6, 0, 0, 0.3, 0, 0])
    comp, suff = deletion_curves(scorer, TEXT, words, 2, true, [0.1, 0.2, 0.5])
    # p = 1.0; top-1 = soared, top-2 = + record, top-4 = + profit and the first zero word.
    np.testing.assert_allclose(comp, [0.6, 0.9, 1.0])
    np.testing.assert_allclose(suff, [0.4, 0.1, 0.0])
    reverse = -true
    comp_r, suff_r = deletion_curves(scorer, TEXT, words, 2, reverse, [0.1, 0.2, 0.5])
    assert comp_r.mean() < comp.mean() and suff_r.mean() > suff.mean()


def test_leave_one_out_and_spearman(scorer):
    words = split_words(TEXT)
    loo = leave_one_out(scorer, TEXT, words, 2)
    np.testing.assert_allclose(loo, [0.1, 0.6, 0, 0, 0.3, 0, 0])
    assert spearman(loo, loo) == pytest.approx(1.0)
    assert spearman(loo, -loo) == pytest.approx(-1.0)
    assert math.isnan(spearman(np.ones(5), loo[:5]))
    assert math.isnan(spearman(np.array([1.0, 2.0]), np.array([2.0, 1.0])))


def test_summarise_skips_undefined_correlations():
    rows = [
        {"comprehensiveness": 0.5, "sufficiency": 0.1, "loo_spearman": float("nan")},
        {"comprehensiveness": 0.3, "sufficiency": 0.3, "loo_spearman": 0.4},
    ]
    assert summarise(rows) == pytest.approx(
        {"comprehensiveness": 0.4, "sufficiency": 0.2, "loo_spearman": 0.4}
    )


def test_most_faithful_uses_mean_rank_and_ignores_random():
    table = {
        "a": {"comprehensiveness": 0.5, "sufficiency": 0.10, "loo_spearman": 0.6},
        "b": {"comprehensiveness": 0.6, "sufficiency": 0.20, "loo_spearman": 0.3},
        "c": {"comprehensiveness": 0.2, "sufficiency": 0.40, "loo_spearman": float("nan")},
        "random": {"comprehensiveness": 0.9, "sufficiency": 0.0, "loo_spearman": 0.9},
    }
    ranks = rank_methods({k: v for k, v in table.items() if k != "random"})
    assert ranks == {"a": pytest.approx(4 / 3), "b": pytest.approx(5 / 3), "c": 3.0}
    assert most_faithful(table) == "a"
    # An undefined metric ranks last, below a negative one (not as a 0).
    same = {"comprehensiveness": 0.5, "sufficiency": 0.1}
    nan = {"a": {**same, "loo_spearman": -0.2}, "c": {**same, "loo_spearman": float("nan")}}
    assert rank_methods(nan) == {"a": 1.0, "c": 2.0}
    # Equal mean ranks (each method first on one metric): higher comprehensiveness wins.
    cyclic = {
        "x": {"comprehensiveness": 0.9, "sufficiency": 0.2, "loo_spearman": 0.1},
        "y": {"comprehensiveness": 0.5, "sufficiency": 0.3, "loo_spearman": 0.9},
        "z": {"comprehensiveness": 0.1, "sufficiency": 0.1, "loo_spearman": 0.5},
    }
    assert set(rank_methods(cyclic).values()) == {2.0}
    assert most_faithful(cyclic) == "x"


BATCHES = """
import json
import numpy as np
from finslm.explain.scorer import Scorer

class Recorder:
    labels = ("negative", "neutral", "positive")
    batches = []

    def predict_proba(self, texts, batch_size):
        Recorder.batches.append(list(texts))
        return np.full((len(texts), 3), 1 / 3)

scorer = Scorer(Recorder(), batch_size=64)
scorer([f"w{i} profit" for i in range(30)] + ["profit up", "profit rose"])
print(json.dumps(Recorder.batches))
"""


def test_scorer_batches_do_not_depend_on_string_hashing():
    # Batch make-up changes padding and INT8 activation scales, so it must be the same in every
    # process: run the scorer under different hash seeds and compare what it sent.
    sent = []
    for hash_seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run(
            [sys.executable, "-c", BATCHES], env=env, capture_output=True, text=True, check=True
        )
        sent.append(json.loads(run.stdout))
    assert sent[0] == sent[1] == sent[2]
    assert sorted(sent[0][0], key=len) == sent[0][0]  # still grouped by length (less padding)
