"""Cut a BERT-family classifier down in place: fewer encoder layers, narrower FFNs.

Both changes are expressible in a stock ``BertConfig`` (``num_hidden_layers``,
``intermediate_size``), so the result saves and reloads with ``from_pretrained`` and the ONNX
exporter and onnxruntime's attention fusion treat it like any BERT.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def encoder(model) -> nn.Module:
    """The encoder (``.layer`` list) of a BERT-family classifier; a clear error otherwise."""
    base = getattr(model, getattr(model, "base_model_prefix", "bert"), None)
    enc = getattr(base, "encoder", None)
    if enc is None or not hasattr(enc, "layer"):
        raise TypeError(
            f"{type(model).__name__}: pruning supports BERT-family encoders "
            "(model.<base>.encoder.layer[i].intermediate/output)"
        )
    return enc


def encoder_parameters(model) -> int:
    """Parameters in the transformer layers (embeddings and the classifier head excluded)."""
    return sum(p.numel() for p in encoder(model).parameters())


def keep_layers(model, keep: Sequence[int]) -> None:
    """Keep only encoder layers ``keep`` (indices into the current list), in their order."""
    enc = encoder(model)
    n = len(enc.layer)
    keep = sorted(set(keep))
    if not keep or keep[0] < 0 or keep[-1] >= n:
        raise ValueError(f"layers to keep {keep}: must be a non-empty subset of 0..{n - 1}")
    enc.layer = nn.ModuleList([enc.layer[i] for i in keep])
    for i, layer in enumerate(enc.layer):
        # Cache-aware attention indexes its layer; keep the indices dense after the cut.
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = i
    model.config.num_hidden_layers = len(keep)


def _linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    out_features, in_features = weight.shape
    layer = nn.Linear(in_features, out_features, bias=bias is not None)
    layer.to(dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer


def shrink_ffn(model, keep: Sequence[torch.Tensor]) -> None:
    """Keep FFN neurons ``keep[i]`` (indices, same count in every layer) of encoder layer i."""
    layers = encoder(model).layer
    if len(keep) != len(layers):
        raise ValueError(f"{len(keep)} neuron index sets for {len(layers)} layers")
    sizes = {len(k) for k in keep}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"every layer must keep the same, non-zero neuron count; got {sizes}")
    for layer, idx in zip(layers, keep, strict=True):
        idx = torch.as_tensor(sorted(int(i) for i in idx), dtype=torch.long)
        up, down = layer.intermediate.dense, layer.output.dense
        layer.intermediate.dense = _linear(
            up.weight[idx], None if up.bias is None else up.bias[idx]
        )
        layer.output.dense = _linear(down.weight[:, idx], down.bias)
    model.config.intermediate_size = sizes.pop()
