"""Recipe ablation: one transformer recipe trained over several seeds, judged on validation.

    finslm ablate mean --seeds 42 43 44                       # the recipe in params.yaml
    finslm ablate rdrop --set rdrop_alpha=1.0 --baseline mean  # one lever on top of it
    finslm ablate lora8 --set lora.r=8 --set lr=5e-4 --baseline mean  # a block's setting
    finslm ablate-table mean rdrop                            # the README's markdown table
    finslm ablate rdrop-cv5 --set rdrop_alpha=1.0 --cv 5 --baseline mean-cv5   # on 5 CV folds

Each seed fine-tunes ``models.<model>`` from params.yaml, with the ``--set key=value``
overrides (validated exactly like params.yaml), on ``<prepared>/train.parquet``; the epoch is
selected on validation macro-F1 (as ``train@<model>``), then the restored model is evaluated on
validation and test. ``<out>/<name>.json`` holds every seed's metrics and their mean ± sample
std; ``<out>/<name>/seed<k>.npz`` the class probabilities per split (for paired tests and
ensembles without retraining). With ``--baseline NAME`` the summary adds the paired differences
against ``<out>/NAME.json``, seed by seed (a soup against the mean of its ingredient seeds).

A lever is adopted only on *validation*; test is reported so the README table can show what
the choice did, never to choose. Run it on the split ``prepare`` wrote.

With ``cv=K`` (``--cv K``; ``finslm cv``) the units are K stratified folds of train +
validation instead of seeds (finslm/cv.py): ``per_seed`` holds one row per fold ("0" … "K−1",
each with ``val`` = its held-out fold, no ``test``: the test split is not read), the file
gains ``cv: {folds, seed, train_seed}`` and each summary metric a 95% t-interval (``ci95``);
``--baseline`` then pairs fold by fold and needs a baseline cut into the same folds.
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

from finslm.config import (
    ConfigError,
    TfidfConfig,
    TransformerConfig,
    model_config,
    profile_note,
    read_params,
    yaml_load,
)

log = logging.getLogger(__name__)

HEADLINE = ("accuracy", "macro_f1")


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["rdrop_alpha=1.0", "pooling=cls"]`` -> ``{"rdrop_alpha": 1.0, "pooling": "cls"}``.

    Values are read as YAML, as in params.yaml (``1e-4`` a number, ``true`` a boolean). A dotted
    key sets one setting of a block (``lora.r=8``; see :func:`with_overrides`).
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected key=value, e.g. --set rdrop_alpha=1.0")
        out[key.strip()] = yaml_load(value) if value.strip() else ""
    return out


def recipe(
    raw_models: dict[str, Any], model: str, overrides: dict[str, Any], any_kind: bool = False
) -> TransformerConfig:
    """The validated config of ``models.<model>`` with ``overrides`` applied (a transformer's
    unless ``any_kind``: cross-validation also takes TF-IDF, whose seeds change nothing)."""
    if model not in raw_models:
        raise ConfigError(
            f"models.{model}: no such model in params.yaml; have {', '.join(raw_models)}"
        )
    cfg = model_config(model, with_overrides(raw_models[model] or {}, overrides))
    if not any_kind and not isinstance(cfg, TransformerConfig):
        raise ConfigError(f"models.{model}: ablation needs a transformer, not kind {cfg.kind!r}")
    return cfg


def with_overrides(entry: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A model entry with ``overrides`` applied; ``lora.r`` sets ``r`` inside the ``lora`` block,
    keeping that block's other settings (as ``dvc exp run -S models.minilm.lora.r=8`` does)."""
    out = {**entry}
    for key, value in overrides.items():
        *path, last = key.split(".")
        node = out
        for part in path:
            child = node.get(part)
            node[part] = {**child} if isinstance(child, dict) else {}
            node = node[part]
        node[last] = value
    return out


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample standard deviation (0 for one value), rounded for the JSON."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(statistics.fmean(values), 4), "std": round(std, 4), "n": len(values)}


def _splits(*runs: dict[str, Any]) -> list[str]:
    """The evaluated splits every run has (CV folds have ``val`` only: test is never read)."""
    return [s for s in ("val", "test") if all(s in run for run in runs)]


def summarise(per_seed: dict[str, dict[str, Any]], interval: bool = False) -> dict[str, Any]:
    """``{split: {metric: {mean, std, n[, ci95]}}}`` over the seeds' (folds') headline metrics."""
    from finslm.cv import t_interval

    out: dict[str, Any] = {}
    for split in _splits(*per_seed.values()):
        out[split] = {}
        for metric in HEADLINE:
            values = [run[split][metric] for run in per_seed.values()]
            out[split][metric] = mean_std(values)
            if interval:
                out[split][metric]["ci95"] = t_interval(values)
    return out


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
    for split in _splits(*(per_seed[s] for s in seeds), *(baseline[s] for s in seeds)):
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


def evaluate_model(
    model_dir: Path, splits: dict[str, Any], backend: str = "auto"
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Metrics and class probabilities of a saved model (by default its kind's PyTorch /
    sklearn backend; ``backend`` names another, e.g. ``onnx-int8``)."""
    from finslm.evaluation import evaluate_predictor
    from finslm.predict import load_predictor

    predictor = load_predictor(model_dir, backend=backend)
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
        metrics, probs = evaluate_model(out_dir, {"val": splits["val"], "test": splits["test"]})
    row = {"val": metrics["val"], "test": metrics["test"], **{k: summary[k] for k in keys}}
    row.update({k: summary[k] for k in ("trainable_params", "peak_rss_mb") if k in summary})
    return row, probs


def _saved_recipe(previous: dict[str, Any]) -> dict[str, Any]:
    """A saved ablation's recipe, keys added since it ran read as their defaults (a new lever
    is off by default, so those runs had it off)."""
    saved = previous.get("recipe", {})
    cls = TfidfConfig if saved.get("kind") == "tfidf" else TransformerConfig  # CV takes TF-IDF
    return {**dataclasses.asdict(cls()), **saved}


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


# Over 80 lines on purpose: one resumable loop over seeds or CV folds, with the checks that refuse a changed recipe.
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
    cv: int = 0,
    cv_seed: int = 42,
) -> dict[str, Any]:
    """Train ``seeds`` with the recipe + ``overrides``; write and return ``<out>/<name>.json``.

    ``cv`` = K > 1: train the K folds of train + validation (shuffled with ``cv_seed``) instead,
    every fold with training seed ``seeds[0]``; the test split is then neither needed nor read.

    Seeds already in ``<out>/<name>.json`` with the same recipe are kept, not retrained, so an
    interrupted ablation resumes. A different recipe under the same name is an error. With a
    soup recipe (``soup_size`` > 1), ``ingredients_from`` names an ablation of the same recipe
    without the soup whose models (``keep_models``) are averaged instead of retrained.
    """
    if cv == 1 or cv < 0:
        raise ConfigError(f"--cv {cv}: need at least 2 folds (0, the default: seeds, no CV)")
    raw = read_params(params_path)
    if note := profile_note(raw):
        log.warning("%s: %s", params_path, note)
    cfg = recipe(raw.get("models") or {}, model, overrides, any_kind=bool(cv))
    if cv and (len(seeds) != 1 or keep_models or ingredients_from):
        raise ConfigError(
            f"--cv {cv}: the folds are the repetitions; give one training seed (--seeds 42), "
            "without --keep-models or --ingredients-from"
        )
    for split in ("train", "val") if cv else ("train", "val", "test"):
        if not (prepared / f"{split}.parquet").exists():
            raise ConfigError(
                f"{prepared / f'{split}.parquet'}: missing; run `dvc repro prepare` first"
            )
    if baseline and not (out / f"{baseline}.json").exists():
        raise ConfigError(
            f"--baseline {baseline}: {out / f'{baseline}.json'} not found; run that ablation first"
        )
    folding = {"folds": cv, "seed": cv_seed, "train_seed": seeds[0]} if cv else None
    if baseline:
        theirs = json.loads((out / f"{baseline}.json").read_text(encoding="utf-8")).get("cv")
        if theirs != folding:
            raise ConfigError(
                f"--baseline {baseline}: measured on {_units(theirs)}, this on {_units(folding)}; "
                "paired differences need the same seeds or the same folds"
            )
    result_path = out / f"{name}.json"
    result: dict[str, Any] = {
        "name": name,
        "model": model,
        "overrides": overrides,
        "recipe": dataclasses.asdict(cfg),
        "threads": threads,
        **({"cv": folding} if folding else {}),
        "per_seed": {},
    }
    if result_path.exists():
        previous = json.loads(result_path.read_text(encoding="utf-8"))
        # A knob added since that file was written has a default that reproduces the old
        # behaviour (the rule for new levers), so a missing key reads as its default.
        same = _saved_recipe(previous) == result["recipe"] and previous.get("cv") == folding
        if not same or previous.get("threads") != threads:
            raise ConfigError(
                f"{result_path}: holds another recipe, thread count or folding under the name "
                f"{name!r}; "
                "choose another name or delete the file"
            )
        result["per_seed"] = previous.get("per_seed", {})
    probs_dir = out / name
    probs_dir.mkdir(parents=True, exist_ok=True)
    if cv:
        return _run_folds(cfg, result, result_path, out, baseline, prepared, threads)
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


def _units(folding: dict[str, Any] | None) -> str:
    if not folding:
        return "seeds (no --cv)"
    return (
        f"{folding['folds']} folds (cv seed {folding['seed']}, train seed {folding['train_seed']})"
    )


def _run_folds(cfg, result, result_path, out, baseline, prepared, threads) -> dict[str, Any]:
    """The K folds of ``result["cv"]``, each trained and scored on its held-out fold; resumable."""
    from finslm.cv import folds, run_fold
    from finslm.data import read_split

    folding = result["cv"]
    parts = folds(
        read_split(prepared / "train.parquet"),
        read_split(prepared / "val.parquet"),
        folding["folds"],
        folding["seed"],
    )
    for k, (train_df, held_df) in enumerate(parts):
        if str(k) in result["per_seed"]:
            log.info("%s fold %d: already measured, kept", result["name"], k)
            continue
        row, probs = run_fold(cfg, train_df, held_df, folding["train_seed"], threads)
        result["per_seed"][str(k)] = row
        np.savez_compressed(out / result["name"] / f"fold{k}.npz", **probs)
        log.info(
            "%s fold %d/%d: acc %.4f F1 %.4f on %d held-out sentences | %d epochs, %.0f s/epoch",
            result["name"],
            k + 1,
            len(parts),
            row["val"]["accuracy"],
            row["val"]["macro_f1"],
            row["val"]["n"],
            row["epochs"],
            row["seconds_per_epoch"],
        )
        _write(result, result_path, out, baseline)
    return _write(result, result_path, out, baseline)


def _write(result: dict[str, Any], path: Path, out: Path, baseline: str | None) -> dict[str, Any]:
    result["summary"] = summarise(result["per_seed"], interval="cv" in result)
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


_RESULT_KEYS = ("name", "overrides", "summary", "per_seed")


def _read_result(path: Path) -> dict:
    """One ``finslm ablate`` result; a ConfigError naming the file when it is not one."""
    try:
        r = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable JSON file ({exc})") from None
    lacking = [k for k in _RESULT_KEYS if not isinstance(r, dict) or k not in r]
    if lacking:
        raise ConfigError(
            f"{path}: not a finslm ablate result (no {', '.join(lacking)}); point --out at the "
            "folder finslm ablate wrote (metrics/ablation)"
        )
    return r


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
    if not paths:
        raise ConfigError(f"{out}: no ablation results (*.json); run `finslm ablate NAME` first")
    lines = [
        "| recipe | seeds | val acc | val macro-F1 | test acc | test macro-F1 "
        "| Δ val macro-F1, paired (higher in) | s/epoch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for path in paths:
        r = _read_result(path)
        levers = ", ".join(f"`{k}: {_yaml(v)}`" for k, v in r["overrides"].items())
        levers = levers or "params.yaml"
        summary, seeds = r["summary"], ", ".join(r["per_seed"])
        if "cv" in r:  # folds are the repetitions; no test split was read
            seeds = f"{len(r['per_seed'])} of {r['cv']['folds']} CV folds"
        test = summary.get("test")
        delta = "—"
        if "vs_baseline" in r:
            d = r["vs_baseline"]["val"]["macro_f1"]
            k = r["vs_baseline"].get("soup_size", 1)
            against = f"mean of its {k} {r['baseline']} seeds" if k > 1 else r["baseline"]
            delta = f"{_signed(d)} vs {against} ({d['higher_in']}/{d['n']})"
        per_epoch = "—"  # a TF-IDF fit has no epochs
        if r.get("recipe", {}).get("kind") != "tfidf":
            seconds = statistics.median(run["seconds_per_epoch"] for run in r["per_seed"].values())
            per_epoch = f"{seconds:.0f}"
        lines.append(
            f"| {r['name']}: {levers} | {seeds} | {_pm(summary['val']['accuracy'])} "
            f"| {_pm(summary['val']['macro_f1'])} | {_pm(test['accuracy']) if test else '—'} "
            f"| {_pm(test['macro_f1']) if test else '—'} | {delta} | {per_epoch} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m finslm.ablation NAME ... == finslm ablate NAME ...
    import sys

    from finslm.cli import app

    app(["ablate", *sys.argv[1:]])
