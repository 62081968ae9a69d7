"""What the targeted run emphasises: hard samples, the focus pool and the per-sample weights.

Inputs are the mining flags (training split, out-of-fold) and the explain stage's analysis of the
trained model (validation split): its ``target_classes`` (classes below the macro-F1, with a
weight in [1, 3]) and its ``confusions`` ((true, predicted) pairs). Added columns:

- ``target_class``: the gold label is one of the analysis's target classes;
- ``target_confusion``: the OOF (gold, predicted) pair is one of the analysis's confusions;
- ``candidate``: any flag listed in ``finetune.focus_flags`` is set;
- ``score``: ``(1 - oof_p_gold + carto_variability) * class weight``, plus 1 for a target
  confusion: how much a sample deserves focus, used to keep at most ``max_hard_share``;
- ``hard``: the candidates kept (highest score first);
- ``weight``: the weighted phase's loss weight, ``class weight * (hard_weight if hard)``, capped
  at ``weight_cap`` and scaled to mean 1 over the train split.

    >>> targets = load_targets(Path("analysis/minilm.json"), model="minilm")
    >>> selected = select(mining_frame, targets, cfg)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from finslm.data import DataError
from finslm.labels import LABELS


@dataclass(frozen=True)
class Targets:
    """The parts of ``analysis/<model>.json`` the fine-tune acts on."""

    class_weights: dict[str, float] = field(default_factory=dict)  # target classes only
    confusions: frozenset[tuple[str, str]] = frozenset()
    val_macro_f1: float | None = None

    def weight(self, label: str) -> float:
        return float(self.class_weights.get(label, 1.0))

    def describe(self) -> dict[str, Any]:
        return {
            "target_classes": dict(self.class_weights),
            "confusions": [f"{t}->{p}" for t, p in sorted(self.confusions)],
            "analysis_val_macro_f1": self.val_macro_f1,
        }


def load_targets(path: Path, model: str) -> Targets:
    """Read and check the explain stage's recommendations file for ``model``."""
    from finslm.explain.analysis import SchemaError, validate_recommendations

    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{path}: not found; the explain stage writes it for params explain.model "
            f"(run `dvc repro explain` with explain.model: {model})"
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        validate_recommendations(doc)
    except (json.JSONDecodeError, SchemaError) as exc:
        raise DataError(
            f"{path}: not a valid analysis file ({exc}); rerun `dvc repro explain`"
        ) from None
    if doc["model"] != model:
        raise DataError(
            f"{path}: analyses model {doc['model']!r}, not finetune.model {model!r}; set "
            f"explain.model: {model} and rerun `dvc repro explain`"
        )
    return Targets(
        class_weights={c["label"]: float(c["weight"]) for c in doc["target_classes"]},
        confusions=frozenset((c["true"], c["predicted"]) for c in doc["confusions"]),
        val_macro_f1=float(doc["metrics"]["macro_f1"]),
    )


def select(frame: pd.DataFrame, targets: Targets, cfg) -> pd.DataFrame:
    """The mining frame with the columns in the module docstring added."""
    frame = frame.copy()
    class_w = frame["label"].map(targets.weight).to_numpy() if cfg.class_focus else 1.0
    pairs = zip(frame["label"], frame["oof_pred"], strict=True)
    frame["target_class"] = frame["label"].isin(targets.class_weights.keys())
    frame["target_confusion"] = [t != p and (t, p) in targets.confusions for t, p in pairs]
    frame["candidate"] = frame[list(cfg.focus_flags)].any(axis=1)
    score = (1.0 - frame["oof_p_gold"] + frame["carto_variability"]) * class_w
    frame["score"] = (score + frame["target_confusion"].astype(float)).round(6)
    keep = int(np.floor(cfg.max_hard_share * len(frame)))
    order = np.argsort(-frame["score"].to_numpy(), kind="stable")
    candidates = [i for i in order if frame["candidate"].iat[i]][:keep]
    hard = np.zeros(len(frame), dtype=bool)
    hard[candidates] = True
    frame["hard"] = hard
    frame["weight"] = sample_weights(frame["label"], hard, targets, cfg)
    return frame


def sample_weights(labels: pd.Series, hard: np.ndarray, targets: Targets, cfg) -> np.ndarray:
    """Capped loss weights, mean 1 over the train split (the weighted phase)."""
    class_w = labels.map(targets.weight).to_numpy() if cfg.class_focus else np.ones(len(labels))
    raw = np.minimum(cfg.weight_cap, class_w * np.where(hard, cfg.hard_weight, 1.0))
    return raw / raw.mean() if len(raw) else raw


def focus_pool(
    frame: pd.DataFrame, easy_ratio: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(hard indices, easy indices): every hard sample and ``easy_ratio`` times as many others,
    drawn without replacement and stratified by label in the train split's proportions."""
    hard = np.flatnonzero(frame["hard"].to_numpy())
    easy_all = np.flatnonzero(~frame["hard"].to_numpy())
    n_easy = min(len(easy_all), int(round(easy_ratio * len(hard))))
    if n_easy == 0:
        return hard, np.zeros(0, dtype=np.int64)
    labels = frame["label"].to_numpy()
    picked = []
    for label in LABELS:
        pool = easy_all[labels[easy_all] == label]
        share = int(round(n_easy * len(pool) / len(easy_all)))
        picked.extend(rng.choice(pool, size=min(share, len(pool)), replace=False))
    picked = np.array(sorted(picked), dtype=np.int64)
    short = n_easy - len(picked)  # rounding: top up or trim, at random, to exactly n_easy
    if short > 0:
        rest = np.setdiff1d(easy_all, picked)
        picked = np.concatenate([picked, rng.choice(rest, size=short, replace=False)])
    elif short < 0:
        picked = rng.choice(picked, size=n_easy, replace=False)
    return hard, np.sort(picked)


def selection_counts(frame: pd.DataFrame, n_easy: int, focus_flags: Sequence[str]):
    """Counts for metrics: candidates, hard (per flag and class), targets, weights."""
    hard = frame[frame["hard"]]
    return {
        "focus_flags": list(focus_flags),
        "candidates": int(frame["candidate"].sum()),
        "hard": int(len(hard)),
        "easy_in_focus": int(n_easy),
        "hard_by_label": {label: int((hard["label"] == label).sum()) for label in LABELS},
        "hard_by_flag": {f: int(hard[f].sum()) for f in focus_flags},
        "target_class": int(frame["target_class"].sum()),
        "target_confusion": int(frame["target_confusion"].sum()),
        "weight_min": round(float(frame["weight"].min()), 4),
        "weight_max": round(float(frame["weight"].max()), 4),
    }
