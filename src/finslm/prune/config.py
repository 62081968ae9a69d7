"""``prune.*`` in params.yaml. Kept beside the prune stage, not in finslm.config, so adding or
changing it does not make every other stage's code dependency stale."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

from finslm.config import ConfigError, _need, _raw_params, build


@dataclasses.dataclass
class PruneConfig:
    """What to remove from which model, and how to recover (``prune.*``)."""

    # A transformer under ``models``; the output is models/<model>-pruned.
    model: str = "minilm"
    # Encoder layers kept. ``importance``: drop, one at a time, the layer whose removal raises
    # the validation loss least (measured, not estimated); ``top``: drop the top layers
    # (Sajjad et al. 2023, "On the effect of dropping layers of pre-trained transformer models").
    layers_keep: int = 4
    layer_choice: Literal["importance", "top"] = "importance"
    # Share of each layer's FFN intermediate neurons kept, ranked by first-order Taylor
    # importance |activation x gradient| summed over training sentences (Molchanov et al. 2017).
    # The same count in every layer, so the config's single intermediate_size describes it.
    ffn_keep: float = 0.5
    importance_sentences: int = 1024  # training sentences scored (all if fewer)
    # Recovery: fine-tune the pruned student on train with loss
    #   alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(labels)
    # against the unpruned model's logits (Hinton et al. 2015); early stopping on val macro-F1.
    alpha: float = 0.5
    temperature: float = 2.0
    epochs: int = 6
    lr: float = 1.0e-4
    batch_size: int = 32
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    early_stopping_patience: int = 2
    # Recover this many students from the one pruned model (recovery seeds seed, seed + 1, …)
    # and save their weight average, as train's soup_size does (finslm/soup.py). The cut is
    # chosen once, so the students share the architecture and the starting weights. soup_size
    # times the recovery time. 1 = one student.
    soup_size: int = 1
    seed: int = 42
    threads: int = 0

    def __post_init__(self):
        _need(self.layers_keep >= 1, "prune.layers_keep", self.layers_keep, ">= 1")
        _need(0 < self.ffn_keep <= 1, "prune.ffn_keep", self.ffn_keep, "in (0, 1]")
        _need(0 <= self.alpha <= 1, "prune.alpha", self.alpha, "in [0, 1]")
        _need(self.temperature > 0, "prune.temperature", self.temperature, "> 0")
        for key, low in (
            ("importance_sentences", 1),
            ("epochs", 1),
            ("batch_size", 1),
            ("early_stopping_patience", 1),
            ("soup_size", 1),
            ("threads", 0),
        ):
            _need(getattr(self, key) >= low, f"prune.{key}", getattr(self, key), f">= {low}")
        _need(self.lr > 0, "prune.lr", self.lr, "> 0")
        _need(0 <= self.warmup_ratio < 1, "prune.warmup_ratio", self.warmup_ratio, "in [0, 1)")

    @property
    def output(self) -> str:
        return f"{self.model}-pruned"


def load_prune_config(path: str | Path = "params.yaml") -> PruneConfig:
    """``prune.*``, checking ``prune.model`` is a transformer under ``models``."""
    raw = _raw_params(path)
    cfg = build(PruneConfig, raw.get("prune"), "prune")
    models = raw.get("models") or {}
    if (models.get(cfg.model) or {}).get("kind") != "transformer":
        transformers = [n for n, m in models.items() if (m or {}).get("kind") == "transformer"]
        raise ConfigError(
            f"prune.model: {cfg.model!r} is not a transformer under models "
            f"(transformers here: {', '.join(transformers) or 'none'})"
        )
    return cfg
