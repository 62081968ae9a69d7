"""Train one model: a fine-tuned transformer (HF Trainer) or the TF-IDF baseline.

Both take the train and validation splits only — the test split is never seen here — and write
a finslm model folder that :func:`finslm.predict.load_predictor` opens.

    python stages/train.py minilm      # the DVC stage; see dvc.yaml
    torchrun --nproc_per_node=4 stages/train.py minilm   # data-parallel (DDP), same outputs

Under torchrun every process runs :func:`train_transformer`; ``models.<m>.batch_size`` is the
global batch (split evenly over the processes), so a run means the same with 1 or N of them.
Only rank 0 writes the model folder; the caller writes metrics and logs on rank 0 alone.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from finslm.config import ConfigError, TfidfConfig, TransformerConfig
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


# Data-parallel training (torchrun). A plain `python` process is rank 0 of a world of 1 and
# never touches torch.distributed, so the single-process path is exactly what it was.


def dist_env() -> tuple[int, int, int]:
    """(rank, local rank, world size) as torchrun sets them; (0, 0, 1) in a plain process."""
    env = os.environ
    return int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1))


def is_main_process() -> bool:
    """True on the one process that writes outputs and logs (rank 0, or a plain process)."""
    return dist_env()[0] == 0


def init_distributed() -> int:
    """Join torchrun's process group (NCCL on GPU, gloo on CPU) once; return the world size."""
    _, local_rank, world = dist_env()
    if world == 1:
        return 1
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if torch.cuda.is_available():
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
            torch.cuda.set_device(device)
            dist.init_process_group(backend=ddp_backend(), device_id=device)
        else:
            dist.init_process_group(backend=ddp_backend())
    return dist.get_world_size()


def ddp_backend() -> str:
    import torch

    return "nccl" if torch.cuda.is_available() else "gloo"


def finish_distributed() -> None:
    """Wait for every rank (rank 0 is writing outputs), then leave the process group."""
    dist = sys.modules.get("torch.distributed")  # not imported: no group (and no torch import)
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def per_device_batch(batch_size: int, world: int, key: str = "batch_size") -> int:
    """``batch_size`` is the global batch: each of ``world`` processes takes an equal share."""
    if batch_size % world:
        lower, upper = batch_size - batch_size % world, batch_size + world - batch_size % world
        choices = f"{lower} or {upper}" if lower else str(upper)
        raise ConfigError(
            f"{key}: got {batch_size}; it is the global batch and must split evenly over "
            f"{world} processes (try {choices})"
        )
    return batch_size // world


@contextlib.contextmanager
def _checkpoint_dir(world: int):
    """Where Trainer keeps per-epoch checkpoints until the best one is restored.

    One process: a private temporary folder (as always). Under torchrun every rank must see the
    same path (all ranks reload the best checkpoint), so rank 0 picks the name and each node
    gets its own folder, written by that node's local rank 0 (``save_on_each_node``), so no
    shared filesystem is needed.
    """
    if world == 1:
        with tempfile.TemporaryDirectory(prefix="finslm-ckpt-") as path:
            yield path
        return
    import torch.distributed as dist

    token = [uuid.uuid4().hex if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(token, src=0)
    node = os.environ.get("GROUP_RANK", "0")
    path = Path(tempfile.gettempdir()) / f"finslm-ckpt-{token[0]}-node{node}"
    path.mkdir(exist_ok=True)
    try:
        yield str(path)
        dist.barrier()  # nobody may still be reading the best checkpoint
    finally:
        if dist_env()[1] == 0:
            shutil.rmtree(path, ignore_errors=True)


def class_weights(labels: pd.Series) -> list[float]:
    """Inverse-frequency weights (mean 1) in LABELS order; a missing class gets weight 0."""
    counts = labels.value_counts()
    raw = [1.0 / counts[name] if counts.get(name, 0) else 0.0 for name in LABELS]
    scale = sum(1 for w in raw if w) / sum(raw)
    return [w * scale for w in raw]


def agreement_targets(train_df: pd.DataFrame, mode: str, source: str = "train split") -> np.ndarray:
    """Per-sentence training targets from PhraseBank agreement tiers: ``(n, len(LABELS) + 1)``.

    Columns are a target distribution over LABELS and a loss weight. ``weight``: one-hot target,
    weight = tier / mean tier (mean 1, so the learning rate means the same); ``soft``: the tier
    on the gold label, the rest spread evenly over the other labels, weight 1.
    """
    if "agreement" not in train_df.columns or train_df["agreement"].isna().any():
        raise ConfigError(
            f"agreement_labels: {mode}: the {source} has no annotator agreement. Point "
            "data.source at the PhraseBank folder (…/FinancialPhraseBank-v1.0, not one "
            "Sentences_*.txt file) so prepare records each sentence's tier, or set "
            "agreement_labels: off"
        )
    tier = train_df["agreement"].to_numpy(dtype=np.float64)
    if ((tier <= 0) | (tier > 1)).any():
        raise ConfigError(f"agreement_labels: the {source} has agreement outside (0, 1]")
    gold = np.array([LABEL2ID[label] for label in train_df.label])
    n, k = len(gold), len(LABELS)
    targets = np.zeros((n, k + 1))
    if mode == "soft":
        targets[:, :k] = ((1.0 - tier) / (k - 1))[:, None]
        targets[np.arange(n), gold] = tier
        targets[:, k] = 1.0
    else:
        targets[np.arange(n), gold] = 1.0
        targets[:, k] = tier / tier.mean()
    return targets


def soft_target_loss(logits, targets, smoothing: float = 0.0, class_weight=None):
    """Weighted cross-entropy against ``agreement_targets`` rows (distribution + weight)."""
    import torch

    k = logits.shape[1]
    dist, weight = targets[:, :k], targets[:, k]
    if smoothing:
        dist = (1.0 - smoothing) * dist + smoothing / k
    if class_weight is not None:
        weight = weight * class_weight.to(logits.device)[dist.argmax(dim=1)]
    ce = -(dist * torch.log_softmax(logits, dim=1)).sum(dim=1)
    return (weight * ce).sum() / weight.sum()


class _Encoded:
    """A torch-style dataset of tokenised sentences (lists, padded later per batch).

    ``targets`` (from ``agreement_targets``) replaces the hard labels with soft rows.
    """

    def __init__(
        self,
        tokenizer,
        texts: list[str],
        labels: list[str],
        max_length: int,
        targets: np.ndarray | None = None,
    ):
        self.enc = tokenizer(texts, truncation=True, max_length=max_length)
        self.labels = [LABEL2ID[label] for label in labels] if targets is None else targets.tolist()

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
    init_from: Path | None = None,
) -> dict[str, Any]:
    """Fine-tune ``cfg.checkpoint``; restore the best epoch by validation macro-F1; save to out_dir.

    ``init_from``: a saved encoder to start from instead (the TAPT-adapted checkpoint of
    finslm/recipe.py); the saved model still names ``cfg.checkpoint`` as its origin.

    Returns the training summary: validation metrics of the restored model, epochs run, best
    epoch, seconds, seconds per epoch, parameter count and world size (processes).

    Under torchrun every rank calls this (Trainer wraps the model in DDP) and gets the same
    summary; only rank 0 writes ``out_dir``. ``cfg.batch_size`` is the global batch.
    """
    import torch
    from transformers import (
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        TrainingArguments,
    )

    world = init_distributed()
    per_device = per_device_batch(cfg.batch_size, world)
    # Same seed on every rank: identical initial weights (DDP also broadcasts rank 0's).
    set_determinism(seed, threads)
    tokenizer, model = load_for_finetuning(
        str(init_from) if init_from else cfg.checkpoint, cfg.trust_remote_code, pooling=cfg.pooling
    )
    targets = (
        agreement_targets(train_df, cfg.agreement_labels) if cfg.agreement_labels != "off" else None
    )
    train_ds = _Encoded(
        tokenizer, train_df.text.tolist(), train_df.label.tolist(), cfg.max_length, targets
    )
    val_ds = _Encoded(tokenizer, val_df.text.tolist(), val_df.label.tolist(), cfg.max_length)
    weights = (
        torch.tensor(class_weights(train_df.label), dtype=torch.float)
        if cfg.class_weights
        else None
    )
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=cfg.label_smoothing)

    def task_loss(logits, labels):
        logits = logits.float()
        if loss_fn.weight is not None and loss_fn.weight.device != logits.device:
            loss_fn.to(logits.device)  # class weights follow the model onto the GPU
        if labels.dim() == 2:  # agreement targets (training only; evaluation has hard labels)
            return soft_target_loss(logits, labels.float(), cfg.label_smoothing, loss_fn.weight)
        return loss_fn(logits, labels)

    def compute_loss(outputs, labels, num_items_in_batch=None):
        return task_loss(outputs.logits, labels)

    def compute_metrics(eval_pred):
        logits, label_ids = eval_pred
        pred = [LABELS[i] for i in np.asarray(logits).argmax(axis=1)]
        true = [LABELS[i] for i in label_ids]
        m = classification_metrics(true, pred)
        return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}

    if cfg.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    collator = DataCollatorWithPadding(tokenizer)
    contrastive = None
    if cfg.contrastive_epochs:
        from finslm.train.contrastive import contrastive_stage

        # Under torchrun every rank runs the same stage on the whole split (same seed, same
        # weights); DDP then starts from rank 0's copy, so the ranks agree either way.
        contrastive = contrastive_stage(model, train_ds, collator, cfg, seed)
        set_determinism(seed, threads)  # fine-tuning's RNG stream as without the stage

    steps_per_epoch = math.ceil(len(train_ds) / cfg.batch_size)
    quiet = not sys.stderr.isatty()
    with _checkpoint_dir(world) as ckpt_dir:
        args = TrainingArguments(
            output_dir=ckpt_dir,
            num_train_epochs=cfg.epochs,
            per_device_train_batch_size=per_device,
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
            # compute_loss is a per-rank mean and DDP averages gradients over ranks; with
            # this on, Trainer would multiply the loss by the world size (no-op for 1 process).
            average_tokens_across_devices=False,
            ddp_backend=ddp_backend() if world > 1 else None,
            # Both heads (cls, mean) use every parameter; this skips DDP's per-step graph walk.
            # A hub model with unused weights fails at once with DDP's message naming them.
            ddp_find_unused_parameters=False,
            save_on_each_node=world > 1,
        )
        callbacks = [EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience)]
        averager = _weight_averager(cfg.swa_from_epoch) if cfg.swa_from_epoch else None
        if averager is not None:
            callbacks.append(averager)
        if live is not None:
            callbacks.append(_live_callback(live))
        trainer_cls = _recipe_trainer(Trainer if world == 1 else _ddp_trainer(), cfg, task_loss)
        trainer = trainer_cls(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=val_ds,
            data_collator=collator,
            compute_metrics=compute_metrics,
            compute_loss_func=compute_loss,
            callbacks=callbacks,
        )
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        history = [h for h in trainer.state.log_history if "eval_macro_f1" in h]
        best = max(history, key=lambda h: h["eval_macro_f1"])
        swa = averager.apply(trainer.model) if averager is not None else None
        if trainer.is_world_process_zero():
            out_dir.mkdir(parents=True, exist_ok=True)
            trainer.model.save_pretrained(out_dir, safe_serialization=True)
            tokenizer.save_pretrained(out_dir)

    n_params = count_parameters(trainer.model)
    if trainer.is_world_process_zero():
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
    # Under DDP every rank predicts its shard and gets all of them back (a collective call).
    val_pred = trainer.predict(val_ds)
    pred = [LABELS[i] for i in val_pred.predictions.argmax(axis=1)]
    true = [LABELS[i] for i in val_pred.label_ids]
    epochs_run = len(history)
    extra = {"contrastive": contrastive} if contrastive else {}
    if swa is not None:
        extra["swa"] = swa
    return {
        **extra,
        "val": classification_metrics(true, pred),
        "epochs": epochs_run,
        "best_epoch": int(round(best["epoch"])),
        "seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / max(epochs_run, 1), 1),
        "params": n_params,
        "world_size": world,
    }


def _weight_averager(start_epoch: int):
    """A Trainer callback keeping the running mean of the weights at each epoch end >= start.

    ``apply(model)`` loads the mean into ``model`` (after training; the best-epoch restore is
    overridden) and returns ``{"from_epoch", "epochs_averaged"}``; with nothing averaged yet
    (training stopped early, before ``start_epoch``) it leaves the model as it is.
    """
    import torch
    from transformers import TrainerCallback

    class WeightAverager(TrainerCallback):
        def __init__(self):
            self.total: dict[str, torch.Tensor] | None = None
            self.count = 0

        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            if round(state.epoch) < start_epoch:
                return
            weights = {
                k: v.detach().to("cpu", torch.float64)
                for k, v in model.state_dict().items()
                if v.dtype.is_floating_point
            }
            if self.total is None:
                self.total = {k: v.clone() for k, v in weights.items()}
            else:
                for k, v in weights.items():
                    self.total[k] += v
            self.count += 1

        def apply(self, model) -> dict[str, int]:
            if self.count:
                state = model.state_dict()
                mean = {k: (v / self.count).to(state[k].dtype) for k, v in self.total.items()}
                model.load_state_dict(mean, strict=False)
            return {"from_epoch": start_epoch, "epochs_averaged": self.count}

    return WeightAverager()


def _recipe_trainer(base, cfg: TransformerConfig, task_loss):
    """``base`` (a Trainer class) with the recipe's optional optimiser and loss changes.

    ``layer_lr_decay`` < 1: per-layer learning rates (finslm.train.optim). ``rdrop_alpha`` > 0: each
    training batch runs twice in one forward pass (the batch stacked on itself, so every row
    gets its own dropout mask) and the loss is R-Drop's (finslm.train.losses). ``supcon_weight`` > 0:
    the supervised contrastive loss of the batch's sentence vectors is added. ``fgm_epsilon``
    > 0: each step adds the gradient of the loss at adversarially shifted word embeddings.
    Evaluation is unchanged. With none of them set this returns ``base`` itself.
    """
    if (
        cfg.layer_lr_decay == 1.0
        and cfg.rdrop_alpha == 0.0
        and cfg.supcon_weight == 0.0
        and cfg.fgm_epsilon == 0.0
    ):
        return base
    import torch

    from finslm.train.heads import sentence_vectors
    from finslm.train.losses import rdrop_loss, supcon_loss
    from finslm.train.optim import layer_lr_groups

    class RecipeTrainer(base):
        def create_optimizer(self, model=None):
            if cfg.layer_lr_decay == 1.0 or self.optimizer is not None:
                return super().create_optimizer(model)
            model = self.model if model is None else model
            groups = layer_lr_groups(
                model.named_parameters(),
                model.config.num_hidden_layers,
                self.args.learning_rate,
                cfg.layer_lr_decay,
                self.args.weight_decay,
                set(self.get_decay_parameter_names(model)),
            )
            optimizer_cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
            self.optimizer = optimizer_cls(groups, **kwargs)  # each group's lr wins over kwargs'
            return self.optimizer

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            plain = cfg.rdrop_alpha == 0.0 and cfg.supcon_weight == 0.0
            if plain or not model.training:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            inputs = dict(inputs)
            labels = inputs.pop("labels")
            copies = 2 if cfg.rdrop_alpha else 1
            if copies > 1:
                inputs = {k: torch.cat([v] * copies) for k, v in inputs.items()}
            outputs = model(**inputs, output_hidden_states=cfg.supcon_weight > 0)
            if copies > 1:
                first, second = outputs.logits.chunk(2)
                loss = rdrop_loss(first, second, labels, task_loss, cfg.rdrop_alpha)
            else:
                loss = task_loss(outputs.logits, labels)
            if cfg.supcon_weight:
                hidden = outputs.hidden_states[-1]  # (copies * batch, seq, hidden)
                vectors = sentence_vectors(hidden, inputs["attention_mask"], cfg.pooling)
                hard = labels if labels.dim() == 1 else labels[:, :-1].argmax(dim=1)
                contrast = supcon_loss(vectors, hard.repeat(copies), cfg.supcon_temperature)
                loss = loss + cfg.supcon_weight * contrast
            return (loss, outputs) if return_outputs else loss

        def training_step(self, model, inputs, num_items_in_batch=None):
            loss = super().training_step(model, inputs, num_items_in_batch)
            if cfg.fgm_epsilon == 0.0:
                return loss
            # FGM (Miyato et al. 2017): move the word embeddings eps along their (L2-
            # normalised) gradient, which only the rows of this batch's tokens have, add that
            # loss's gradient to the clean one, and move them back before the optimiser step.
            weight = self.accelerator.unwrap_model(model).get_input_embeddings().weight
            grad = weight.grad
            norm = torch.linalg.vector_norm(grad) if grad is not None else None
            if norm is None or not torch.isfinite(norm) or norm == 0:
                return loss
            delta = cfg.fgm_epsilon * grad / norm
            weight.data.add_(delta)
            try:
                with self.compute_loss_context_manager():
                    adversarial = self.compute_loss(
                        model, self._prepare_inputs(inputs), num_items_in_batch=num_items_in_batch
                    )
                self.accelerator.backward(adversarial)
            finally:
                weight.data.sub_(delta)
            return loss

    return RecipeTrainer


def _ddp_trainer():
    """A Trainer whose length-grouped train sampler shuffles identically on every rank."""
    import torch
    from transformers import Trainer

    class DDPTrainer(Trainer):
        def _get_train_sampler(self, train_dataset=None):
            sampler = super()._get_train_sampler(train_dataset)
            # Without a generator, LengthGroupedSampler shuffles with torch's global RNG, which
            # dropout consumes differently on each rank (their batches differ in length): from
            # epoch 2 on, ranks would shuffle differently and train on overlapping shards. Its
            # own seeded generator advances identically on every rank, epoch after epoch.
            if getattr(sampler, "generator", False) is None:
                sampler.generator = torch.Generator().manual_seed(self.args.data_seed)
            return sampler

    return DDPTrainer


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
    # scikit-learn caches id(stop_words), a memory address, on the vectorizer; it only guards a
    # warning (read with getattr). Dropped so the same data gives a byte-identical model.joblib.
    vars(pipeline.steps[0][1]).pop("_stop_words_id", None)
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
