"""The honest ablation: base vs uniform control vs targeted, same budget, several seeds.

For each seed both arms start from the same trained base model (``models/<m>``), follow the same
phase plan (examples, optimizer steps, learning rate per step; :mod:`finslm.finetune.phases`)
and are selected the same way (the evaluation with the best validation macro-F1, early stopping
with the same patience). They differ only in what they train on: the targeted arm's focus pool
and weights, or uniform passes over the train split. The seed drives what is random in the
continued training: the easy samples drawn into the focus pool, augmentation draws, batch order
and dropout. The base model and the mining are the same for every seed.

The test split is read only after an arm's training and selection are over, for reporting.

    >>> row = run_seed(42, setup)          # {"targeted": {...}, "control": {...}}
    >>> summary = summarise(rows, base)    # mean and std over seeds
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from finslm.evaluation import flat_metrics
from finslm.finetune.augment import augment
from finslm.finetune.guard import assert_no_leak, text_key
from finslm.finetune.loop import (
    EvalSet,
    LoopOptions,
    Phase,
    TokenCache,
    TrainLog,
    evaluate,
    label_ids,
    run_training,
)
from finslm.finetune.phases import (
    control_streams,
    describe,
    eval_steps,
    length_batches,
    lr_schedule,
    plan_phases,
    targeted_streams,
)
from finslm.finetune.selection import focus_pool
from finslm.train.determinism import set_determinism

log = logging.getLogger("finslm.finetune")


@dataclass
class Setup:
    """Everything a seed's two runs need (built once by the stage)."""

    cfg: Any  # FinetuneConfig
    model_cfg: Any  # TransformerConfig of the base model
    load_base: Callable[[], tuple[Any, Any]]  # -> (tokenizer, model), a fresh copy each call
    cache: TokenCache
    selected: pd.DataFrame  # train split with mining flags, hard, weight (selection.select)
    val: EvalSet
    protected: Mapping[str, str]  # normalised val/test keys -> split name
    model_name: str = "minilm"


@dataclass
class Arm:
    """One run's data: its pool of texts, and per phase the pool indices and loss weights."""

    name: str
    texts: list[str]
    labels: np.ndarray
    streams: dict[str, np.ndarray]
    weights: dict[str, np.ndarray | None]


def build_arms(setup: Setup, seed: int) -> tuple[Arm, Arm, dict[str, Any]]:
    """(targeted, control, info): the two arms of one seed on one shared phase plan."""
    cfg = setup.cfg
    frame = setup.selected
    train_texts = frame["text"].astype(str).tolist()
    train_labels = frame["label"].astype(str).tolist()
    n_train = len(train_texts)
    rng = np.random.default_rng([seed, 0])
    hard, easy = focus_pool(frame, cfg.easy_ratio, rng)
    aug_texts: list[str] = []
    aug_labels: list[str] = []
    discarded = 0
    if cfg.augment and len(hard):
        taken = {text_key(t) for t in train_texts} | set(setup.protected)
        aug_texts, aug_labels, _, discarded = augment(
            [train_texts[i] for i in hard],
            [train_labels[i] for i in hard],
            cfg.augment_method,
            cfg.augment_copies,
            cfg.augment_rate,
            rng,
            taken,
        )
    texts = train_texts + aug_texts
    labels = label_ids(train_labels + aug_labels)
    pool = np.concatenate([hard, easy, np.arange(n_train, n_train + len(aug_texts))])
    plan = plan_phases(cfg, n_train, len(pool))
    targeted = Arm(
        "targeted",
        texts,
        labels,
        targeted_streams(plan, n_train, pool, np.random.default_rng([seed, 1])),
        {"focus": None, "weighted": frame["weight"].to_numpy(), "consolidation": None},
    )
    control = Arm(
        "control",
        train_texts,
        label_ids(train_labels),
        control_streams(plan, n_train, np.random.default_rng([seed, 2])),
        dict.fromkeys(("focus", "weighted", "consolidation")),
    )
    info = {
        "focus_pool": {
            "hard": int(len(hard)),
            "easy": int(len(easy)),
            "augmented": len(aug_texts),
            "augment_discarded": int(discarded),
        },
        "plan": describe(plan),
        "_plan": plan,
    }
    return targeted, control, info


def arm_phases(arm: Arm, cache: TokenCache, batch_size: int, seed: int) -> list[Phase]:
    lengths = cache.lengths(arm.texts)
    rng = np.random.default_rng([seed, 3])
    return [
        Phase(name, length_batches(stream, lengths, batch_size, rng), arm.weights[name])
        for name, stream in arm.streams.items()
    ]


def train_arm(setup: Setup, arm: Arm, plan, seed: int) -> tuple[Any, Any, TrainLog]:
    """Train one arm from a fresh copy of the base model; return (tokenizer, model, log).

    The leakage guard runs first, over the arm's whole pool (augmented copies included).
    """
    cfg = setup.cfg
    assert_no_leak(
        arm.texts,
        setup.protected,
        what=f"{setup.model_name}-{arm.name} (seed {seed})",
    )
    set_determinism(seed, cfg.threads)
    tokenizer, model = setup.load_base()
    phases = arm_phases(arm, setup.cache, cfg.batch_size, seed)
    options = LoopOptions(
        weight_decay=setup.model_cfg.weight_decay,
        label_smoothing=setup.model_cfg.label_smoothing,
        eval_steps=eval_steps(plan, len(setup.selected), cfg.batch_size, cfg.evals_per_epoch),
        patience=cfg.patience,
    )
    log.info("seed %d, %s: %s optimizer steps", seed, arm.name, sum(len(p.batches) for p in phases))
    result = run_training(
        model,
        setup.cache,
        arm.texts,
        arm.labels,
        phases,
        lr_schedule(plan, cfg.warmup_ratio),
        options,
        eval_set=setup.val,
    )
    return tokenizer, model, result


def _stats(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    return {"mean": round(float(a.mean()), 4), "std": round(std, 4), "n": int(a.size)}


def summarise(
    rows: Mapping[str, Mapping[str, Any]], base: Mapping[str, Mapping[str, float]]
) -> dict[str, Any]:
    """Mean and sample std over seeds per split, arm and metric, and the paired differences.

    ``rows`` is seed -> {"control": {"val", "test"}, "targeted": {"val", "test"}}; ``base`` is
    split -> metrics of the base model (the same for every seed, so its std is 0).
    """
    out: dict[str, Any] = {}
    seeds = list(rows)
    for split in ("val", "test"):
        keys = list(base[split])
        block: dict[str, Any] = {"base": {k: _stats([base[split][k]] * len(seeds)) for k in keys}}
        for arm in ("control", "targeted"):
            block[arm] = {k: _stats([rows[s][arm][split][k] for s in seeds]) for k in keys}
        for a, b in (("targeted", "control"), ("targeted", "base"), ("control", "base")):
            block[f"{a}_minus_{b}"] = {
                k: _stats(
                    [
                        rows[s][a][split][k]
                        - (base[split][k] if b == "base" else rows[s][b][split][k])
                        for s in seeds
                    ]
                )
                for k in ("accuracy", "macro_f1")
            }
        out[split] = block
    return out


def evaluate_split(model, cache: TokenCache, frame: pd.DataFrame) -> dict[str, float]:
    return flat_metrics(evaluate(model, cache, frame["text"].astype(str).tolist(), frame["label"]))
