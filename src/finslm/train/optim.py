"""Optimiser parameter groups for fine-tuning: layer-wise learning-rate decay (LLRD).

With decay ``d`` < 1 the classifier head (and pooler) trains at the full learning rate, the top
encoder layer at ``lr * d``, the one below at ``lr * d**2``, … and the embeddings at
``lr * d**(L + 1)`` (Howard & Ruder 2018, "ULMFiT"; Sun et al. 2019, "How to fine-tune BERT
for text classification"): lower layers hold general features, which a small labelled set
should move least. ``d = 1`` gives the ordinary single learning rate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# BERT "encoder.layer.3.", DistilBERT "transformer.layer.3.", RoBERTa/others "layers.3."
_LAYER = re.compile(r"(?:^|\.)layers?\.(\d+)\.")


def layer_depth(name: str, num_layers: int) -> int:
    """0 for embeddings, ``i + 1`` for encoder layer ``i``, ``num_layers + 1`` for the rest."""
    match = _LAYER.search(name)
    if match:
        return int(match.group(1)) + 1
    if "embeddings" in name:
        return 0
    return num_layers + 1  # pooler, classifier: the newest weights learn fastest


def layer_lr_groups(
    named_parameters: Iterable[tuple[str, object]],
    num_layers: int,
    lr: float,
    decay: float,
    weight_decay: float,
    decay_names: set[str],
) -> list[dict]:
    """AdamW-style groups: one per (depth, decays-or-not), each with its own ``lr``.

    ``decay_names`` are the parameters that get weight decay (Trainer's choice: not biases or
    LayerNorm). Frozen parameters (``requires_grad`` false) are left out.
    """
    if not 0 < decay <= 1:
        raise ValueError(f"layer_lr_decay must be in (0, 1], got {decay}")
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in named_parameters:
        if not getattr(param, "requires_grad", True):
            continue
        depth = layer_depth(name, num_layers)
        decays = name in decay_names
        group = groups.setdefault(
            (depth, decays),
            {
                "params": [],
                "lr": lr * decay ** (num_layers + 1 - depth),
                "weight_decay": weight_decay if decays else 0.0,
            },
        )
        group["params"].append(param)
    return [groups[key] for key in sorted(groups)]


class EncoderStageLoop:
    """The hand-written loop of the stages that train the encoder before fine-tuning (the
    contrastive stage, TAPT): batches shuffled with ``seed``; AdamW with linear warm-up over
    ``warmup_ratio`` of the steps, then linear decay to 0; gradients clipped to norm 1.

        loop = EncoderStageLoop(dataset, collator, params, lr, cfg, epochs, seed)
        for epoch in range(epochs):
            for batch in loop.loader: loop.step(loss_of(batch))
    """

    def __init__(self, dataset, collate_fn, params, lr: float, cfg, epochs: int, seed: int):
        import torch
        from torch.utils.data import DataLoader
        from transformers import get_linear_schedule_with_warmup

        self.loader = DataLoader(
            dataset,
            batch_size=cfg.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(seed),
            collate_fn=collate_fn,
        )
        self.params = [p for p in params if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=lr, weight_decay=cfg.weight_decay)
        self.total = epochs * len(self.loader)
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, int(cfg.warmup_ratio * self.total), self.total
        )

    def __len__(self) -> int:
        """Batches per epoch."""
        return len(self.loader)

    def step(self, loss) -> float:
        """Back-propagate ``loss``, clip, update, advance the schedule; the loss as a float."""
        import torch

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.detach())

    def close(self) -> None:
        """Drop the gradients (the model goes on to fine-tuning with fresh ones)."""
        self.optimizer.zero_grad(set_to_none=True)


def freeze_lower(model, n_layers: int) -> int:
    """Freeze the embeddings and encoder layers ``0 .. n_layers - 1`` of a HF classifier in
    place; return the number of parameters left trainable. ValueError if the model has no
    more than ``n_layers`` layers (nothing of the encoder would train)."""
    base = getattr(model, model.base_model_prefix)
    layers = base.encoder.layer
    if n_layers >= len(layers):
        raise ValueError(f"freeze_layers {n_layers}: the encoder has only {len(layers)} layers")
    base.embeddings.requires_grad_(False)
    for layer in layers[:n_layers]:
        layer.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
