"""Mean-pooling classification heads for BERT-family and MPNet encoders.

all-MiniLM-L6-v2 was trained as a sentence encoder with *mean pooling* over token states; the
stock ``BertForSequenceClassification`` head classifies the [CLS] state through a pooler the
sentence-transformers training never used. This head averages the token states the attention
mask keeps, then applies dropout and one linear layer.

all-mpnet-base-v2 (the teacher of issue #23) was trained the same way, so MPNet gets the same
head. Each config has its own ``model_type`` (``finslm-meanpool-bert``,
``finslm-meanpool-mpnet``), registered with the Auto classes by :func:`register` (the torch predictor and the exporter call it; it is not done at
import so that ONNX and TF-IDF consumers never load torch), so a saved model reloads with
``AutoModelForSequenceClassification.from_pretrained`` — and fails loudly, rather than silently
loading the wrong head, where it is not registered.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    BertConfig,
    BertModel,
    BertPreTrainedModel,
    MPNetConfig,
    MPNetModel,
    MPNetPreTrainedModel,
    PreTrainedModel,
)
from transformers.modeling_outputs import SequenceClassifierOutput

MODEL_TYPE = "finslm-meanpool-bert"
MPNET_MODEL_TYPE = "finslm-meanpool-mpnet"
_ENCODER_OPTIONS = ("position_ids", "inputs_embeds", "output_attentions", "output_hidden_states")


class MeanPoolBertConfig(BertConfig):
    model_type = MODEL_TYPE


class MeanPoolMPNetConfig(MPNetConfig):
    model_type = MPNET_MODEL_TYPE


class _MeanPoolHead:
    """Shared by the BERT and MPNet heads: dropout + linear on the masked mean of token states."""

    def _add_head(self, config) -> None:
        self.num_labels = config.num_labels
        dropout = getattr(config, "classifier_dropout", None)
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def _classify(self, encoder, input_ids, attention_mask, labels, extra, kwargs):
        if attention_mask is None:
            tokens = input_ids if input_ids is not None else kwargs["inputs_embeds"][..., 0]
            attention_mask = torch.ones_like(tokens, dtype=torch.long)
        # Pass-through options (output_attentions for attention explanations, inputs_embeds for
        # gradient methods, ...) reach the encoder, and what it returns reaches the caller.
        encoded = encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            **extra,
            **{k: v for k, v in kwargs.items() if k in _ENCODER_OPTIONS},
        )
        pooled = mean_pool(encoded.last_hidden_state, attention_mask)  # (batch, hidden)
        logits = self.classifier(self.dropout(pooled))  # (batch, num_labels)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.float(), labels)
        return SequenceClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )


class MeanPoolBertForSequenceClassification(_MeanPoolHead, BertPreTrainedModel):
    config_class = MeanPoolBertConfig
    base_model_prefix = "bert"

    def __init__(self, config: MeanPoolBertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self._add_head(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        extra = {"token_type_ids": token_type_ids}
        return self._classify(self.bert, input_ids, attention_mask, labels, extra, kwargs)


class MeanPoolMPNetForSequenceClassification(_MeanPoolHead, MPNetPreTrainedModel):
    """all-mpnet-base-v2's pooling. MPNet takes no token_type_ids (relative position bias
    instead), so neither the head's forward() nor its ONNX graph has that input."""

    config_class = MeanPoolMPNetConfig
    base_model_prefix = "mpnet"

    def __init__(self, config: MeanPoolMPNetConfig):
        super().__init__(config)
        self.mpnet = MPNetModel(config, add_pooling_layer=False)
        self._add_head(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        return self._classify(self.mpnet, input_ids, attention_mask, labels, {}, kwargs)


# Encoder model_type (as in a checkpoint's config.json) -> (mean-pooling config, head).
MEAN_POOL_HEADS = {
    "bert": (MeanPoolBertConfig, MeanPoolBertForSequenceClassification),
    MODEL_TYPE: (MeanPoolBertConfig, MeanPoolBertForSequenceClassification),
    "mpnet": (MeanPoolMPNetConfig, MeanPoolMPNetForSequenceClassification),
    MPNET_MODEL_TYPE: (MeanPoolMPNetConfig, MeanPoolMPNetForSequenceClassification),
}


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token states the mask keeps: (batch, seq, hidden) -> (batch, hidden)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def sentence_vectors(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str):
    """The sentence vector a head classifies (before its pooler/dropout): mean or [CLS] state."""
    return mean_pool(hidden, attention_mask) if pooling == "mean" else hidden[:, 0]


def register() -> None:
    """Make the Auto classes know the heads (idempotent)."""
    for config, head in (MEAN_POOL_HEADS[MODEL_TYPE], MEAN_POOL_HEADS[MPNET_MODEL_TYPE]):
        try:
            AutoConfig.register(config.model_type, config)
            AutoModelForSequenceClassification.register(config, head)
        except ValueError:  # already registered
            pass


@contextlib.contextmanager
def no_hf_progress():
    """transformers' "Loading weights" bars off inside (one per model is noise in the CLI and
    the logs), restored after."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def load_classifier(model_dir) -> PreTrainedModel:
    """A trained finslm classifier folder as its transformers model, the one way every consumer
    loads it (the torch Predictor, export, pruning, the targeted fine-tune, engine builds):
    finslm's heads registered, eager attention (the pattern the ONNX exporter traces and
    onnxruntime's optimizer fuses; no numerical difference), and no "Loading weights" bar."""
    register()
    with no_hf_progress():
        return AutoModelForSequenceClassification.from_pretrained(
            model_dir, attn_implementation="eager"
        )
