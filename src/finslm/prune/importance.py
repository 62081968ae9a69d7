"""What to remove: FFN-neuron importance by first-order Taylor expansion, and which encoder
layers to drop by the validation loss measured with each one removed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import torch
from torch import nn

from finslm.prune.surgery import encoder

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]  # tokenizer output plus "labels"


def _loss(model, batch: Batch) -> torch.Tensor:
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs).logits.float()
    return nn.functional.cross_entropy(logits, batch["labels"], reduction="sum")


def ffn_importance(model, batches: Iterable[Batch]) -> list[torch.Tensor]:
    """Per layer, per FFN neuron: sum over sentences of |sum over tokens of a * dL/da|.

    ``a`` is the neuron's activation after the nonlinearity. The product estimates the loss
    change when the neuron is zeroed (Molchanov et al. 2017, "Pruning convolutional neural
    networks for resource efficient inference"); taking |.| per sentence keeps neurons that
    matter in opposite directions for different sentences. Padding tokens get no gradient.
    """
    layers = encoder(model).layer
    scores = [torch.zeros(layer.intermediate.dense.out_features) for layer in layers]
    handles = []

    def hook_for(i: int) -> Callable:
        def forward_hook(module, inputs, output):
            def grad_hook(grad):
                per_sentence = (output.detach() * grad).sum(dim=1)  # (batch, neurons)
                scores[i].add_(per_sentence.abs().sum(dim=0).float().cpu())

            output.register_hook(grad_hook)

        return forward_hook

    for i, layer in enumerate(layers):
        handles.append(layer.intermediate.register_forward_hook(hook_for(i)))
    was_training = model.training
    model.eval()  # no dropout: the importance of the network that will be kept
    try:
        for batch in batches:
            model.zero_grad(set_to_none=True)
            _loss(model, batch).backward()
    finally:
        for handle in handles:
            handle.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return scores


def top_neurons(scores: list[torch.Tensor], share: float) -> list[torch.Tensor]:
    """The indices of each layer's most important ``share`` of neurons (same count per layer)."""
    k = max(1, round(share * len(scores[0])))
    return [torch.topk(s, k).indices.sort().values for s in scores]


@torch.no_grad()
def mean_loss(model, batches: list[Batch]) -> float:
    model.eval()
    total = sum(_loss(model, b).item() for b in batches)
    return total / sum(len(b["labels"]) for b in batches)


@torch.no_grad()
def layers_to_keep(model, val_batches: list[Batch], keep: int, how: str) -> tuple[list[int], list]:
    """Which encoder layers to keep, and the trace of the choice.

    ``top`` keeps the bottom ``keep`` layers. ``importance`` removes, one at a time, the layer
    whose removal raises the mean validation loss least (every remaining candidate measured).
    """
    enc = encoder(model)
    n = len(enc.layer)
    if keep > n:
        raise ValueError(f"prune.layers_keep: {keep}; the model has only {n} layers")
    if how == "top":
        return list(range(keep)), []
    full = enc.layer
    kept = list(range(n))
    trace = [{"removed": None, "val_loss": round(mean_loss(model, val_batches), 4)}]
    try:
        while len(kept) > keep:
            losses = {}
            for cand in kept:
                enc.layer = nn.ModuleList([full[i] for i in kept if i != cand])
                losses[cand] = mean_loss(model, val_batches)
            drop = min(losses, key=losses.get)
            kept.remove(drop)
            trace.append(
                {
                    "removed": drop,
                    "val_loss": round(losses[drop], 4),
                    "candidates": {str(k): round(v, 4) for k, v in losses.items()},
                }
            )
            log.info("drop layer %d: val loss %.4f", drop, losses[drop])
    finally:
        enc.layer = full
    return kept, trace
