"""The whole file: :class:`Params` (every section), the registry of sections, and
:func:`load_params`, which checks both recipes (full and quick)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from finslm.config.base import ConfigError, Section, build
from finslm.config.distill import DistillSection, load_distill_config
from finslm.config.explain import ExplainConfig, load_explain_config
from finslm.config.export import BenchmarkConfig, ExportConfig, load_export_config
from finslm.config.finetune import FinetuneConfig, load_finetune_config
from finslm.config.ner import NerConfig
from finslm.config.prune import PruneConfig, load_prune_config
from finslm.config.reader import QUICK, names_the_line, profile_in_force, read_params
from finslm.config.training import DataConfig, ModelConfig, TrainConfig, model_config
from finslm.config.tune import TuneConfig, load_tune_config


@dataclasses.dataclass(frozen=True)
class Params:
    """Every section of ``params.yaml``, typed and validated.

    Stages that own one section may load just that one (``load_export_config`` …): the same
    reader and the same checks, without failing on another stage's section.
    """

    data: DataConfig
    models: dict[str, ModelConfig]
    train: TrainConfig
    export: ExportConfig
    benchmark: BenchmarkConfig
    explain: ExplainConfig
    finetune: FinetuneConfig
    prune: PruneConfig
    tune: TuneConfig
    ner: NerConfig
    distill: DistillSection


# Sections of params.yaml besides ``models`` and the class that reads each.
SECTIONS: dict[str, type[Section]] = {
    "data": DataConfig,
    "train": TrainConfig,
    "export": ExportConfig,
    "benchmark": BenchmarkConfig,
    "explain": ExplainConfig,
    "finetune": FinetuneConfig,
    "prune": PruneConfig,
    "tune": TuneConfig,
    "ner": NerConfig,
    "distill": DistillSection,
}
# Every top-level key params.yaml may have: a section not listed (``datta:``) is an error, not
# silently ignored. A new stage with its own section registers it in SECTIONS.
KNOWN_SECTIONS = ("models", *SECTIONS, QUICK)


@names_the_line
def load_params(path: str | Path = "params.yaml", *, profile: str = "auto") -> Params:
    """Read and validate the whole params file: every section, and the model names the
    export, explain, finetune and prune sections refer to (when the file has that section).

    Returns the recipe in force (``profile``: ``auto``); the other one is checked too, so a
    bad value in the full recipe fails on the sample, and a bad ``quick`` value on real data.
    """
    params = _load_view(path, profile)
    if profile == "auto":
        raw = read_params(path, "full")
        other = "full" if profile_in_force(raw) == QUICK else QUICK
        if other == "full" or raw.get(QUICK):
            load_params(path, profile=other)
    return params


def _load_view(path: str | Path, profile: str) -> Params:
    raw = read_params(path, profile)
    models = raw.get("models") or {}
    if not isinstance(models, dict) or not models:
        raise ConfigError(f"{path}: 'models' must map at least one model name to its settings")
    built = {n: model_config(n, c) for n, c in models.items()}  # first: the sections refer to them
    sections = {name: build(cls, raw.get(name), name) for name, cls in SECTIONS.items()}
    # The sections that derive models (prune, finetune, distill) before export, which lists
    # them: a misspelled prune.model is reported there, not as an unknown export.models entry.
    checks = {
        "finetune": load_finetune_config,
        "prune": load_prune_config,
        "distill": load_distill_config,
        "export": load_export_config,
        "explain": load_explain_config,
        "tune": load_tune_config,
    }
    for name, check in checks.items():
        if name in raw:
            check(path, profile=profile)
    return Params(models=built, **sections)
