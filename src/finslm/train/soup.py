"""Model soups: average the weights of models fine-tuned from one checkpoint into one model.

Fine-tuned copies of the same pretrained checkpoint (other seeds, other recipes) usually lie
in one low-loss basin, so their *weight average* is a model of the same size that keeps much
of an ensemble's gain at one model's cost (Wortsman et al. 2022, "Model soups: averaging
weights of multiple fine-tuned models improves accuracy without increasing inference time").

- ``uniform``: the mean of every ingredient.
- ``greedy``: ingredients sorted by validation macro-F1, best first; each is kept only if the
  soup with it scores at least as well on validation (Wortsman et al.'s greedy soup).

Only validation is read to choose; the soup is saved as an ordinary finslm model folder
(safetensors + tokenizer + ``finslm.json``), so evaluation, export and the benchmark take it
like any other model.

    finslm soup models/minilm-soup models/run42 models/run43 models/run44 [--method uniform]
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from finslm.models import META_FILE, ModelError

log = logging.getLogger(__name__)
WEIGHTS = "model.safetensors"


def _load(model_dir: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from safetensors.numpy import load_file

    config_path, weights_path = model_dir / "config.json", model_dir / WEIGHTS
    if not config_path.is_file() or not weights_path.is_file():
        raise ModelError(
            f"{model_dir}: not a trained transformer folder (needs config.json and {WEIGHTS}); "
            "soup ingredients are train@<model> outputs"
        )
    return json.loads(config_path.read_text(encoding="utf-8")), load_file(weights_path)


def _architecture(config: dict[str, Any]) -> dict[str, Any]:
    keys = ("model_type", "hidden_size", "num_hidden_layers", "intermediate_size", "vocab_size")
    return {k: config.get(k) for k in keys}


def average(model_dirs: Sequence[Path]) -> dict[str, np.ndarray]:
    """Element-wise mean of the ingredients' float tensors (same architecture required)."""
    if not model_dirs:
        raise ModelError("a soup needs at least one ingredient")
    first_config, total = _load(Path(model_dirs[0]))
    total = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in total.items()}
    for model_dir in model_dirs[1:]:
        config, weights = _load(Path(model_dir))
        if _architecture(config) != _architecture(first_config) or weights.keys() != total.keys():
            raise ModelError(
                f"{model_dir}: another architecture than {model_dirs[0]} "
                f"({_architecture(config)} vs {_architecture(first_config)}); only models "
                "fine-tuned from the same checkpoint with the same head can be averaged"
            )
        for key, value in weights.items():
            if value.dtype.kind == "f":
                total[key] += value
    n = len(model_dirs)
    return {k: (v / n).astype(np.float32) if v.dtype.kind == "f" else v for k, v in total.items()}


def save(weights: dict[str, np.ndarray], template: Path, out_dir: Path, meta: dict) -> None:
    """Write ``weights`` as a model folder: ``template``'s config and tokenizer, new meta."""
    from safetensors.numpy import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    for path in Path(template).iterdir():
        if path.is_file() and path.name not in (WEIGHTS, META_FILE):
            shutil.copy2(path, out_dir / path.name)
    save_file(weights, str(out_dir / WEIGHTS), metadata={"format": "pt"})
    base_meta = json.loads((Path(template) / META_FILE).read_text(encoding="utf-8"))
    (out_dir / META_FILE).write_text(json.dumps({**base_meta, **meta}, indent=2) + "\n")


def _val_score(model_dir: Path, val_texts: list[str], val_labels: list[str]) -> dict[str, Any]:
    from finslm.evaluation import evaluate_predictor
    from finslm.predict import load_predictor

    metrics, _, _ = evaluate_predictor(load_predictor(model_dir), val_texts, val_labels)
    return metrics


def make_soup(
    ingredients: Sequence[Path],
    out_dir: Path,
    val_texts: list[str] | None = None,
    val_labels: list[str] | None = None,
    method: str = "greedy",
    names: Sequence[str] | None = None,
    scorer: Callable[[Path], dict[str, Any]] | None = None,
    keys: tuple[str, str] = ("macro_f1", "accuracy"),
) -> dict[str, Any]:
    """Build a ``uniform`` or ``greedy`` soup into ``out_dir``; return what was chosen and why.

    ``names`` is what the saved ``finslm.json`` calls each ingredient (default: its path).
    Callers whose ingredients live in a temporary folder pass stable names (``seed42`` …): a
    random path there would make the same seeds give a different model folder, and DVC a
    different hash.

    The result lists each ingredient's validation metrics, the ingredients kept, and the
    soup's validation metrics. The greedy soup can never score below its best ingredient on
    validation (it starts from it and only adds what does not lower the score).

    ``scorer`` (a model folder -> validation metrics) replaces the sentiment scoring on
    ``val_texts`` / ``val_labels`` for other tasks; ``keys`` are the metrics ranked by, first
    the deciding one (token classification: ``entity_micro_f1``, ``entity_macro_f1``).
    """
    import tempfile

    if method not in ("uniform", "greedy"):
        raise ModelError(f"soup method {method!r}: use uniform or greedy")
    ingredients = [Path(p) for p in ingredients]
    if names is not None and len(names) != len(ingredients):
        raise ModelError(f"soup: {len(names)} names for {len(ingredients)} ingredients")
    name_of = dict(zip(map(str, ingredients), names or map(str, ingredients), strict=True))
    if scorer is None:
        if val_texts is None or val_labels is None:
            raise ModelError("soup: pass validation texts and labels, or a scorer")
        scorer = lambda p: _val_score(p, val_texts, val_labels)  # noqa: E731
    scores = {str(p): scorer(p) for p in ingredients}
    key = lambda p: tuple(scores[str(p)][k] for k in keys)  # noqa: E731
    ranked = sorted(ingredients, key=key, reverse=True)
    if method == "uniform":
        kept = ranked
    else:
        kept = [ranked[0]]
        best = key(ranked[0])
        with tempfile.TemporaryDirectory(prefix="finslm-soup-") as tmp:
            for candidate in ranked[1:]:
                trial = Path(tmp) / f"trial{len(kept)}"
                save(average([*kept, candidate]), ranked[0], trial, {})
                metrics = scorer(trial)
                if tuple(metrics[k] for k in keys) >= best:
                    kept.append(candidate)
                    best = tuple(metrics[k] for k in keys)
                log.info(
                    "soup + %s: val %s %.4f (%s)",
                    candidate,
                    keys[0],
                    metrics[keys[0]],
                    "kept" if kept[-1] == candidate else "left out",
                )
    save(
        average(kept),
        ranked[0],
        out_dir,
        {"soup": {"method": method, "ingredients": [name_of[str(p)] for p in kept]}},
    )
    val = scorer(out_dir)
    top = scores[str(ranked[0])]
    if val[keys[0]] < top[keys[0]]:  # only a uniform soup can (greedy starts from the best)
        log.warning(
            "the %s soup of %d scores val %s %.4f, below its best ingredient %s (%.4f): their "
            "weights do not average well here (few training rows, or fine-tunes far apart). "
            "Fix: soup_method: greedy (never below its best ingredient on validation), or "
            "soup_size: 1",
            method,
            len(kept),
            keys[0],
            val[keys[0]],
            name_of[str(ranked[0])],
            top[keys[0]],
        )
    return {
        "method": method,
        "ingredients": {p: {k: m[k] for k in keys} for p, m in scores.items()},
        "kept": [str(p) for p in kept],
        "val": val,
    }


def training_cost(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A soup's training figures from its ingredients' train summaries: epochs and seconds
    summed (the soup cost all of them), the first ingredient's best epoch, size and trainable
    parameters, and the highest peak RSS (rows measured before those were logged lack them)."""
    epochs = sum(s["epochs"] for s in summaries)
    seconds = sum(s["seconds"] for s in summaries)
    extra: dict[str, Any] = {}
    if all("trainable_params" in s for s in summaries):
        extra["trainable_params"] = summaries[0]["trainable_params"]
    if all("peak_rss_mb" in s for s in summaries):
        extra["peak_rss_mb"] = max(s["peak_rss_mb"] for s in summaries)
    return {
        "epochs": epochs,
        "best_epoch": summaries[0]["best_epoch"],
        "seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / max(epochs, 1), 1),
        "params": summaries[0]["params"],
        **extra,
    }


def train_soup(
    cfg,
    train_df,
    val_df,
    out_dir: Path,
    live=None,
    seed: int = 42,
    threads: int = 0,
    init_from: Path | None = None,
) -> dict[str, Any]:
    """Train ``cfg.soup_size`` models (seeds ``seed`` … ``seed + soup_size - 1``), save their soup.

    Each ingredient is :func:`finslm.train.transformer.train_transformer` with its own seed (its best
    epoch restored on validation), all from ``init_from`` when given (see train_transformer);
    ``live`` records the first ingredient's curves. The summary
    has the train stage's keys — ``val`` is the soup's — plus ``soup``: the method, and each
    ingredient's seed, epochs and validation metrics. Under torchrun every rank trains every
    ingredient; rank 0 alone averages and writes ``out_dir``.
    """
    import tempfile

    from finslm.train.distributed import is_main_process
    from finslm.train.transformer import train_transformer

    summaries = []
    with tempfile.TemporaryDirectory(prefix="finslm-soup-") as tmp:
        dirs = []
        for k in range(cfg.soup_size):
            ingredient = Path(tmp) / f"seed{seed + k}"
            log.info("soup ingredient %d/%d (seed %d)", k + 1, cfg.soup_size, seed + k)
            summaries.append(
                train_transformer(
                    cfg,
                    train_df,
                    val_df,
                    ingredient,
                    live=live if k == 0 else None,
                    seed=seed + k,
                    threads=threads,
                    init_from=init_from,
                )
            )
            dirs.append(ingredient)
        result = None
        if is_main_process():
            texts, labels = val_df.text.tolist(), val_df.label.tolist()
            names = [d.name for d in dirs]
            result = make_soup(dirs, out_dir, texts, labels, cfg.soup_method, names)
    kept = {Path(p).name for p in result["kept"]} if result else set()
    return {
        "val": result["val"] if result else summaries[0]["val"],
        **training_cost(summaries),
        "world_size": summaries[0]["world_size"],
        "soup": {
            "method": cfg.soup_method,
            "size": cfg.soup_size,
            "ingredients": [
                {
                    "seed": seed + k,
                    "kept": f"seed{seed + k}" in kept,
                    "epochs": s["epochs"],
                    "best_epoch": s["best_epoch"],
                    "val": {m: s["val"][m] for m in ("accuracy", "macro_f1")},
                }
                for k, s in enumerate(summaries)
            ],
        },
    }
