"""Typed, validated configuration read from ``params.yaml``.

Every knob has a documented default in the section's module; a wrong key or value fails early
with a message that names the file, line and key, what was given and what is allowed. Stages
read only their own section, so ``dvc exp run -S models.minilm.lr=3e-5`` reruns only what
depends on it.

    >>> cfg = load_params("params.yaml")
    >>> cfg.models["minilm"].lr

One module per part of the file (a newcomer looking for a key opens the section's module):

- :mod:`~finslm.config.base`: ``ConfigError``, the YAML loader, the ``Section`` base and
  ``build`` (types and ranges checked one way for every section);
- :mod:`~finslm.config.reader`: the one reader (``read_params``), the quick profile, the
  file-and-line prefix on errors;
- :mod:`~finslm.config.training`: ``data``, ``models.<name>`` (transformer, TF-IDF, LoRA,
  dendrites) and ``train``;
- :mod:`~finslm.config.export` (``export``, ``benchmark``), :mod:`~finslm.config.explain`,
  :mod:`~finslm.config.finetune`, :mod:`~finslm.config.prune`,
  :mod:`~finslm.config.distill`, :mod:`~finslm.config.tune`, :mod:`~finslm.config.ner`:
  one stage family's section each;
- :mod:`~finslm.config.params`: ``Params`` (the whole file), the registry of sections and
  ``load_params``, which checks both recipes.

Import from ``finslm.config``; the names below are its interface.
"""

from finslm.config.base import (
    SEED_RULE,
    ConfigError,
    Need,
    Section,
    build,
    checker,
    is_seed,
    to_dict,
    yaml_load,
)
from finslm.config.distill import (
    DistillSection,
    StudentConfig,
    TeacherConfig,
    load_distill_config,
)
from finslm.config.explain import EXPLAIN_METHODS, ExplainConfig, load_explain_config
from finslm.config.export import (
    BACKEND_NAMES,
    BenchmarkConfig,
    ExportConfig,
    load_benchmark_config,
    load_export_config,
)
from finslm.config.finetune import FOCUS_FLAGS, FinetuneConfig, load_finetune_config
from finslm.config.ner import NerConfig, NerModelConfig, load_ner_config
from finslm.config.params import KNOWN_SECTIONS, SECTIONS, Params, load_params
from finslm.config.prune import DistillConfig, PruneConfig, load_prune_config
from finslm.config.reader import (
    DERIVED_SUFFIXES,
    QUICK,
    SAMPLE_SOURCE,
    _line_of,
    apply_profile,
    derived_models,
    naming_entry,
    profile_in_force,
    profile_note,
    read_params,
)
from finslm.config.training import (
    MODEL_KINDS,
    DataConfig,
    DendritesConfig,
    LoraConfig,
    ModelConfig,
    OptimConfig,
    TfidfConfig,
    TrainConfig,
    TransformerConfig,
    model_config,
)
from finslm.config.tune import TUNE_SPEC_KEYS, TuneConfig, load_tune_config

__all__ = [
    "SEED_RULE",
    "BACKEND_NAMES",
    "DERIVED_SUFFIXES",
    "EXPLAIN_METHODS",
    "FOCUS_FLAGS",
    "KNOWN_SECTIONS",
    "MODEL_KINDS",
    "QUICK",
    "SAMPLE_SOURCE",
    "SECTIONS",
    "TUNE_SPEC_KEYS",
    "BenchmarkConfig",
    "ConfigError",
    "DataConfig",
    "DendritesConfig",
    "DistillConfig",
    "DistillSection",
    "ExplainConfig",
    "ExportConfig",
    "FinetuneConfig",
    "LoraConfig",
    "ModelConfig",
    "Need",
    "NerConfig",
    "NerModelConfig",
    "OptimConfig",
    "Params",
    "PruneConfig",
    "Section",
    "StudentConfig",
    "TeacherConfig",
    "TfidfConfig",
    "TrainConfig",
    "TransformerConfig",
    "TuneConfig",
    "_line_of",
    "apply_profile",
    "build",
    "checker",
    "derived_models",
    "is_seed",
    "load_benchmark_config",
    "load_distill_config",
    "load_explain_config",
    "load_export_config",
    "load_finetune_config",
    "load_ner_config",
    "load_params",
    "load_prune_config",
    "load_tune_config",
    "model_config",
    "naming_entry",
    "profile_in_force",
    "profile_note",
    "read_params",
    "to_dict",
    "yaml_load",
]
