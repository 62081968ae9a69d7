"""Recipe ablation: one transformer recipe trained over several seeds, judged on validation.

    finslm ablate mean --seeds 42 43 44                       # the recipe in params.yaml
    finslm ablate rdrop --set rdrop_alpha=1.0 --baseline mean  # one lever on top of it
    finslm ablate-table mean rdrop                            # the README's markdown table

Each seed fine-tunes ``models.<model>`` from params.yaml, with the ``--set key=value``
overrides (validated exactly like params.yaml), on ``<prepared>/train.parquet``; the epoch is
selected on validation macro-F1 (as ``train@<model>``), then the restored model is evaluated on
validation and test. ``<out>/<name>.json`` holds every seed's metrics and their mean ± sample
std; ``<out>/<name>/seed<k>.npz`` the class probabilities per split (for paired tests and
ensembles without retraining). With ``--baseline NAME`` the summary adds the paired differences
against ``<out>/NAME.json``, seed by seed (a soup against the mean of its ingredient seeds).

A lever is adopted only on *validation*; test is reported so the README table can show what
the choice did, never to choose. Run it on the split ``prepare`` wrote.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from finslm.config import ConfigError, TransformerConfig, model_config, read_params, yaml_load

log = logging.getLogger(__name__)

HEADLINE = ("accuracy", "macro_f1")


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["rdrop_alpha=1.0", "pooling=cls"]`` -> ``{"rdrop_alpha": 1.0, "pooling": "cls"}``.

    Values are read as YAML, as in params.yaml (``1e-4`` a number, ``true`` a boolean).
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected key=value, e.g. --set rdrop_alpha=1.0")
        out[key.strip()] = yaml_load(value) if value.strip() else ""
    return out


def recipe(raw_models: dict[str, Any], model: str, overrides: dict[str, Any]) -> TransformerConfig:
    """The validated config of ``models.<model>`` with ``overrides`` applied."""
    if model not in raw_models:
        raise ConfigError(
            f"models.{model}: no such model in params.yaml; have {', '.join(raw_models)}"
        )
    cfg = model_config(model, {**raw_models[model], **overrides})
    if not isinstance(cfg, TransformerConfig):
        raise ConfigError(f"models.{model}: ablation needs a transformer, not kind {cfg.kind!r}")
    return cfg


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample standard deviation (0 for one value), rounded for the JSON."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(statistics.fmean(values), 4), "std": round(std, 4), "n": len(values)}


def summarise(per_seed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``{split: {metric: {mean, std, n}}}`` over the seeds' headline metrics."""
    return {
        split: {
            metric: mean_std([run[split][metric] for run in per_seed.values()])
            for metric in HEADLINE
        }
        for split in ("val", "test")
    }


def _ingredient_seeds(seed: str, soup_size: int) -> list[str]:
    """The seeds a soup at ``seed`` averages: seed … seed+k−1 (just ``seed`` for one model)."""
    return [str(int(seed) + i) for i in range(soup_size)]


def comparable_seeds(
    per_seed: dict[str, Any], baseline: dict[str, Any], soup_size: int = 1
) -> list[str]:
    """This ablation's seeds whose ingredient seeds the baseline has all measured."""
    return [s for s in per_seed if all(i in baseline for i in _ingredient_seeds(s, soup_size))]


def paired(
    per_seed: dict[str, Any], baseline: dict[str, Any], soup_size: int = 1
) -> dict[str, Any]:
    """Seed-by-seed differences against ``baseline``'s per-seed results (shared seeds only).

    A soup (``soup_size`` k > 1) at seed s averages the models of seeds s … s+k−1, so it is
    compared with the *mean* of the baseline's seeds s … s+k−1 — the single model one would
    expect from those seeds — rather than with seed s alone, an arbitrary one of its
    ingredients. Seeds whose k baseline seeds are not all measured are left out.
    """

    seeds = comparable_seeds(per_seed, baseline, soup_size)
    if not seeds:
        raise ConfigError(
            "baseline: no seed in common with this ablation; run it with the same seeds"
            + (
                f" (a soup of {soup_size} needs seeds s … s+{soup_size - 1})"
                if soup_size > 1
                else ""
            )
        )
    out: dict[str, Any] = {"seeds": [int(s) for s in seeds], "soup_size": soup_size}
    for split in ("val", "test"):
        out[split] = {}
        for metric in HEADLINE:
            diffs = [
                per_seed[s][split][metric]
                - statistics.fmean(
                    baseline[i][split][metric] for i in _ingredient_seeds(s, soup_size)
                )
                for s in seeds
            ]
            out[split][metric] = {
                **mean_std(diffs),
                "per_seed": [round(d, 4) for d in diffs],
                "higher_in": sum(d > 0 for d in diffs),
            }
    return out


def _evaluate(
    model_dir: Path, splits: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from finslm.evaluation import evaluate_predictor
    from finslm.predict import load_predictor

    predictor = load_predictor(model_dir, backend="torch-fp32")
    metrics, probs = {}, {}
    for split, df in splits.items():
        metrics[split], _, probs[split] = evaluate_predictor(
            predictor, df.text.tolist(), df.label.tolist()
        )
    return metrics, probs


def run_seed(
    cfg: TransformerConfig,
    prepared: Path,
    seed: int,
    threads: int,
    model_dir: Path | None = None,
    ingredients: Sequence[tuple[Path, dict[str, Any]]] | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Train one seed (selection on val), then evaluate val and test: (metrics, probabilities).

    With ``cfg.soup_size`` > 1 the seed's model is a soup of seeds ``seed`` … (as
    ``train@<model>`` makes it); ``ingredients`` — (model folder, its ablation row) pairs
    trained earlier with this very recipe — are averaged instead of being trained again.
    """
    from finslm.data import read_split
    from finslm.train.recipe import fit_transformer
    from finslm.train.soup import make_soup, training_cost

    splits = {s: read_split(prepared / f"{s}.parquet") for s in ("train", "val", "test")}
    keys = ("epochs", "best_epoch", "seconds", "seconds_per_epoch", "params")
    with tempfile.TemporaryDirectory(prefix="finslm-ablation-") as tmp:
        out_dir = model_dir or Path(tmp) / "model"
        if ingredients:
            val = splits["val"]
            make_soup(
                [d for d, _ in ingredients],
                out_dir,
                val.text.tolist(),
                val.label.tolist(),
                cfg.soup_method,
            )
            summary = training_cost([row for _, row in ingredients])
        else:
            summary = fit_transformer(
                cfg, splits["train"], splits["val"], out_dir, seed=seed, threads=threads
            )
        metrics, probs = _evaluate(out_dir, {"val": splits["val"], "test": splits["test"]})
    row = {"val": metrics["val"], "test": metrics["test"], **{k: summary[k] for k in keys}}
    return row, probs


def _saved_recipe(previous: dict[str, Any]) -> dict[str, Any]:
    """A saved ablation's recipe, keys added since it ran read as their defaults (a new lever
    is off by default, so those runs had it off)."""
    return {**dataclasses.asdict(TransformerConfig()), **previous.get("recipe", {})}


def _ingredients(
    cfg: TransformerConfig, source: str, seed: int, out: Path, keep_models: Path | None
) -> list[tuple[Path, dict[str, Any]]]:
    """Seed ``seed``'s soup ingredients from ablation ``source``'s kept models, checked."""
    path = out / f"{source}.json"
    if keep_models is None or not path.exists():
        raise ConfigError(
            f"--ingredients-from {source}: needs {path} and --keep-models (the folder that "
            "ablation saved its models to)"
        )
    previous = json.loads(path.read_text(encoding="utf-8"))
    single = dataclasses.asdict(dataclasses.replace(cfg, soup_size=1, soup_method="uniform"))
    if _saved_recipe(previous) != single:
        raise ConfigError(
            f"--ingredients-from {source}: its recipe is not this one with soup_size 1, so "
            "its models are not this soup's ingredients"
        )
    found = []
    for k in range(cfg.soup_size):
        folder = keep_models / source / f"seed{seed + k}"
        row = previous["per_seed"].get(str(seed + k))
        if row is None or not (folder / "model.safetensors").is_file():
            raise ConfigError(
                f"--ingredients-from {source}: seed {seed + k} is missing ({folder}); run "
                f"finslm ablate {source} --seeds {seed + k} --keep-models {keep_models}"
            )
        found.append((folder, row))
    return found


def run_ablation(
    name: str,
    overrides: dict[str, Any],
    seeds: Sequence[int],
    *,
    model: str = "minilm",
    params_path: Path = Path("params.yaml"),
    prepared: Path = Path("data/prepared"),
    out: Path = Path("metrics/ablation"),
    threads: int = 1,
    baseline: str | None = None,
    keep_models: Path | None = None,
    ingredients_from: str | None = None,
) -> dict[str, Any]:
    """Train ``seeds`` with the recipe + ``overrides``; write and return ``<out>/<name>.json``.

    Seeds already in ``<out>/<name>.json`` with the same recipe are kept, not retrained, so an
    interrupted ablation resumes. A different recipe under the same name is an error. With a
    soup recipe (``soup_size`` > 1), ``ingredients_from`` names an ablation of the same recipe
    without the soup whose models (``keep_models``) are averaged instead of retrained.
    """
    raw = read_params(params_path)
    cfg = recipe(raw.get("models") or {}, model, overrides)
    for split in ("train", "val", "test"):
        if not (prepared / f"{split}.parquet").exists():
            raise ConfigError(
                f"{prepared / f'{split}.parquet'}: missing; run `dvc repro prepare` first"
            )
    if baseline and not (out / f"{baseline}.json").exists():
        raise ConfigError(
            f"--baseline {baseline}: {out / f'{baseline}.json'} not found; run that ablation first"
        )
    result_path = out / f"{name}.json"
    result: dict[str, Any] = {
        "name": name,
        "model": model,
        "overrides": overrides,
        "recipe": dataclasses.asdict(cfg),
        "threads": threads,
        "per_seed": {},
    }
    if result_path.exists():
        previous = json.loads(result_path.read_text(encoding="utf-8"))
        # A knob added since that file was written has a default that reproduces the old
        # behaviour (the rule for new levers), so a missing key reads as its default.
        if _saved_recipe(previous) != result["recipe"] or previous.get("threads") != threads:
            raise ConfigError(
                f"{result_path}: holds another recipe or thread count under the name {name!r}; "
                "choose another name or delete the file"
            )
        result["per_seed"] = previous.get("per_seed", {})
    probs_dir = out / name
    probs_dir.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        if str(seed) in result["per_seed"]:
            log.info("%s seed %d: already measured, kept", name, seed)
            continue
        model_dir = keep_models / name / f"seed{seed}" if keep_models else None
        parts = None
        if ingredients_from and cfg.soup_size > 1:
            parts = _ingredients(cfg, ingredients_from, seed, out, keep_models)
        row, probs = run_seed(cfg, prepared, seed, threads, model_dir, parts)
        result["per_seed"][str(seed)] = row
        np.savez_compressed(probs_dir / f"seed{seed}.npz", **probs)
        log.info(
            "%s seed %d: val acc %.4f F1 %.4f | test acc %.4f F1 %.4f | %d epochs, %.0f s/epoch",
            name,
            seed,
            row["val"]["accuracy"],
            row["val"]["macro_f1"],
            row["test"]["accuracy"],
            row["test"]["macro_f1"],
            row["epochs"],
            row["seconds_per_epoch"],
        )
        _write(result, result_path, out, baseline)  # after every seed: a crash loses one seed
    return _write(result, result_path, out, baseline)


def _write(result: dict[str, Any], path: Path, out: Path, baseline: str | None) -> dict[str, Any]:
    result["summary"] = summarise(result["per_seed"])
    if baseline:
        base = json.loads((out / f"{baseline}.json").read_text(encoding="utf-8"))
        result["baseline"] = baseline
        k = int(result["recipe"].get("soup_size", 1))
        # Until a seed both have is measured there is nothing to pair (yet): no error mid-run.
        if comparable_seeds(result["per_seed"], base["per_seed"], k):
            result["vs_baseline"] = paired(result["per_seed"], base["per_seed"], k)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def _spread(stat: dict[str, float]) -> str:
    # One seed has no spread: "± 0.000" would read as a measured, perfectly stable result.
    return f" ± {stat['std']:.3f}" if stat.get("n", 2) > 1 else ""


def _pm(stat: dict[str, float]) -> str:
    return f"{stat['mean']:.3f}{_spread(stat)}"


def _signed(stat: dict[str, float]) -> str:
    return f"{stat['mean']:+.3f}{_spread(stat)}"


def _yaml(value: Any) -> str:
    # The table quotes params.yaml settings, so write them as YAML does (true, not True).
    return str(value).lower() if isinstance(value, bool) else str(value)


def table(out: Path = Path("metrics/ablation"), names: Sequence[str] | None = None) -> str:
    """The README's ablation table (markdown) from ``<out>/*.json``, in ``names`` order.

    One row per ablation: its overrides, seeds, validation and test accuracy / macro-F1 as
    mean ± std over seeds, the paired validation macro-F1 difference against its baseline
    (in how many seeds it was higher) and the median seconds per epoch.
    """
    paths = [out / f"{n}.json" for n in names] if names else sorted(out.glob("*.json"))
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ConfigError(f"no ablation result at {', '.join(missing)}")
    lines = [
        "| recipe | seeds | val acc | val macro-F1 | test acc | test macro-F1 "
        "| Δ val macro-F1, paired (higher in) | s/epoch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for path in paths:
        r = json.loads(path.read_text(encoding="utf-8"))
        levers = ", ".join(f"`{k}: {_yaml(v)}`" for k, v in r["overrides"].items())
        levers = levers or "params.yaml"
        summary, seeds = r["summary"], ", ".join(r["per_seed"])
        delta = "—"
        if "vs_baseline" in r:
            d = r["vs_baseline"]["val"]["macro_f1"]
            k = r["vs_baseline"].get("soup_size", 1)
            against = f"mean of its {k} {r['baseline']} seeds" if k > 1 else r["baseline"]
            delta = f"{_signed(d)} vs {against} ({d['higher_in']}/{d['n']})"
        per_epoch = statistics.median(run["seconds_per_epoch"] for run in r["per_seed"].values())
        lines.append(
            f"| {r['name']}: {levers} | {seeds} | {_pm(summary['val']['accuracy'])} "
            f"| {_pm(summary['val']['macro_f1'])} | {_pm(summary['test']['accuracy'])} "
            f"| {_pm(summary['test']['macro_f1'])} | {delta} | {per_epoch:.0f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m finslm.ablation NAME ... == finslm ablate NAME ...
    import sys

    from finslm.cli import app

    app(["ablate", *sys.argv[1:]])
