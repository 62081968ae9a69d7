"""The prune stage's work: choose what to remove (train + validation only), cut, distil, save."""

from __future__ import annotations

import copy
import dataclasses
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from finslm.config import DistillConfig, PruneConfig
from finslm.labels import LABEL2ID
from finslm.models import ModelError, count_parameters, read_meta, save_model, write_meta
from finslm.prune.importance import ffn_importance, layers_to_keep, mean_loss, top_neurons
from finslm.prune.surgery import encoder, encoder_parameters, keep_layers, shrink_ffn
from finslm.train.determinism import set_determinism
from finslm.train.distill import distill

log = logging.getLogger(__name__)


def load_transformer(model_dir: Path):
    """(tokenizer, model, meta) of a trained finslm transformer folder, eager attention."""
    from transformers import AutoTokenizer

    from finslm.train.heads import load_classifier

    meta = read_meta(model_dir)
    if meta.get("kind") != "transformer":
        raise ModelError(f"{model_dir}: kind {meta.get('kind')!r}; pruning needs a transformer")
    return AutoTokenizer.from_pretrained(model_dir), load_classifier(model_dir), meta


def _batches(tokenizer, df: pd.DataFrame, max_length: int, batch_size: int = 32) -> list[dict]:
    out = []
    for start in range(0, len(df), batch_size):
        part = df.iloc[start : start + batch_size]
        enc = tokenizer(
            part.text.tolist(),
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        )
        enc = dict(enc)
        enc["labels"] = torch.tensor([LABEL2ID[label] for label in part.label])
        out.append(enc)
    return out


def recovery_logits(teacher_dir: Path, train_df: pd.DataFrame, threads: int = 0):
    """(n, classes) logits of a trained model (the unpruned source, or another teacher) on the
    train split, through its Predictor as teacher_logits@<t> scores it (length-sorted batches;
    so the same numbers as its cache)."""
    from finslm.config import TeacherConfig
    from finslm.train.teacher import LOGIT_COLUMNS, score_train_split

    if not Path(teacher_dir).is_dir():
        raise ModelError(
            f"{teacher_dir}: not found; run `dvc repro train@{Path(teacher_dir).name}`"
        )
    table = score_train_split(Path(teacher_dir), train_df, TeacherConfig(threads=threads))
    return table[LOGIT_COLUMNS].to_numpy(dtype="float32")


def prune_model(
    cfg: PruneConfig,
    source_dir: Path,
    train_df: pd.DataFrame,
    val_df: pd.DataFrame,
    out_dir: Path,
    live=None,
    teacher_dir: Path | None = None,
) -> dict[str, Any]:
    """Prune ``source_dir``'s model as ``cfg`` says, distil it back, save it to ``out_dir``.

    The recovery distils from the unpruned source, or from ``teacher_dir`` (another trained
    model, e.g. a larger one) when given.
    """
    start = time.perf_counter()
    set_determinism(cfg.seed, cfg.threads)
    tokenizer, student, meta = load_transformer(source_dir)
    max_length = int(meta.get("max_length", 128))
    n_layers = len(encoder(student).layer)
    if cfg.layers_keep > n_layers:
        raise ModelError(
            f"prune.layers_keep: {cfg.layers_keep}; {source_dir} has {n_layers} encoder layers"
        )
    before = {"params": count_parameters(student), "encoder_params": encoder_parameters(student)}
    val_batches = _batches(tokenizer, val_df, max_length)

    kept, trace = layers_to_keep(student, val_batches, cfg.layers_keep, cfg.layer_choice)
    keep_layers(student, kept)
    log.info("layers kept %s of %d", kept, n_layers)

    scored = train_df.sample(
        n=min(cfg.importance_sentences, len(train_df)), random_state=cfg.seed
    ).sort_values("text", key=lambda s: s.str.len())  # similar lengths: less padding
    scores = ffn_importance(student, _batches(tokenizer, scored, max_length))
    shrink_ffn(student, top_neurons(scores, cfg.ffn_keep))
    pruned_val_loss = mean_loss(student, val_batches)
    choose_seconds = time.perf_counter() - start

    logits = recovery_logits(teacher_dir or source_dir, train_df, cfg.threads)
    settings = cfg.distill_settings()
    after = {"params": count_parameters(student), "encoder_params": encoder_parameters(student)}
    out_meta = {
        "kind": "transformer",
        "checkpoint": str(source_dir),
        "pooling": meta.get("pooling", "cls"),
        "max_length": max_length,
        "params": after["params"],
        "pruned_from": str(source_dir),
        "recovered_from": str(teacher_dir or source_dir),
    }
    data = (tokenizer, train_df, val_df, logits, max_length)
    if cfg.soup_size == 1:
        summary = distill(student, *data, settings, live=live)
        _save(student, tokenizer, out_dir, out_meta)
    else:
        summary = _recover_soup(cfg.soup_size, student, data, settings, live, out_dir, out_meta)
    return {
        **summary,
        "source": str(source_dir),
        "teacher": str(teacher_dir or source_dir),
        "layers_kept": kept,
        "layers": {"before": n_layers, "after": len(kept)},
        "intermediate_size": student.config.intermediate_size,
        "params": after["params"],
        "params_before": before["params"],
        "encoder_params": after["encoder_params"],
        "encoder_params_before": before["encoder_params"],
        "encoder_params_removed": round(1 - after["encoder_params"] / before["encoder_params"], 4),
        "val_loss_after_cut": round(pruned_val_loss, 4),
        "layer_choice": trace,
        "choose_seconds": round(choose_seconds, 1),
        "total_seconds": round(time.perf_counter() - start, 1),
    }


def _save(model, tokenizer, out_dir: Path, meta: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    save_model(model, tokenizer, out_dir)
    write_meta(out_dir, meta)


def _recover_soup(
    size: int,
    student,
    data: tuple,
    settings: DistillConfig,
    live,
    out_dir: Path,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """Distil ``size`` copies of the pruned ``student`` (recovery seeds settings.seed, +1, …)
    and save their uniform weight average to ``out_dir``. ``data`` is distill's (tokenizer,
    train_df, val_df, teacher logits, max_length); the summary's ``val`` is the soup's."""
    from finslm.train.soup import make_soup, training_cost

    tokenizer, _, val_df, _, _ = data
    runs = []
    with tempfile.TemporaryDirectory(prefix="finslm-prune-soup-") as tmp:
        dirs = []
        for k in range(size):
            seed = settings.seed + k
            log.info("pruned soup ingredient %d/%d (recovery seed %d)", k + 1, size, seed)
            ingredient = copy.deepcopy(student)  # every ingredient starts from the same cut
            ingredient_settings = dataclasses.replace(settings, seed=seed)
            runs.append(distill(ingredient, *data, ingredient_settings, live if k == 0 else None))
            dirs.append(Path(tmp) / f"seed{seed}")
            _save(ingredient, tokenizer, dirs[-1], meta)
        val_texts, val_labels = val_df.text.tolist(), val_df.label.tolist()
        names = [d.name for d in dirs]
        soup = make_soup(dirs, out_dir, val_texts, val_labels, "uniform", names)
    return {
        "val": soup["val"],
        **training_cost([{**r, "params": meta["params"]} for r in runs]),
        "soup": {
            "method": "uniform",
            "size": size,
            "ingredients": [
                {
                    "seed": settings.seed + k,
                    "epochs": r["epochs"],
                    "best_epoch": r["best_epoch"],
                    "val": {m: r["val"][m] for m in ("accuracy", "macro_f1")},
                }
                for k, r in enumerate(runs)
            ],
        },
    }
