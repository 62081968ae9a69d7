"""Integrated Gradients over the word-embedding layer (captum ``LayerIntegratedGradients``).

The path runs from a baseline where every word piece's embedding is the [PAD] token's
([CLS]/[SEP] kept, so position and segment embeddings are unchanged) to the sentence, in
``n_steps`` Gauss-Legendre points evaluated as one batch. The explained output is the target
class's probability, like the perturbation methods, so by completeness a sentence's attributions
sum to about ``p(target | text) - p(target | baseline)``. Per piece, attributions are summed
over the embedding dimension; per word, over its pieces.

Runs the PyTorch model (gradients), whatever backend the perturbation methods use.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from finslm.explain.tokens import encode_words
from finslm.explain.words import Word, merge_to_words


def ig_attributions(
    torch_model, text: str, words: Sequence[Word], target: int, n_steps: int = 16
) -> tuple[np.ndarray, float]:
    """(IG attribution per word for ``p(target)``, shape (len(words),); convergence delta).

    The delta is ``sum(attributions) - (p(text) - p(baseline))``: near 0 when ``n_steps`` is
    enough for this sentence.
    """
    import torch
    from captum.attr import LayerIntegratedGradients

    model = torch_model.model
    enc = encode_words(torch_model, text, words)
    names = list(enc.inputs)  # input_ids first: captum attributes the first forward argument
    names.remove("input_ids")
    input_ids = enc.inputs["input_ids"]
    pad_id = getattr(torch_model.tokenizer, "pad_token_id", None) or 0
    special = torch.tensor(enc.special, device=input_ids.device).unsqueeze(0)
    baseline = torch.where(special, input_ids, torch.full_like(input_ids, pad_id))

    def forward(ids, *extra):
        kwargs = dict(zip(names, extra, strict=True))
        return torch.softmax(model(input_ids=ids, **kwargs).logits, dim=-1)

    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    attributions, delta = lig.attribute(
        inputs=input_ids,
        baselines=baseline,
        additional_forward_args=tuple(enc.inputs[n] for n in names),
        target=int(target),
        n_steps=int(n_steps),
        internal_batch_size=int(n_steps),
        return_convergence_delta=True,
    )
    per_token = attributions.sum(dim=-1)[0].detach().cpu().numpy()  # (seq,)
    return merge_to_words(per_token, enc.token_words, len(words)), float(delta.abs().item())
