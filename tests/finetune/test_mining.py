"""Mining: out-of-fold predictions and cartography find planted label-flipped / ambiguous rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from finslm.config import FinetuneConfig, TransformerConfig
from finslm.finetune.mining import (
    FLAGS,
    FoldResult,
    add_flags,
    fold_ids,
    mine,
    mining_counts,
    transformer_fold_fitter,
)
from finslm.finetune.selection import Targets, select
from finslm.labels import LABELS
from tests.finetune.conftest import keyword_dataset


def sgd_fitter(epochs: int = 5):
    """A fast bag-of-words logistic regression trained by SGD, epoch by epoch (the model the
    mining logic is tested with; the transformer fitter has the same contract)."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import SGDClassifier

    def fit(train_texts, train_labels, heldout_texts, seed):
        vec = CountVectorizer(binary=True).fit(train_texts)
        x, y = vec.transform(train_texts), np.array(train_labels)
        clf = SGDClassifier(loss="log_loss", alpha=1e-3, random_state=seed)
        rng = np.random.default_rng(seed)
        gold = np.array([LABELS.index(v) for v in y])
        dynamics = np.zeros((len(y), epochs))
        for e in range(epochs):
            order = rng.permutation(len(y))
            for start in range(0, len(y), 16):
                idx = order[start : start + 16]
                clf.partial_fit(x[idx], y[idx], classes=list(LABELS))
            dynamics[:, e] = clf.predict_proba(x)[np.arange(len(y)), gold]
        return FoldResult(clf.predict_proba(vec.transform(heldout_texts)), dynamics)

    return fit


MINING = dict(folds=4, seed=0, low_confidence=0.6, ambiguous_share=0.15, hard_to_learn_share=0.05)


@pytest.fixture(scope="module")
def mined(planted):
    frame, mask = planted
    return mine(frame.text, frame.label, sgd_fitter(), **MINING), mask


def test_mining_finds_planted_hard_samples(mined):
    out, planted = mined
    flagged = out[["misclassified", "low_confidence", "ambiguous"]].any(axis=1).to_numpy()
    assert flagged[planted].mean() >= 0.9  # recall of the 30 planted rows
    assert flagged[~planted].mean() <= 0.15  # clean rows are rarely flagged
    # The selection keeps at most 30% of the train split, best score first: still the planted.
    selected = select(out, Targets(), FinetuneConfig())
    hard = selected["hard"].to_numpy()
    assert hard.sum() <= int(0.3 * len(out))
    assert hard[planted].mean() >= 0.85
    # Flipped rows are confidently wrong: misclassified out of fold.
    assert out["misclassified"].to_numpy()[planted].mean() >= 0.4


def test_every_example_gets_one_oof_prediction_and_k_minus_1_epochs_of_dynamics(mined):
    out, _ = mined
    assert np.allclose(out[[f"oof_p_{c}" for c in LABELS]].sum(axis=1), 1.0)
    assert (out["carto_observations"] == (MINING["folds"] - 1) * 5).all()
    assert out["fold"].nunique() == MINING["folds"]
    counts = mining_counts(out)
    assert counts["n_train"] == len(out)
    assert set(counts["flags"]) == set(FLAGS)
    assert counts["regions"]["ambiguous"] == int(round(0.15 * len(out)))


def test_folds_are_stratified_and_cover_everything():
    labels = ["negative"] * 20 + ["neutral"] * 40 + ["positive"] * 20
    ids = fold_ids(labels, 4, seed=1)
    assert sorted(set(ids)) == [0, 1, 2, 3]
    for f in range(4):
        held = np.array(labels)[ids == f]
        assert (held == "neutral").sum() == 10 and (held == "negative").sum() == 5


def test_single_observation_means_nothing_is_ambiguous(mined):
    out, _ = mined
    flat = out.assign(carto_variability=0.0)
    assert not add_flags(flat, 0.6, 0.15, 0.05)["ambiguous"].any()


@pytest.mark.slow  # trains a transformer
def test_transformer_fold_fitter_contract(tiny_checkpoint):
    frame, _ = keyword_dataset(n_clean=30, n_flipped=3, n_ambiguous=3)
    cfg = dataclasses.replace(
        TransformerConfig(), checkpoint=str(tiny_checkpoint), batch_size=8, max_length=32
    )
    fit = transformer_fold_fitter(cfg, epochs=2)
    texts, labels = frame.text.tolist(), frame.label.tolist()
    result = fit(texts[:24], labels[:24], texts[24:], 0)
    assert result.heldout_proba.shape == (len(texts) - 24, 3)
    assert np.allclose(result.heldout_proba.sum(axis=1), 1.0, atol=1e-5)
    # One p(gold) per training example per epoch, recorded in the training forward pass.
    assert result.dynamics.shape == (24, 2) and not np.isnan(result.dynamics).any()
    assert ((result.dynamics > 0) & (result.dynamics < 1)).all()
    again = fit(texts[:24], labels[:24], texts[24:], 0)
    assert np.allclose(again.heldout_proba, result.heldout_proba, atol=1e-6)  # seeded


def test_folds_stay_stratified_when_the_smallest_class_has_exactly_k_rows():
    """4 negatives and 4 folds: one negative in each fold."""
    labels = ["negative"] * 4 + ["neutral"] * 8 + ["positive"] * 8
    ids = fold_ids(labels, 4, 0)
    for fold in range(4):
        assert list(np.array(labels)[ids == fold]).count("negative") == 1
