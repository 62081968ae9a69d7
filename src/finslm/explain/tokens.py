"""One text -> the model's input tensors plus, for each token, the word it belongs to.

Gradient and attention methods score word pieces; :func:`encode_words` tokenises exactly as the
model's tokenizer does (truncated to ``max_length``) and maps each piece to its word with the
tokenizer's character offsets, so :func:`~finslm.explain.words.merge_to_words` can sum pieces
into words.

The torch side of an explanation needs an object with ``model`` (a PyTorch classifier taking
``input_ids``/``attention_mask``[/``token_type_ids``] and returning ``.logits``, and
``.attentions`` when asked), ``tokenizer`` (a fast Hugging Face tokenizer) and ``max_length``:
:class:`finslm.predict.TorchPredictor` is one.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from finslm.explain.words import Word, token_word_ids
from finslm.models import ModelError


@dataclass
class Encoded:
    inputs: dict[str, Any]  # name -> LongTensor (1, seq), only names model.forward accepts
    token_words: list[int | None]  # per token: word index, None for special tokens
    special: list[bool]  # per token: [CLS], [SEP] and the like


def forward_names(model) -> set[str]:
    """Argument names ``model.forward`` accepts (DistilBERT-style models take no token types)."""
    params = inspect.signature(model.forward).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return {"input_ids", "attention_mask", "token_type_ids"}
    return set(params)


def encode_words(torch_model, text: str, words: Sequence[Word]) -> Encoded:
    """Tokenise ``text`` for ``torch_model.model`` and align its tokens with ``words``."""
    tokenizer = torch_model.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(
            "explaining with gradients or attention needs a fast tokenizer (tokenizer.json) "
            "for character offsets; save the model with its fast tokenizer"
        )
    enc = tokenizer(
        text,
        return_tensors="pt",
        truncation=True,
        max_length=int(torch_model.max_length),
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    offsets = [tuple(int(v) for v in pair) for pair in enc.pop("offset_mapping")[0].tolist()]
    special = [bool(v) for v in enc.pop("special_tokens_mask")[0].tolist()]
    names = forward_names(torch_model.model)
    device = next(torch_model.model.parameters()).device
    inputs = {k: v.to(device) for k, v in enc.items() if k in names}
    return Encoded(inputs, token_word_ids(offsets, words, special), special)
