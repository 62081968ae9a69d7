"""Train one model: a fine-tuned transformer (HF Trainer) or the TF-IDF baseline.

Both take the train and validation splits only — the test split is never seen here — and write
a finslm model folder that :func:`finslm.predict.load_predictor` opens.

    python stages/train.py minilm      # the DVC stage; see dvc.yaml
"""

from __future__ import annotations

import logging
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from finslm.config import TfidfConfig, TransformerConfig
from finslm.evaluation import classification_metrics
from finslm.labels import LABEL2ID, LABELS
from finslm.models import (
    TFIDF_FILE,
    build_tfidf,
    count_parameters,
    load_for_finetuning,
    write_meta,
)

log = logging.getLogger(__name__)


def set_determinism(seed: int, threads: int = 0) -> None:
    """Same seed and thread count -> same weights on CPU (reductions depend on thread count)."""
    import torch
    from transformers import set_seed

    if threads > 0:
        torch.set_num_threads(threads)
    set_seed(seed)


def class_weights(labels: pd.Series) -> list[float]:
    """Inverse-frequency weights (mean 1) in LABELS order; a missing class gets weight 0."""
    counts = labels.value_counts()
    raw = [1.0 / counts[name] if counts.get(name, 0) else 0.0 for name in LABELS]
    scale = sum(1 for w in raw if w) / sum(raw)
    return [w * scale for w in raw]


class _Encoded:
    """A torch-style dataset of tokenised sentences (lists, padded later per batch)."""

    def __init__(self, tokenizer, texts: list[str], labels: list[str], max_length: int):
        self.enc = tokenizer(texts, truncation=True, max_length=max_length)
        self.labels = [LABEL2ID[label] for label in labels]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = {k: v[i] for k, v in self.enc.items()}
        item["labels"] = self.labels[i]
        return item


def _live_callback(live):
    """A Trainer callback logging per-epoch validation metrics and train loss to DVCLive."""
    from transformers import TrainerCallback

    class LiveCallback(TrainerCallback):
        def __init__(self):
            self.losses: list[float] = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.losses.append(float(logs["loss"]))

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if self.losses:
                live.log_metric("train/loss", float(np.mean(self.losses)))
                self.losses = []
            for key in ("loss", "accuracy", "macro_f1"):
                if metrics and f"eval_{key}" in metrics:
                    live.log_metric(f"val/{key}", float(metrics[f"eval_{key}"]))
            live.next_step()

    return LiveCallback()


def train_transformer(
    cfg: TransformerConfig,
    train_df: pd.DataFrame,
    val_df: pd.DataFrame,
    out_dir: Path,
    live=None,
    seed: int = 42,
    threads: int = 0,
) -> dict[str, Any]:
    """Fine-tune ``cfg.checkpoint``; restore the best epoch by validation macro-F1; save to out_dir.

    Returns the training summary: validation metrics of the restored model, epochs run, best
    epoch, seconds, seconds per epoch and parameter count.
    """
    import torch
    from transformers import (
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        TrainingArguments,
    )

    set_determinism(seed, threads)
    tokenizer, model = load_for_finetuning(
        cfg.checkpoint, cfg.trust_remote_code, pooling=cfg.pooling
    )
    train_ds = _Encoded(tokenizer, train_df.text.tolist(), train_df.label.tolist(), cfg.max_length)
    val_ds = _Encoded(tokenizer, val_df.text.tolist(), val_df.label.tolist(), cfg.max_length)
    weights = (
        torch.tensor(class_weights(train_df.label), dtype=torch.float)
        if cfg.class_weights
        else None
    )
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=cfg.label_smoothing)

    def compute_loss(outputs, labels, num_items_in_batch=None):
        return loss_fn(outputs.logits.float(), labels)

    def compute_metrics(eval_pred):
        logits, label_ids = eval_pred
        pred = [LABELS[i] for i in np.asarray(logits).argmax(axis=1)]
        true = [LABELS[i] for i in label_ids]
        m = classification_metrics(true, pred)
        return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}

    steps_per_epoch = math.ceil(len(train_ds) / cfg.batch_size)
    quiet = not sys.stderr.isatty()
    with tempfile.TemporaryDirectory(prefix="finslm-ckpt-") as ckpt_dir:
        args = TrainingArguments(
            output_dir=ckpt_dir,
            num_train_epochs=cfg.epochs,
            per_device_train_batch_size=cfg.batch_size,
            per_device_eval_batch_size=64,
            learning_rate=cfg.lr,
            weight_decay=cfg.weight_decay,
            warmup_steps=int(cfg.warmup_ratio * steps_per_epoch * cfg.epochs),
            lr_scheduler_type=cfg.lr_schedule,
            # Batches of similar length: less padding, ~30% faster on PhraseBank-like text.
            train_sampling_strategy="group_by_length",
            eval_strategy="epoch",
            save_strategy="epoch",
            save_total_limit=2,
            save_only_model=True,
            load_best_model_at_end=True,
            metric_for_best_model="macro_f1",
            greater_is_better=True,
            logging_steps=max(1, steps_per_epoch // 4),
            seed=seed,
            data_seed=seed,
            use_cpu=not torch.cuda.is_available(),
            report_to="none",
            disable_tqdm=quiet,
            dataloader_num_workers=0,
        )
        callbacks = [EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience)]
        if live is not None:
            callbacks.append(_live_callback(live))
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=val_ds,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=compute_metrics,
            compute_loss_func=compute_loss,
            callbacks=callbacks,
        )
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        history = [h for h in trainer.state.log_history if "eval_macro_f1" in h]
        best = max(history, key=lambda h: h["eval_macro_f1"])
        out_dir.mkdir(parents=True, exist_ok=True)
        trainer.model.save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save_pretrained(out_dir)

    n_params = count_parameters(trainer.model)
    write_meta(
        out_dir,
        {
            "kind": "transformer",
            "checkpoint": cfg.checkpoint,
            "pooling": cfg.pooling,
            "max_length": cfg.max_length,
            "params": n_params,
        },
    )
    # Trainer's eval sampler groups by length too, so compare with its label_ids, not val_df order.
    val_pred = trainer.predict(val_ds)
    pred = [LABELS[i] for i in val_pred.predictions.argmax(axis=1)]
    true = [LABELS[i] for i in val_pred.label_ids]
    epochs_run = len(history)
    return {
        "val": classification_metrics(true, pred),
        "epochs": epochs_run,
        "best_epoch": int(round(best["epoch"])),
        "seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / max(epochs_run, 1), 1),
        "params": n_params,
    }


def train_tfidf(
    cfg: TfidfConfig, train_df: pd.DataFrame, val_df: pd.DataFrame, out_dir: Path
) -> dict[str, Any]:
    """Fit the TF-IDF + logistic-regression baseline and save it (joblib, our own artifact)."""
    import joblib

    pipeline = build_tfidf(cfg)
    start = time.perf_counter()
    pipeline.fit(train_df.text.tolist(), train_df.label.tolist())
    seconds = time.perf_counter() - start
    out_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, out_dir / TFIDF_FILE)
    clf = pipeline.named_steps["clf"]
    n_params = int(clf.coef_.size + clf.intercept_.size)
    write_meta(out_dir, {"kind": "tfidf", "params": n_params})
    pred = pipeline.predict(val_df.text.tolist())
    return {
        "val": classification_metrics(val_df.label.tolist(), list(pred)),
        "epochs": 1,
        "best_epoch": 1,
        "seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds, 1),
        "params": n_params,
    }
