"""``prune``: the prune stage (heads and FFN cut, layers dropped, recovery by
distillation); :class:`DistillConfig` is the distillation block it shares with students."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar, Literal

from finslm.config.base import SEED_RULE, Need, build, is_seed
from finslm.config.reader import names_the_line, read_params, require_transformer
from finslm.config.training import OptimConfig


@dataclasses.dataclass(frozen=True)
class DistillConfig(OptimConfig):
    """Knowledge distillation from a teacher's logits (finslm/train/distill.py): the shared
    optimiser block plus the loss mix
    ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(labels)`` (Hinton et al. 2015)."""

    alpha: float = 0.5
    temperature: float = 2.0
    early_stopping_patience: int = 2
    seed: int = 42
    threads: int = 0

    def check(self, need: Need) -> None:
        super().check(need)
        need(0 <= self.alpha <= 1, "alpha", "in [0, 1]")
        need(self.temperature > 0, "temperature", "> 0")
        need(self.threads >= 0, "threads", ">= 0")
        need(is_seed(self.seed), "seed", SEED_RULE)


@dataclasses.dataclass(frozen=True)
class PruneConfig(DistillConfig):
    """What to remove from which model, and how to recover (``prune.*``).

    Recovery distils the pruned student from ``teacher`` (by default the unpruned model): the
    :class:`DistillConfig` fields (epochs, lr, batch_size, warmup_ratio, weight_decay,
    early_stopping_patience, alpha, temperature, seed, threads) are its settings.
    """

    # A transformer under ``models``; the output is models/<model>-pruned.
    model: str = "minilm"
    # The model whose logits on the train split the recovery distils from: a transformer under
    # ``models`` (models/<teacher> is a dependency of the stage). Empty or equal to ``model``:
    # the unpruned source. Another one (e.g. ``mpnet``, the teacher of issue #23) scores the
    # train split as teacher_logits@<teacher> does; the cut is still chosen on ``model``.
    teacher: str = ""
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
    # Recover this many students from the one pruned model (recovery seeds seed, seed + 1, …)
    # and save their weight average, as train's soup_size does (finslm/train/soup.py). The cut
    # is chosen once, so the students share the architecture and the starting weights.
    # soup_size times the recovery time. 1 = one student.
    soup_size: int = 1

    SECTION: ClassVar[str] = "prune"

    def check(self, need: Need) -> None:
        super().check(need)
        need(self.layers_keep >= 1, "layers_keep", ">= 1")
        need(0 < self.ffn_keep <= 1, "ffn_keep", "in (0, 1]")
        need(self.importance_sentences >= 1, "importance_sentences", ">= 1")
        need(self.soup_size >= 1, "soup_size", ">= 1")

    @property
    def output(self) -> str:
        return f"{self.model}-pruned"

    @property
    def recovery_teacher(self) -> str:
        """The model the recovery distils from: ``teacher``, or ``model`` when it is empty."""
        return self.teacher or self.model

    def distill_settings(self) -> DistillConfig:
        """The recovery's settings, as :func:`finslm.train.distill.distill` takes them."""
        fields = {f.name for f in dataclasses.fields(DistillConfig)}
        return DistillConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in fields})


@names_the_line
def load_prune_config(path: str | Path = "params.yaml", *, profile: str = "auto") -> PruneConfig:
    """``prune.*``, checking ``prune.model`` is a transformer under ``models``."""
    raw = read_params(path, profile)
    cfg = build(PruneConfig, raw.get("prune"), "prune")
    require_transformer(raw, cfg.model, "prune.model", "pruning cuts a transformer's layers")
    if cfg.teacher:
        require_transformer(raw, cfg.teacher, "prune.teacher", "the recovery needs its logits")
    return cfg
