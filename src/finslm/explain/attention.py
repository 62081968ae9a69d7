"""Attention rollout (Abnar & Zuidema, 2020): how much of the [CLS] output flows from each word.

Per layer, attention is averaged over heads, the residual connection is added as an identity
(``0.5 * A + 0.5 * I``) and rows are renormalised; the layers' matrices are multiplied from the
first to the last, and the [CLS] row of the product is the share of the classifier's input that
traces back to each token. Word pieces are summed into words; [CLS]/[SEP] are dropped.

Rollout is class-agnostic and non-negative: it says where the model looks, not which way a
word pushes. It is ranked like the other methods in the faithfulness metrics, which is exactly
the test of whether "where it looks" explains the decision. One forward pass per sentence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from finslm.explain.tokens import encode_words
from finslm.explain.words import Word, merge_to_words


def rollout(attentions: Sequence, residual: float = 0.5) -> np.ndarray:
    """Rollout matrix (seq, seq) from per-layer attentions, each (heads, seq, seq)."""
    result = None
    for layer in attentions:
        a = np.asarray(layer, dtype=np.float64).mean(axis=0)
        a = (1.0 - residual) * a + residual * np.eye(a.shape[-1])
        a /= a.sum(axis=-1, keepdims=True)
        result = a if result is None else a @ result
    return result


def attention_attributions(torch_model, text: str, words: Sequence[Word]) -> np.ndarray:
    """Rollout share of each word in the [CLS] representation; shape (len(words),), >= 0."""
    import torch

    enc = encode_words(torch_model, text, words)
    with torch.inference_mode():
        out = torch_model.model(**enc.inputs, output_attentions=True)
    attentions = getattr(out, "attentions", None)
    if not attentions:
        raise RuntimeError(
            "the model returned no attentions; load it with attn_implementation='eager' "
            "(TorchPredictor does)"
        )
    matrix = rollout([a[0].float().cpu().numpy() for a in attentions])
    return merge_to_words(matrix[0], enc.token_words, len(words))
