"""``finetune``: what the mine and finetune stages read (the analysis-driven targeted
fine-tune)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar, Literal

from finslm.config.base import SEED_RULE, Need, Section, build, is_seed, need_names
from finslm.config.reader import names_the_line, read_params, require_transformer

FOCUS_FLAGS = ("misclassified", "low_confidence", "ambiguous", "hard_to_learn", "target_confusion")


@dataclasses.dataclass(frozen=True)
class FinetuneConfig(Section):
    """Targeted fine-tune of one trained transformer, and its ablation (``finetune.*``).

    Stage ``mine`` reads the mining knobs (train split only); stage ``finetune`` the rest. See
    ``finslm.finetune`` and the README. Defaults: about 6-7 min of mining plus 6 min per seed for
    MiniLM on the 3,479-sentence PhraseBank train split on a 2-core CPU.
    """

    # A transformer under ``models``: continued from models/<model>, written to
    # models/<model>-targeted; analysis/<model>.json (explain stage) says what to target.
    model: str = "minilm"
    # Continued-training seeds: targeted and control are run once per seed; the base model and
    # the mining are shared. models/<model>-targeted is the first seed's targeted model.
    seeds: list[int] = dataclasses.field(default_factory=lambda: [42, 43, 44])
    # torch CPU threads; 0 = torch's default (all cores).
    threads: int = 0

    # Mining: ``folds`` fold models, each fine-tuned for ``mine_epochs`` from the pretrained
    # models.<model>.checkpoint (with that model's lr, batch size, warm-up) on the other folds.
    folds: int = 4
    mine_epochs: int = 2
    mining_seed: int = 42
    # Flags: out-of-fold p(gold) below ``low_confidence``; cartography variability in the top
    # ``ambiguous_share``; cartography confidence in the bottom ``hard_to_learn_share``.
    low_confidence: float = 0.6
    ambiguous_share: float = 0.15
    hard_to_learn_share: float = 0.05

    # Selection: a training sentence is a candidate when any of ``focus_flags`` is set (also
    # ``hard_to_learn``, ``target_confusion``: an out-of-fold confusion the analysis lists);
    # at most ``max_hard_share`` of the train split is kept as hard, best score first.
    focus_flags: list[str] = dataclasses.field(
        default_factory=lambda: ["misclassified", "low_confidence", "ambiguous"]
    )
    max_hard_share: float = 0.3
    # Focus pool: every hard sample plus ``easy_ratio`` times as many others (against forgetting).
    easy_ratio: float = 1.0
    # Weighted phase: loss weight = analysis target-class weight (if ``class_focus``) times
    # ``hard_weight`` for hard samples, capped at ``weight_cap``, then scaled to mean 1.
    class_focus: bool = True
    hard_weight: float = 2.0
    weight_cap: float = 3.0

    # Continued training (both arms): AdamW, this batch size and peak lr; each phase warms up
    # over its first ``warmup_ratio`` of steps, then decays linearly to 0.
    batch_size: int = 32
    lr: float = 2.0e-5
    warmup_ratio: float = 0.1
    # Phase lengths in passes: over the focus pool, the train split, the train split again at
    # ``lr * consolidation_lr_scale``. The control sees as many examples per phase (uniformly).
    focus_epochs: float = 2.0
    weighted_epochs: float = 1.0
    consolidation_epochs: float = 0.5
    consolidation_lr_scale: float = 0.25
    # Validation macro-F1 this many times per train-split pass and at each phase end; the best
    # evaluation is kept; stop after ``patience`` evaluations without improvement (0 = never).
    evals_per_epoch: int = 2
    patience: int = 4

    # Augmented copies of hard samples in the focus pool (off by default): ``synonyms`` (a
    # built-in financial synonym list) or ``token_dropout``; ``augment_copies`` per hard sample,
    # ``augment_rate`` the per-word replacement / drop probability.
    augment: bool = False
    augment_method: Literal["synonyms", "token_dropout"] = "synonyms"
    augment_copies: int = 1
    augment_rate: float = 0.15

    SECTION: ClassVar[str] = "finetune"

    def check(self, need: Need) -> None:
        seeds = self.seeds
        ok = (
            isinstance(seeds, list)
            and bool(seeds)
            and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
        )
        need(ok, "seeds", "a non-empty list of integers")
        need(len(set(seeds)) == len(seeds), "seeds", "a list without repeats")
        for s in seeds:
            need(is_seed(s), "seeds", f"each {SEED_RULE}", value=s)
        need(is_seed(self.mining_seed), "mining_seed", SEED_RULE)
        flags = self.focus_flags
        need_names(need, "focus_flags", flags)
        need(bool(flags), "focus_flags", "a non-empty list")
        for f in flags:
            need(f in FOCUS_FLAGS, "focus_flags", f"one of {', '.join(FOCUS_FLAGS)}", value=f)
        for key, low in (
            ("threads", 0),
            ("folds", 2),
            ("mine_epochs", 1),
            ("batch_size", 1),
            ("evals_per_epoch", 1),
            ("patience", 0),
            ("augment_copies", 1),
        ):
            need(getattr(self, key) >= low, key, f">= {low}")
        for key in ("low_confidence", "ambiguous_share", "hard_to_learn_share", "max_hard_share"):
            need(0 <= getattr(self, key) <= 1, key, "between 0 and 1")
        need(0 < self.augment_rate <= 1, "augment_rate", "in (0, 1]")
        need(self.lr > 0, "lr", "> 0")
        need(0 <= self.warmup_ratio < 1, "warmup_ratio", "in [0, 1)")
        for key in ("easy_ratio", "focus_epochs", "weighted_epochs", "consolidation_epochs"):
            need(getattr(self, key) >= 0, key, ">= 0")
        need(self.hard_weight >= 1, "hard_weight", ">= 1")
        need(self.weight_cap >= 1, "weight_cap", ">= 1")
        need(0 < self.consolidation_lr_scale <= 1, "consolidation_lr_scale", "in (0, 1]")
        total = self.focus_epochs + self.weighted_epochs + self.consolidation_epochs
        need(total > 0, "focus_epochs", "such that the phases train (all three lengths are 0)")


@names_the_line
def load_finetune_config(
    path: str | Path = "params.yaml", *, profile: str = "auto"
) -> FinetuneConfig:
    """``finetune.*``, checking ``finetune.model`` is a transformer under ``models``."""
    raw = read_params(path, profile)
    cfg = build(FinetuneConfig, raw.get("finetune"), "finetune")
    need = "the targeted fine-tune continues training a transformer"
    require_transformer(raw, cfg.model, "finetune.model", need)
    return cfg
