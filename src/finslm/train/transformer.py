"""Fine-tune one transformer classifier with transformers' ``Trainer``.

Takes the train and validation splits only — the test split is never seen here — and writes a
finslm model folder that :func:`finslm.predict.load_predictor` opens.

    python stages/train.py minilm      # the DVC stage; see dvc.yaml
    torchrun --nproc_per_node=4 stages/train.py minilm   # data-parallel (DDP), same outputs

Under torchrun every process runs :func:`train_transformer`; ``models.<m>.batch_size`` is the
global batch (split evenly over the processes), so a run means the same with 1 or N of them.
Only rank 0 writes the model folder; the caller writes metrics and logs on rank 0 alone.

:func:`train_transformer` is four named steps: :func:`_prepare` (seed, load, encode),
:func:`_task_loss` (cross-entropy, class weights, smoothing, agreement targets),
:func:`_build_trainer` (arguments, callbacks, the recipe's Trainer) and :func:`_save`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from finslm.config import ConfigError, TransformerConfig
from finslm.errors import ENTRY
from finslm.models import count_parameters, load_for_finetuning, save_classifier
from finslm.train.arguments import training_arguments
from finslm.train.callbacks import live_callback, weight_averager
from finslm.train.dataset import (
    EncodedSplit,
    agreement_targets,
    class_weights,
    warn_truncated,
)
from finslm.train.determinism import set_determinism
from finslm.train.distributed import checkpoint_dir, ddp_backend, init_distributed, per_device_batch
from finslm.train.lora import add_adapters, merge_adapters, trainable_parameters
from finslm.train.losses import soft_target_loss
from finslm.train.metrics import restored_summary, trainer_metrics
from finslm.train.optim import freeze_lower


@dataclass
class _Run:
    """What the steps of one fine-tuning run share."""

    tokenizer: Any
    model: Any
    train_ds: EncodedSplit
    val_ds: EncodedSplit
    world: int
    per_device: int
    contrastive: dict[str, Any] | None = None


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
    finslm/train/recipe.py); the saved model still names ``cfg.checkpoint`` as its origin.

    Returns the training summary: validation metrics of the restored model, epochs run, best
    epoch, seconds, seconds per epoch, parameter count and world size (processes).

    Under torchrun every rank calls this (Trainer wraps the model in DDP) and gets the same
    summary; only rank 0 writes ``out_dir``. ``cfg.batch_size`` is the global batch.
    """
    run = _prepare(cfg, train_df, val_df, seed, threads, init_from)
    task_loss = _task_loss(cfg, train_df)
    averager = weight_averager(cfg.swa_from_epoch) if cfg.swa_from_epoch else None
    trainable = trainable_parameters(run.model)["trainable"]
    with checkpoint_dir(run.world) as ckpt_dir:
        trainer = _build_trainer(cfg, run, task_loss, ckpt_dir, seed, live, averager)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        swa = averager.apply(trainer.model) if averager is not None else None
        if cfg.lora.r:
            # The restored adapters folded into the base weights: what is saved, and what
            # the validation summary below scores, is a stock model.
            trainer.model = trainer.model_wrapped = merge_adapters(trainer.model)
        if trainer.is_world_process_zero():
            _save(cfg, trainer, run.tokenizer, out_dir)
    summary = restored_summary(trainer, run.val_ds, seconds)
    extra: dict[str, Any] = {"contrastive": run.contrastive} if run.contrastive else {}
    if swa is not None:
        extra["swa"] = swa
    return {
        **extra,
        **summary,
        "params": count_parameters(trainer.model),
        "trainable_params": trainable,
        "peak_rss_mb": peak_rss_mb(),
        "world_size": run.world,
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (``getrusage``; Linux reports KiB)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def _prepare(cfg, train_df, val_df, seed: int, threads: int, init_from) -> _Run:
    """Join the process group, seed, load the checkpoint and encode both splits.

    The optional SetFit-style contrastive stage runs here too, on the encoder, before the head
    trains; the RNG is then re-seeded so fine-tuning's stream is what it would be without it.
    """
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
    train_ds = EncodedSplit(
        tokenizer, train_df.text.tolist(), train_df.label.tolist(), cfg.max_length, targets
    )
    val_ds = EncodedSplit(tokenizer, val_df.text.tolist(), val_df.label.tolist(), cfg.max_length)
    warn_truncated({"train": train_ds, "val": val_ds}, cfg.max_length)
    if cfg.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    if cfg.freeze_layers:
        try:
            freeze_lower(model, cfg.freeze_layers)
        except ValueError as exc:
            raise ConfigError(f"{ENTRY}.freeze_layers: {exc}") from None
    run = _Run(tokenizer, model, train_ds, val_ds, world, per_device)
    if cfg.contrastive_epochs:
        from transformers import DataCollatorWithPadding

        from finslm.train.contrastive import contrastive_stage

        # Under torchrun every rank runs the same stage on the whole split (same seed, same
        # weights); DDP then starts from rank 0's copy, so the ranks agree either way.
        collator = DataCollatorWithPadding(tokenizer)
        run.contrastive = contrastive_stage(model, train_ds, collator, cfg, seed)
        set_determinism(seed, threads)  # fine-tuning's RNG stream as without the stage
    if cfg.lora.r:  # after the contrastive stage, which tunes the whole encoder
        run.model = add_adapters(model, cfg.lora)
    return run


def _task_loss(cfg: TransformerConfig, train_df: pd.DataFrame):
    """The per-batch loss: cross-entropy with optional class weights and label smoothing, or
    the soft-target loss when a batch carries agreement targets (training only)."""
    import torch

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

    return task_loss


def _build_trainer(cfg, run: _Run, task_loss, ckpt_dir: str, seed: int, live, averager):
    """The Trainer for one run: shared arguments plus DDP options, early stopping, SWA, DVCLive."""
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer

    args = training_arguments(
        ckpt_dir,
        cfg,
        n_train=len(run.train_ds),
        seed=seed,
        per_device_batch=run.per_device,
        schedule=cfg.lr_schedule,
        # compute_loss is a per-rank mean and DDP averages gradients over ranks; with
        # this on, Trainer would multiply the loss by the world size (no-op for 1 process).
        average_tokens_across_devices=False,
        ddp_backend=ddp_backend() if run.world > 1 else None,
        # Both heads (cls, mean) use every parameter; this skips DDP's per-step graph walk.
        # A hub model with unused weights fails at once with DDP's message naming them.
        ddp_find_unused_parameters=False,
        save_on_each_node=run.world > 1,
    )
    callbacks = [EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience)]
    if averager is not None:
        callbacks.append(averager)
    if live is not None:
        callbacks.append(live_callback(live))
    trainer_cls = _recipe_trainer(Trainer if run.world == 1 else _ddp_trainer(), cfg, task_loss)

    def compute_loss(outputs, labels, num_items_in_batch=None):
        return task_loss(outputs.logits, labels)

    return trainer_cls(
        model=run.model,
        args=args,
        train_dataset=run.train_ds,
        eval_dataset=run.val_ds,
        data_collator=DataCollatorWithPadding(run.tokenizer),
        compute_metrics=trainer_metrics,
        compute_loss_func=compute_loss,
        callbacks=callbacks,
    )


def _save(cfg: TransformerConfig, trainer, tokenizer, out_dir: Path) -> None:
    """Rank 0 writes the restored model, its tokenizer and finslm.json."""
    save_classifier(trainer.model, tokenizer, out_dir, cfg)


# Over 80 lines on purpose: a Trainer subclass closed over the recipe's settings.
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
