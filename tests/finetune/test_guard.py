"""The leakage guard: a validation or test sentence in any training data stops the run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from finslm.config import FinetuneConfig
from finslm.finetune.arms import Setup, build_arms, train_arm
from finslm.finetune.guard import LeakageError, assert_no_leak, protected_keys
from finslm.finetune.loop import EvalSet

TRAIN = ["Net sales rose 5% in the quarter.", "The plant employs 40 people."]
VAL = ["Orders fell sharply in March."]
TEST = ["Operating profit climbed to EUR 3.1 mn from EUR 2.0 mn."]


def test_clean_training_data_passes():
    protected = protected_keys({"val": VAL, "test": TEST})
    assert assert_no_leak(TRAIN, protected, what="x") == 2


@pytest.mark.parametrize(
    "injected",
    [
        TEST[0],
        "  operating PROFIT climbed to eur 3.1 mn from eur 2.0 mn  ",  # case and spacing
        "Operating profit climbed to EUR 3.1 mn, from EUR 2.0 mn",  # punctuation
        "Operating profit climbed to EUR 3.1\u00a0mn from EUR 2.0 mn.",  # NBSP (NFKC)
    ],
)
def test_injected_test_sentence_raises(injected):
    protected = protected_keys({"val": VAL, "test": TEST})
    with pytest.raises(LeakageError, match=r"1 test sentence\(s\) at training positions \[2\]"):
        assert_no_leak([*TRAIN, injected], protected, what="minilm-targeted")


def test_decimal_point_is_not_folded_away():
    # "3.1" and "31" are different texts for the repo's key, so this is no leak.
    protected = protected_keys({"test": ["Profit was 3.1 mn."]})
    assert assert_no_leak(["Profit was 31 mn."], protected, what="x") == 1


def test_guard_runs_before_any_training_on_an_injected_test_sentence(planted):
    """A test sentence injected into the train split stops an arm before it loads a model."""
    from finslm.finetune.mining import mine
    from finslm.finetune.selection import Targets, select
    from tests.finetune.test_mining import MINING, sgd_fitter
    from tests.finetune.test_phases import WordLengths

    frame, _ = planted
    test_sentence = "Quarterly revenue rose in the Nordic unit (9999)."
    frame = frame.copy()
    frame.loc[5, "text"] = test_sentence.upper()  # normalised key is the same
    out = select(mine(frame.text, frame.label, sgd_fitter(), **MINING), Targets(), FinetuneConfig())

    def no_model():
        raise AssertionError("the guard must stop the run before a model is loaded")

    setup = Setup(
        cfg=dataclasses.replace(FinetuneConfig(), batch_size=8),
        model_cfg=None,
        load_base=no_model,
        cache=WordLengths(),
        selected=out,
        val=EvalSet([], []),
        protected=protected_keys({"val": VAL, "test": [test_sentence]}),
    )
    targeted, control, info = build_arms(setup, seed=1)
    for arm in (targeted, control):
        with pytest.raises(LeakageError, match=f"minilm-{arm.name} \\(seed 1\\)"):
            train_arm(setup, arm, info["_plan"], seed=1)


def test_augmented_copy_equal_to_a_test_sentence_raises():
    protected = protected_keys({"test": ["Net sales grew 5% in the quarter."]})
    augmented = ["Net sales grew 5% in the quarter."]  # a synonym copy of TRAIN[0]
    with pytest.raises(LeakageError, match="test sentence"):
        assert_no_leak(TRAIN + augmented, protected, what="minilm-targeted")


def test_augmentation_discards_copies_that_would_leak():
    from finslm.finetune.augment import augment
    from finslm.finetune.guard import text_key

    rng = np.random.default_rng(0)
    leak = "Net sales grew 5% in the quarter."
    taken = {text_key(TRAIN[0]), text_key(leak)}
    texts, labels, _, discarded = augment(
        [TRAIN[0]] * 20, ["positive"] * 20, "synonyms", 1, 1.0, rng, taken
    )
    assert text_key(leak) not in {text_key(t) for t in texts}
    assert discarded >= 1 and set(labels) <= {"positive"}
