"""``tune``: the Optuna search spaces and budget (``finslm tune``; finslm/tune.py)."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from finslm.config.base import SEED_RULE, ConfigError, Need, Section, build, is_seed
from finslm.config.reader import names_the_line, read_params
from finslm.config.training import MODEL_KINDS, TransformerConfig, model_config

TUNE_SPEC_KEYS = ("low", "high", "log", "step", "choices")


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


@dataclasses.dataclass(frozen=True)
class TuneConfig(Section):
    """Hyper-parameter search with Optuna (``tune.*``; ``finslm tune <model>``, finslm/tune.py).

    ``space.<model>`` maps keys of ``models.<model>`` to a range, ``{low, high}`` (``log: true``
    for a log scale, ``step`` for a grid) or ``{choices: [...]}``; ``fixed.<model>`` holds keys
    at a value for the whole search (e.g. ``soup_size: 1``: one model per trial, not three).
    Trials train on the train split and score validation macro-F1 (``cv`` > 1: the mean over
    K stratified folds of train + validation); the test split is never read.
    """

    # Finished trials (complete or pruned) the study should hold: an interrupted study, or a
    # second worker on the same storage, runs only the rest.
    trials: int = 20
    # Seconds one worker searches before it stops (after the running trial); 0 = no limit.
    timeout: float = 0.0
    # Stop a trial whose per-epoch validation macro-F1 is below the median of earlier trials at
    # the same epoch (``median``), or by successive halving over epochs (``hyperband``).
    pruner: Literal["median", "hyperband", "none"] = "median"
    # Random trials before TPE models the space; also the trials finished before ``median``
    # prunes anything.
    startup_trials: int = 5
    # ``median``: no trial is pruned before this epoch (or fold, with ``cv``).
    warmup_steps: int = 1
    # > 1: the objective is the mean validation macro-F1 over this many folds (finslm cv's).
    cv: int = 0
    # TPE sampler seed; worker ``w`` (``finslm tune --worker w``) samples with seed + 1000 w.
    seed: int = 42
    # Optuna storage: "" = sqlite:///<out>/<study>.db; a SQLAlchemy URL (sqlite:///path.db,
    # postgresql://user@host/db, mysql+pymysql://…) or journal:<file> (a journal file on a
    # shared filesystem). Workers given the same storage and study share one search.
    storage: str = ""
    # RDB storages: each running trial beats every ``heartbeat`` s; a trial silent for 2x that
    # (its worker was killed) is marked failed and its parameters are tried again. 0 = off.
    heartbeat: int = 60
    space: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    SECTION: ClassVar[str] = "tune"

    def check(self, need: Need) -> None:
        need(self.trials >= 1, "trials", ">= 1")
        need(is_seed(self.seed), "seed", SEED_RULE)
        need(_number(self.timeout) and self.timeout >= 0, "timeout", ">= 0 (0 = no limit)")
        need(self.startup_trials >= 0, "startup_trials", ">= 0")
        need(self.warmup_steps >= 0, "warmup_steps", ">= 0")
        need(self.cv == 0 or self.cv >= 2, "cv", "0 (off) or >= 2 folds")
        need(self.heartbeat >= 0, "heartbeat", ">= 0 (0 = off)")
        for key in ("space", "fixed"):
            value = getattr(self, key)
            need(isinstance(value, Mapping), key, "a mapping of model name -> settings")
            for model, entries in value.items():
                ok = isinstance(entries, Mapping)
                need(ok, f"{key}.{model}", "a mapping of models.<model> keys", value=entries)
        for model, entries in self.space.items():
            need(bool(entries), f"space.{model}", "a non-empty mapping of ranges", value=entries)
            for name, spec in entries.items():
                _check_range(need, f"space.{model}.{name}", spec)


def _check_range(need: Need, key: str, spec: Any) -> None:
    """One search range: ``{low, high[, log][, step]}`` or ``{choices: [...]}``."""
    example = "{low: 1.0e-5, high: 1.0e-3, log: true} or {choices: [cls, mean]}"
    need(isinstance(spec, Mapping) and bool(spec), key, example, value=spec)
    unknown = sorted(set(spec) - set(TUNE_SPEC_KEYS))
    need(not unknown, key, f"made of {', '.join(TUNE_SPEC_KEYS)} (unknown: {unknown})", spec)
    if "choices" in spec:
        choices = spec["choices"]
        need(set(spec) == {"choices"}, key, "either choices or low/high, not both", spec)
        ok = isinstance(choices, list) and len(choices) >= 1
        need(ok, key, "a non-empty list of choices", value=choices)
        simple = all(c is None or isinstance(c, bool | int | float | str) for c in choices)
        need(simple, key, "choices that are numbers, strings or booleans", value=choices)
        need(len(set(map(repr, choices))) == len(choices), key, "choices without repeats", choices)
        return
    low, high = spec.get("low"), spec.get("high")
    need(_number(low) and _number(high), key, f"numbers low and high ({example})", spec)
    need(low < high, key, "low < high", value=spec)
    log = spec.get("log", False)
    need(isinstance(log, bool), key, "log: true or false", value=spec)
    need(not log or low > 0, key, "low > 0 on a log scale", value=spec)
    step = spec.get("step")
    need(step is None or (_number(step) and step > 0), key, "step > 0", value=spec)
    need(step is None or not log, key, "either log or step, not both", value=spec)


@names_the_line
def load_tune_config(path: str | Path = "params.yaml", *, profile: str = "auto") -> TuneConfig:
    """``tune.*``, each ``space``/``fixed`` entry checked against its model under ``models``:
    the model exists, the key is one of its settings, a range's ends (and every choice) are
    values that setting accepts."""
    raw = read_params(path, profile)
    cfg = build(TuneConfig, raw.get("tune"), "tune")
    models = raw.get("models") or {}
    for model, entries in cfg.fixed.items():
        both = sorted(set(entries) & set(cfg.space.get(model) or {}))
        if both:
            raise ConfigError(
                f"tune.fixed.{model}.{both[0]}: also searched in tune.space.{model}; a setting is "
                "either searched or held fixed: remove it from one of the two"
            )
    # fixed first: the space's values are tried with the fixed ones laid over the model, so a
    # mistake there must be reported as the fixed key's, not as the first range's.
    for key in ("fixed", "space"):
        for model, entries in getattr(cfg, key).items():
            where = f"tune.{key}.{model}"
            if model not in models:
                raise ConfigError(
                    f"{where}: no model {model!r} under models; have {', '.join(models)}"
                )
            base = models[model] or {}
            model_config(model, base)  # a mistake in models.<m> itself is reported as such
            cls = MODEL_KINDS.get(base.get("kind"), TransformerConfig)
            names = {f.name for f in dataclasses.fields(cls)} - {"kind"}
            for name, spec in entries.items():
                if name not in names:
                    raise ConfigError(
                        f"{where}.{name}: not a setting of models.{model} (kind "
                        f"{base.get('kind')}); known: {', '.join(sorted(names))}"
                    )
                if key == "fixed":
                    _try(model, {**base, **cfg.fixed.get(model, {})}, f"{where}.{name}")
                    continue
                values = spec["choices"] if "choices" in spec else [spec["low"], spec["high"]]
                hint = typing.get_type_hints(cls)[name]
                if "choices" not in spec and hint not in (int, float):
                    raise ConfigError(
                        f"{where}.{name}: a {getattr(hint, '__name__', hint)} setting; give "
                        "{choices: [...]} instead of low/high"
                    )
                if hint is int and not all(isinstance(v, int) for v in values):
                    raise ConfigError(
                        f"{where}.{name}: an integer setting; low/high must be integers"
                    )
                for v in values:
                    _try(model, {**base, **cfg.fixed.get(model, {}), name: v}, f"{where}.{name}")
    return cfg


def _try(model: str, raw: dict[str, Any], where: str) -> None:
    try:
        model_config(model, raw)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
