"""LoRA fine-tuning (Hu et al. 2021) with ``peft``: adapters on the encoder, merged before saving.

    model = add_adapters(model, cfg.lora)    # encoder frozen, adapters + head trainable
    ...                                      # Trainer trains, restores the best epoch
    model = merge_adapters(model)            # a stock transformers model again

:func:`add_adapters` freezes every encoder weight and gives each linear layer named in
``target_modules`` a trainable low-rank update ``(alpha / r) * B @ A``. The classification head
(every child module of the model outside the encoder, and the encoder's pooler, which the
``cls`` head classifies through) trains in full: it is listed in ``modules_to_save``, so
Trainer's checkpoints (which for a peft model hold the adapter only) carry it too and the best
epoch is restored whole. :func:`merge_adapters` folds the updates into the base weights and
drops the wrappers (``merge_and_unload``): the saved folder has the same keys, shapes and
config as a fully fine-tuned model, so export, INT8, pruning, explanations and the benchmark
see nothing new.
"""

from __future__ import annotations

from typing import Any

from finslm.config import LoraConfig
from finslm.errors import ENTRY


def head_modules(model) -> list[str]:
    """Names of the modules that make up the classification head (trained in full)."""
    prefix = getattr(model, "base_model_prefix", "")
    names = [
        name
        for name, child in model.named_children()
        if name != prefix and any(True for _ in child.parameters())
    ]
    encoder = getattr(model, prefix, None) if prefix else None
    if encoder is not None and getattr(encoder, "pooler", None) is not None:
        names.append("pooler")  # the [CLS] head's dense layer (BertForSequenceClassification)
    return names


def add_adapters(model, cfg: LoraConfig):
    """``model`` wrapped by peft with LoRA adapters on ``cfg.target_modules``; only the adapters
    and the head (:func:`head_modules`) require gradients."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    from finslm.models import ModelError

    peft_cfg = PeftLoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(cfg.target_modules),
        modules_to_save=head_modules(model),
        bias="none",
    )
    try:
        return get_peft_model(model, peft_cfg)
    except ValueError as exc:  # no layer matched target_modules
        raise ModelError(
            f"{ENTRY}.lora.target_modules: {list(cfg.target_modules)}: {exc}; name "
            "linear layers of this encoder (BERT: query, key, value, dense)"
        ) from None


def merge_adapters(model):
    """The plain transformers model with the adapters folded into its weights (or ``model``
    itself when it has none)."""
    if not hasattr(model, "merge_and_unload"):
        return model
    return model.merge_and_unload()


def trainable_parameters(model) -> dict[str, Any]:
    """Parameters that receive gradients, the total, and their share (for the training summary)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": int(trainable), "total": int(total), "share": round(trainable / total, 5)}
