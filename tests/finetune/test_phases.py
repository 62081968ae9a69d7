"""Phase scheduling: the targeted run and its control see the same examples, steps and rates."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from finslm.config import FinetuneConfig
from finslm.finetune.arms import Setup, arm_phases, build_arms
from finslm.finetune.loop import EvalSet
from finslm.finetune.phases import (
    PhasePlan,
    eval_steps,
    length_batches,
    lr_schedule,
    passes,
    plan_phases,
)
from finslm.finetune.selection import Targets, select
from tests.finetune.test_mining import MINING, sgd_fitter


class WordLengths:
    """Stands in for the token cache: a text's length is its word count."""

    def lengths(self, texts):
        return np.array([len(t.split()) for t in texts])


@pytest.fixture(scope="module")
def selected(planted):
    from finslm.finetune.mining import mine

    frame, _ = planted
    out = mine(frame.text, frame.label, sgd_fitter(), **MINING)
    targets = Targets(class_weights={"negative": 2.0}, confusions=frozenset())
    return select(out, targets, FinetuneConfig())


def _setup(selected, **knobs) -> Setup:
    cfg = dataclasses.replace(FinetuneConfig(), batch_size=8, **knobs)
    return Setup(
        cfg=cfg,
        model_cfg=None,
        load_base=None,
        cache=WordLengths(),
        selected=selected,
        val=EvalSet([], []),
        protected={},
    )


@pytest.mark.parametrize("augment", [False, True])
def test_control_and_targeted_see_the_same_number_of_examples_and_steps(selected, augment):
    setup = _setup(selected, augment=augment, augment_copies=2)
    targeted, control, info = build_arms(setup, seed=7)
    plan = info["_plan"]
    n_train = len(selected)
    assert info["focus_pool"]["augmented"] > 0 if augment else info["focus_pool"]["augmented"] == 0
    for phase in plan:
        assert (
            len(targeted.streams[phase.name]) == len(control.streams[phase.name]) == phase.examples
        )
    t_phases = arm_phases(targeted, setup.cache, 8, seed=7)
    c_phases = arm_phases(control, setup.cache, 8, seed=7)
    for t, c, p in zip(t_phases, c_phases, plan, strict=True):
        assert len(t.batches) == len(c.batches) == p.steps  # same optimizer steps per phase
        assert sum(map(len, t.batches)) == sum(map(len, c.batches)) == p.examples
        assert sorted(np.concatenate(t.batches)) == sorted(targeted.streams[p.name])
    # One learning-rate schedule serves both (it depends on the plan only).
    assert len(lr_schedule(plan, 0.1)) == sum(len(p.batches) for p in t_phases)
    # What differs: the targeted focus phase draws from the focus pool, the control from train.
    pool = info["focus_pool"]
    focus = set(targeted.streams["focus"].tolist())
    hard = set(np.flatnonzero(selected["hard"]).tolist())
    assert hard <= focus and len(focus) == pool["hard"] + pool["easy"] + pool["augmented"]
    assert max(control.streams["focus"]) < n_train and len(control.texts) == n_train
    assert targeted.weights["weighted"] is not None and control.weights["weighted"] is None
    assert plan[0].examples == round(2.0 * (pool["hard"] + pool["easy"] + pool["augmented"]))
    assert plan[1].examples == n_train and plan[2].examples == round(0.5 * n_train)


def test_lr_schedule_warms_up_and_decays_per_phase():
    cfg = dataclasses.replace(FinetuneConfig(), batch_size=10, lr=1e-4)
    plan = plan_phases(cfg, n_train=100, n_focus=50)
    assert [p.steps for p in plan] == [10, 10, 5]
    lrs = lr_schedule(plan, warmup_ratio=0.2)
    assert len(lrs) == 25 and lrs.max() <= 1e-4 + 1e-12
    assert lrs[0] < lrs[1] < lrs[2] == pytest.approx(1e-4)  # warm-up, then the peak
    assert lrs[9] < lrs[5]  # decays within the phase
    assert max(lrs[20:]) == pytest.approx(1e-4 * cfg.consolidation_lr_scale)
    assert eval_steps(plan, 100, 10, evals_per_epoch=2) == (5, 10, 15, 20, 25)


def test_length_batches_count_does_not_depend_on_lengths():
    rng = np.random.default_rng(0)
    for n in (1, 31, 32, 33, 401, 1600, 1601):
        stream = rng.integers(0, 50, size=n)
        for lengths in (rng.integers(1, 60, size=50), np.ones(50, dtype=int)):
            batches = length_batches(stream, lengths, 32, rng, group=5)
            assert len(batches) == -(-n // 32)
            assert sorted(np.concatenate(batches)) == sorted(stream)


def test_passes_cover_the_pool_before_repeating():
    rng = np.random.default_rng(0)
    out = passes(np.arange(10), 25, rng)
    assert (
        len(out) == 25
        and sorted(out[:10]) == list(range(10))
        and sorted(out[10:20]) == list(range(10))
    )
    assert len(passes(np.arange(0), 5, rng)) == 0


def test_warmup_starts_above_zero():
    """10 steps, 20% warm-up (2 steps): the first step runs at 1/3 of the peak, and no step
    at 0 (a wasted step)."""
    rates = lr_schedule([PhasePlan("focus", 10, 10, 1.0)], 0.2)
    assert rates[0] == pytest.approx(1 / 3) and (rates > 0).all()


def test_every_phase_ends_with_an_evaluation():
    """Best-checkpoint selection must see the last step of each phase (7, 17 and 22 here)."""
    plan = [
        PhasePlan("focus", 70, 7, 1.0),
        PhasePlan("weighted", 100, 10, 1.0),
        PhasePlan("consolidation", 50, 5, 1.0),
    ]
    assert {7, 17, 22} <= set(eval_steps(plan, 100, 10, 1))


def test_passes_over_the_data_are_reshuffled_each_time():
    order = passes(np.arange(20), 40, np.random.default_rng(0))
    assert sorted(order[:20]) == sorted(order[20:]) == list(range(20))
    assert order[:20].tolist() != order[20:].tolist()
