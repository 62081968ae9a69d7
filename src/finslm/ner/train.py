"""Fine-tune a token classifier (``ner.models.<m>``) with transformers' ``Trainer``.

The recipe machinery is the sentiment models': :func:`finslm.train.arguments.training_arguments`
(epoch-wise evaluation, the best epoch restored, warm-up, seeded order),
:func:`finslm.train.determinism.set_determinism`, early stopping, DVCLive curves through
:func:`finslm.train.callbacks.live_callback`. What differs: the head (one label per sub-token),
sub-word alignment (:mod:`finslm.ner.align`), the metric the best epoch is chosen by (validation
entity micro-F1) and a class-weighted loss, since most tokens are ``O``.

    python stages/train_ner.py ner-minilm    # models/ner-minilm, metrics/train/ner-minilm.json
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from finslm.config import NerModelConfig
from finslm.errors import ENTRY
from finslm.models import ModelError, count_parameters, resolve_checkpoint, save_model, write_meta
from finslm.ner.align import IGNORE, encode_dataset, fit_to_length
from finslm.ner.augment import augment_mentions
from finslm.ner.context import document_context
from finslm.ner.evaluate import BEST_METRIC, entity_metrics, tags_from_logits
from finslm.ner.tags import label_list, to_labels
from finslm.train.arguments import training_arguments
from finslm.train.callbacks import live_callback
from finslm.train.determinism import set_determinism

log = logging.getLogger(__name__)

KIND = "ner-transformer"  # finslm.json kind of a trained token classifier
LIVE_KEYS = ("loss", BEST_METRIC, "entity_macro_f1", "token_accuracy")
# A refit trains for a fixed epoch count: nothing to evaluate, keep or restore.
NO_EVAL = {"eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False}


def load_token_classifier(spec: str, labels: list[str], trust_remote_code: bool = False):
    """(tokenizer, model) with a fresh token-classification head of ``labels`` on ``spec``."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    location = resolve_checkpoint(spec)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized head" is expected here
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code)
        model = AutoModelForTokenClassification.from_pretrained(
            location,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            ignore_mismatched_sizes=True,
            trust_remote_code=trust_remote_code,
            attn_implementation="eager",  # exports to ONNX in a form onnxruntime fuses
        )
    except OSError as exc:
        raise ModelError(
            f"checkpoint {spec!r}: could not load ({exc}). Offline? Use packaged:all-MiniLM-L6-v2 "
            "or a local folder."
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(
            f"checkpoint {spec!r}: token classification needs a fast tokenizer (word ids for "
            "sub-word alignment); this one is slow-only"
        )
    return tokenizer, model


def check_word_shape(model, spec: str) -> None:
    """``word_shape`` rides on the token type ids: the model must take them and have 2 types."""
    import inspect

    types = int(getattr(model.config, "type_vocab_size", 0) or 0)
    if "token_type_ids" not in inspect.signature(model.forward).parameters or types < 2:
        raise ModelError(
            f"{ENTRY}.word_shape: needs a model with token type ids of 2 or more types "
            f"(BERT, MiniLM); checkpoint {spec!r} ({model.config.model_type}) has {types}: "
            "set it to false"
        )


def class_weights(features: list[dict], n_labels: int, power: float) -> np.ndarray | None:
    """Loss weight per label: (n / (k * n_c)) ** power over labelled sub-tokens, mean 1."""
    if power == 0:
        return None
    counts = Counter(i for f in features for i in f["labels"] if i != IGNORE)
    n = sum(counts.values())
    freq = np.array([max(counts.get(i, 0), 1) for i in range(n_labels)], dtype=np.float64)
    w = (n / (n_labels * freq)) ** power
    return (w / w.mean()).astype(np.float32)


def trainer_metrics(labels: list[str], decode: str = "viterbi"):
    """Trainer ``compute_metrics``: entity micro/macro-F1 and token accuracy on validation,
    words decoded as the saved model's Tagger will decode them."""

    def compute(eval_pred) -> dict[str, float]:
        gold, pred = tags_from_logits(eval_pred.predictions, eval_pred.label_ids, labels, decode)
        m = entity_metrics(gold, pred)
        return {k: m[k] for k in (BEST_METRIC, "entity_macro_f1", "token_accuracy")}

    return compute


def contexts_of(rows: pd.DataFrame, augmented: pd.DataFrame, words: int) -> list:
    """Document context (:mod:`finslm.ner.context`) of each of ``augmented``'s rows: ``rows``'
    own, from ``rows`` only (one split), then each mention-replaced copy its original's."""
    own = document_context(rows, words)
    return own + [own[k] for k in augmented.attrs.get("copy_of", [])]


def refit_on_all(cfg, labels, rows, encode, loss_with, ckpt: str, *, epochs, seed, threads):
    """The chosen schedule again, from scratch, on train + validation ``rows`` (mention copies
    drawn from them as in training), no evaluation. Returns (trainer, summary)."""
    from transformers import DataCollatorForTokenClassification, Trainer

    augmented = augment_mentions(rows, cfg.mention_swap_copies, cfg.mention_swap_p, seed)
    refit_cfg = dataclasses.replace(cfg, epochs=epochs)
    set_determinism(seed, threads)
    tokenizer, model = load_token_classifier(cfg.checkpoint, labels, cfg.trust_remote_code)
    feats = encode(augmented, contexts_of(rows, augmented, cfg.context_words))
    trainer = Trainer(
        model=model,
        args=training_arguments(
            ckpt, refit_cfg, n_train=len(feats), seed=seed, schedule=cfg.lr_schedule, **NO_EVAL
        ),
        train_dataset=feats,
        data_collator=DataCollatorForTokenClassification(tokenizer),
        compute_loss_func=loss_with(class_weights(feats, len(labels), cfg.class_weight_power)),
    )
    begin = time.perf_counter()
    trainer.train()
    summary = {
        "epochs": epochs,
        "sentences": len(augmented),
        "seconds": round(time.perf_counter() - begin, 1),
    }
    return trainer, summary


# Over 80 lines on purpose: the Trainer set-up for token classification in one place (alignment, weights, callbacks).
def train_ner(
    cfg: NerModelConfig,
    types: list[str],
    train_df: pd.DataFrame,
    val_df: pd.DataFrame,
    out_dir: Path,
    *,
    name: str,
    live=None,
    seed: int = 42,
    threads: int = 0,
) -> dict[str, Any]:
    """Fine-tune ``cfg.checkpoint`` on (tokens, tags) rows; restore the best epoch by validation
    entity micro-F1; save to ``out_dir`` with ``finslm.json`` (kind ``ner-transformer``).

    Returns validation metrics of the restored model, epochs run, best epoch and timing.
    """
    import tempfile

    import torch
    from transformers import DataCollatorForTokenClassification, EarlyStoppingCallback, Trainer

    set_determinism(seed, threads)
    labels = label_list(types, cfg.tag_scheme)
    label2id = {label: i for i, label in enumerate(labels)}
    seen = {t for tags in train_df.tags for t in to_labels(tags, cfg.tag_scheme)}
    unknown = sorted(seen - set(labels))
    if unknown:
        raise ModelError(
            f"training tags {unknown} are not in the label set {labels}; the prepared data and "
            "ner.entity_types disagree: rerun `dvc repro prepare_ner`"
        )
    tokenizer, model = load_token_classifier(cfg.checkpoint, labels, cfg.trust_remote_code)
    if cfg.word_shape:
        check_word_shape(model, cfg.checkpoint)

    def encode(
        df: pd.DataFrame, contexts: list | None = None, split: str = "training"
    ) -> list[dict]:
        tokens, tags, contexts, n_split = fit_to_length(
            tokenizer,
            [list(t) for t in df.tokens],
            [list(t) for t in df.tags],
            cfg.max_length,
            contexts,
        )
        if n_split:
            log.warning(
                "%d of %d %s sentences are longer than max_length %d sub-tokens: each is split "
                "into pieces that fit, so no labelled word is cut off (a larger max_length "
                "keeps them whole)",
                n_split,
                len(df),
                split,
                cfg.max_length,
            )
        return encode_dataset(
            tokenizer,
            tokens,
            [to_labels(t, cfg.tag_scheme) for t in tags],
            label2id,
            cfg.max_length,
            word_shape=cfg.word_shape,
            contexts=contexts,
        )

    rows = augment_mentions(train_df, cfg.mention_swap_copies, cfg.mention_swap_p, seed)
    train_feats = encode(rows, contexts_of(train_df, rows, cfg.context_words), "training")
    val_feats = encode(val_df, document_context(val_df, cfg.context_words), "validation")
    weights = class_weights(train_feats, len(labels), cfg.class_weight_power)

    def loss_with(weights: np.ndarray | None):
        loss_weight = torch.tensor(weights) if weights is not None else None

        def compute_loss(outputs, target, num_items_in_batch=None):
            logits = outputs.logits
            return torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(),
                target.reshape(-1),
                weight=None if loss_weight is None else loss_weight.to(logits.device),
                ignore_index=IGNORE,
            )

        return compute_loss

    callbacks = [EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience)]
    if live is not None:
        callbacks.append(live_callback(live, keys=LIVE_KEYS))
    with tempfile.TemporaryDirectory(prefix="finslm-ner-ckpt-") as ckpt:
        args = training_arguments(
            ckpt,
            cfg,
            n_train=len(train_feats),
            seed=seed,
            schedule=cfg.lr_schedule,
            metric_for_best_model=BEST_METRIC,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train_feats,
            eval_dataset=val_feats,
            data_collator=DataCollatorForTokenClassification(tokenizer),
            compute_metrics=trainer_metrics(labels, cfg.decode),
            compute_loss_func=loss_with(weights),
            callbacks=callbacks,
        )
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        history = [h for h in trainer.state.log_history if f"eval_{BEST_METRIC}" in h]
        best = max(history, key=lambda h: h[f"eval_{BEST_METRIC}"])
        refit = None
        if cfg.refit:
            both = pd.concat([train_df, val_df]).reset_index(drop=True)
            trainer, refit = refit_on_all(
                cfg, labels, both, encode, loss_with, ckpt,
                epochs=int(round(best["epoch"])), seed=seed, threads=threads,
            )  # fmt: skip
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        save_model(trainer.model, tokenizer, out_dir)
        write_meta(
            out_dir,
            {
                "kind": KIND,
                "task": "token-classification",
                "name": name,
                "labels": labels,
                "entity_types": list(types),
                "checkpoint": cfg.checkpoint,
                "max_length": cfg.max_length,
                "word_shape": cfg.word_shape,
                "context_words": cfg.context_words,
                "decode": cfg.decode,
                "tag_scheme": cfg.tag_scheme,
                # Refit on train + validation: validation figures of this model are not held out.
                "refit_epochs": None if refit is None else refit["epochs"],
                "params": count_parameters(trainer.model),
                "seed": seed,
            },
        )
    return {
        "val": {k.removeprefix("eval_"): v for k, v in best.items() if k.startswith("eval_")},
        "epochs": len(history),
        "best_epoch": int(round(best["epoch"])),
        "seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / max(len(history), 1), 1),
        "params": count_parameters(trainer.model),
        "class_weights": None if weights is None else [round(float(w), 4) for w in weights],
        "train_sentences": len(rows),  # mention-replaced copies included
        # The saved model when refit: trained on train + validation for the restored epoch
        # count; "val" above is the selection run's (the last held-out validation figure).
        "refit": refit,
        "seed": seed,
    }
