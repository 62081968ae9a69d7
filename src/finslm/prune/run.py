"""The prune stage's work: choose what to remove (train + validation only), cut, distil, save."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from finslm.distill import DistillSettings, distill, teacher_logits
from finslm.labels import LABEL2ID
from finslm.models import ModelError, count_parameters, read_meta, write_meta
from finslm.prune.config import PruneConfig
from finslm.prune.importance import ffn_importance, layers_to_keep, mean_loss, top_neurons
from finslm.prune.surgery import encoder, encoder_parameters, keep_layers, shrink_ffn
from finslm.training import set_determinism

log = logging.getLogger(__name__)


def load_transformer(model_dir: Path):
    """(tokenizer, model, meta) of a trained finslm transformer folder, eager attention."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from finslm import heads

    meta = read_meta(model_dir)
    if meta.get("kind") != "transformer":
        raise ModelError(f"{model_dir}: kind {meta.get('kind')!r}; pruning needs a transformer")
    heads.register()  # a mean-pooling model reloads only once its type is registered
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, attn_implementation="eager"
    )
    return tokenizer, model, meta


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


def prune_model(
    cfg: PruneConfig,
    source_dir: Path,
    train_df: pd.DataFrame,
    val_df: pd.DataFrame,
    out_dir: Path,
    live=None,
) -> dict[str, Any]:
    """Prune ``source_dir``'s model as ``cfg`` says, distil it back, save it to ``out_dir``."""
    start = time.perf_counter()
    set_determinism(cfg.seed, cfg.threads)
    tokenizer, teacher, meta = load_transformer(source_dir)
    max_length = int(meta.get("max_length", 128))
    _, student, _ = load_transformer(source_dir)
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

    logits = teacher_logits(teacher, tokenizer, train_df.text.tolist(), max_length)
    del teacher
    settings = DistillSettings(**{k: getattr(cfg, k) for k in DistillSettings.__dataclass_fields__})
    summary = distill(student, tokenizer, train_df, val_df, logits, max_length, settings, live=live)

    out_dir.mkdir(parents=True, exist_ok=True)
    student.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    after = {"params": count_parameters(student), "encoder_params": encoder_parameters(student)}
    write_meta(
        out_dir,
        {
            "kind": "transformer",
            "checkpoint": str(source_dir),
            "pooling": meta.get("pooling", "cls"),
            "max_length": max_length,
            "params": after["params"],
            "pruned_from": str(source_dir),
        },
    )
    return {
        **summary,
        "source": str(source_dir),
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
