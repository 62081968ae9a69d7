"""Phase plans, learning-rate schedules and the example streams of the targeted run and its control.

A plan fixes, per phase, how many examples are seen, how many optimizer steps that takes and the
peak learning rate. The targeted run and the uniform control share one plan, so they see the
same number of examples in the same number of steps under the same learning-rate schedule; only
*which* examples (and their loss weights) differ:

=============  =============================================  ==========================
phase          targeted                                       control
=============  =============================================  ==========================
focus          hard samples + ``easy_ratio`` easy ones (+      uniform passes over train
               augmented hard copies), ``focus_epochs``
               passes
weighted       ``weighted_epochs`` passes over train,          uniform passes over train
               capped per-sample loss weights
consolidation  ``consolidation_epochs`` passes over train at   the same, same lower rate
               ``lr * consolidation_lr_scale``
=============  =============================================  ==========================

    >>> plan = plan_phases(cfg, n_train=3479, n_focus=1800)
    >>> lrs = lr_schedule(plan, cfg.warmup_ratio)        # one rate per optimizer step
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from finslm.finetune.loop import steps_for

PHASES = ("focus", "weighted", "consolidation")


@dataclass(frozen=True)
class PhasePlan:
    name: str
    examples: int  # examples seen in this phase (both arms)
    steps: int  # optimizer steps (ceil(examples / batch_size))
    lr: float  # peak learning rate


def plan_phases(cfg, n_train: int, n_focus: int) -> list[PhasePlan]:
    """The three phases for a train split of ``n_train`` and a focus pool of ``n_focus``."""
    sizes = {
        "focus": round(cfg.focus_epochs * n_focus),
        "weighted": round(cfg.weighted_epochs * n_train),
        "consolidation": round(cfg.consolidation_epochs * n_train),
    }
    lrs = {
        "focus": cfg.lr,
        "weighted": cfg.lr,
        "consolidation": cfg.lr * cfg.consolidation_lr_scale,
    }
    return [
        PhasePlan(name, sizes[name], steps_for(sizes[name], cfg.batch_size), lrs[name])
        for name in PHASES
    ]


def lr_schedule(plan: Sequence[PhasePlan], warmup_ratio: float) -> np.ndarray:
    """One learning rate per optimizer step: in each phase, linear warm-up over its first
    ``warmup_ratio`` of steps to the phase's peak, then linear decay to zero at its end."""
    rates = []
    for phase in plan:
        n = phase.steps
        warm = int(round(warmup_ratio * n))
        for s in range(n):
            factor = (s + 1) / (warm + 1) if s < warm else (n - s) / max(1, n - warm)
            rates.append(phase.lr * factor)
    return np.asarray(rates, dtype=np.float64)


def eval_steps(
    plan: Sequence[PhasePlan], n_train: int, batch_size: int, evals_per_epoch: int
) -> tuple[int, ...]:
    """Evaluate every ``1/evals_per_epoch`` train-split pass worth of steps, and at phase ends."""
    every = max(1, steps_for(n_train, batch_size) // max(1, evals_per_epoch))
    total = sum(p.steps for p in plan)
    points = set(range(every, total + 1, every))
    end = 0
    for phase in plan:
        end += phase.steps
        if phase.steps:
            points.add(end)
    return tuple(sorted(points))


def passes(pool: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` indices from shuffled passes over ``pool`` (each pass reshuffled, the last cut)."""
    pool = np.asarray(pool, dtype=np.int64)
    if n <= 0 or pool.size == 0:
        return np.zeros(0, dtype=np.int64)
    out = [rng.permutation(pool) for _ in range(-(-n // pool.size))]
    return np.concatenate(out)[:n]


def length_batches(
    stream: np.ndarray,
    lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    group: int = 50,
) -> list[np.ndarray]:
    """Cut ``stream`` into batches of similar token length (less padding, faster on CPU).

    Chunks of ``batch_size * group`` consecutive stream entries are sorted by length and cut into
    batches, which are then shuffled. Every chunk but the last is a multiple of ``batch_size``,
    so there are always ``ceil(len(stream) / batch_size)`` batches whatever the lengths: two
    streams of equal size give the same number of optimizer steps.
    """
    mega = batch_size * group
    batches = []
    for start in range(0, len(stream), mega):
        chunk = stream[start : start + mega]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def targeted_streams(
    plan: Sequence[PhasePlan], n_train: int, focus_pool: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Indices per phase for the targeted run: the focus pool first, then the train split
    (indices ``0..n_train-1``; the focus pool may hold augmented copies beyond them)."""
    train = np.arange(n_train)
    sources = {"focus": focus_pool, "weighted": train, "consolidation": train}
    return {p.name: passes(sources[p.name], p.examples, rng) for p in plan}


def control_streams(
    plan: Sequence[PhasePlan], n_train: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Indices per phase for the control: uniform passes over the train split, same sizes."""
    train = np.arange(n_train)
    return {p.name: passes(train, p.examples, rng) for p in plan}


def describe(plan: Sequence[PhasePlan]) -> dict[str, Any]:
    """The plan for metrics: per phase examples/steps/lr, and the totals."""
    return {
        "phases": {p.name: {k: v for k, v in asdict(p).items() if k != "name"} for p in plan},
        "examples": sum(p.examples for p in plan),
        "optimizer_steps": sum(p.steps for p in plan),
    }
