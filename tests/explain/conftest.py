"""Fixtures for the explain tests: a keyword classifier whose decisive word is known.

:class:`KeywordModel` is a one-head attention classifier built by hand, not trained: every
token attends to the word "surged" when it is present, and the [CLS] output reads that
attention's value, so "surged" turns the prediction from neutral to positive and nothing else
matters much (a small bag-of-words term with a random weight per word gives the other words
small, graded effects, as in a real model). It has the surface the explainers use — ``get_input_embeddings()``, ``forward(input_ids,
attention_mask, token_type_ids, output_attentions)`` returning ``.logits`` and ``.attentions`` —
so every method, gradients and attention included, runs on it unchanged.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from finslm.labels import LABELS
from finslm.predict import Predictor

KEYWORD = "surged"
# Invented sentences, each with the keyword somewhere other than first.
KEYWORD_SENTENCES = [
    "Quarterly revenue surged on strong demand for the new devices.",
    "The bank said that its lending volume surged in the second half.",
    "Orders from Asian customers surged 40 percent year on year.",
    "Shares in the retailer surged after the results were published.",
    "Operating profit surged to EUR 12 million from EUR 7 million.",
]


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    torch.set_num_threads(1)  # CPU-considerate, and deterministic


class KeywordModel(torch.nn.Module):
    """Embedding dims: 0 random noise, 1 "is the keyword", 2 constant 1 (the query)."""

    def __init__(self, vocab_size: int, keyword_id: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        weight = torch.zeros(vocab_size, 3)
        weight[:, 0] = torch.randn(vocab_size, generator=g)
        weight[:, 2] = 1.0
        weight[keyword_id, 1] = 1.0
        self.embeddings = torch.nn.Embedding.from_pretrained(weight, freeze=True)

    def get_input_embeddings(self):
        return self.embeddings

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, output_attentions=False):
        e = self.embeddings(input_ids)  # (batch, seq, 3)
        scores = e[..., 2].unsqueeze(-1) * (10.0 * e[..., 1]).unsqueeze(-2)  # (batch, seq, seq)
        if attention_mask is not None:
            scores = scores.masked_fill(attention_mask[:, None, :] == 0, -1e9)
        attention = scores.softmax(dim=-1)
        keyword = (attention @ e[..., 1:2]).squeeze(-1)[:, 0]  # (batch,): ~1 with the keyword
        mask = torch.ones_like(e[..., 0]) if attention_mask is None else attention_mask.float()
        # A small bag-of-words term: every other word nudges the decision a little.
        words = 0.1 * (e[..., 0] * mask).sum(-1) / mask.sum(-1)
        cls = keyword + words
        logits = torch.stack([torch.full_like(cls, -2.0), 4 - 8 * cls, 8 * cls - 4], dim=-1)
        attentions = (
            (attention.unsqueeze(1),) if output_attentions else None
        )  # (batch, 1 head, s, s)
        return SimpleNamespace(logits=logits, attentions=attentions)


class KeywordPredictor(Predictor):
    """A Predictor (and torch model view: ``model``, ``tokenizer``, ``max_length``) over KeywordModel."""

    backend = "torch-fp32"

    def __init__(self, tokenizer_dir: Path):
        super().__init__(Path(tokenizer_dir), {"labels": list(LABELS), "name": "keyword"})
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        self.max_length = 64
        keyword_id = self.tokenizer.convert_tokens_to_ids(KEYWORD)
        self.model = KeywordModel(self.tokenizer.vocab_size, keyword_id).eval()

    def _predict_batch(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        with torch.inference_mode():
            logits = self.model(enc["input_ids"], enc["attention_mask"]).logits
        return torch.softmax(logits, dim=-1).numpy()


@pytest.fixture(scope="session")
def keyword_predictor(tiny_checkpoint) -> KeywordPredictor:
    return KeywordPredictor(tiny_checkpoint)
