"""Multiply-add counts from a config, checked against sums done by hand."""

from __future__ import annotations

import numpy as np
import pytest

from finslm.models import ModelError
from finslm.opcount import EncoderShape, padded_ops, sentence_ops

# 2 layers, hidden 32, FFN 64, 3 labels: a tiny BERT.
TINY = {
    "model_type": "bert",
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "intermediate_size": 64,
    "id2label": {"0": "negative", "1": "neutral", "2": "positive"},
}


def test_tiny_bert_count_equals_the_hand_computed_value():
    shape = EncoderShape.from_config(TINY)
    # One layer at 10 tokens: Q, K, V, output 4·10·32·32 = 40,960; scores and values
    # 2·10·10·32 = 6,400; FFN 2·10·32·64 = 40,960: 88,320. Two layers 176,640; the [CLS]
    # pooler 32·32 = 1,024 and the classifier 32·3 = 96.
    assert shape.macs(10) == 176_640 + 1_024 + 96
    mean_pool = EncoderShape.from_config({**TINY, "model_type": "finslm-meanpool-bert"})
    assert mean_pool.macs(10) == 176_640 + 96
    assert sentence_ops(mean_pool, [10, 10]) == 4 * mean_pool.macs(10)


def test_padding_is_counted_apart():
    shape = EncoderShape.from_config(TINY)
    lengths = [3, 10, 4]
    useful = sentence_ops(shape, lengths)
    one_batch = padded_ops(shape, lengths, [np.array([0, 1, 2])])
    assert one_batch == 2 * 3 * shape.macs(10) > useful
    # Batches of like lengths pad less; one per sentence pads nothing.
    assert padded_ops(shape, lengths, [np.array([0, 2]), np.array([1])]) < one_batch
    assert padded_ops(shape, lengths, [np.array([i]) for i in range(3)]) == useful
    # An engine padding to a multiple of 8 tokens runs 16 for the 10-token sentence, 8 for 3.
    assert padded_ops(shape, lengths, [np.array([0]), np.array([1])], multiple=8) == 2 * (
        shape.macs(8) + shape.macs(16)
    )


def test_distilbert_keys_and_a_model_folder(tiny_classifier):
    distil = {"model_type": "distilbert", "dim": 32, "n_layers": 2, "hidden_dim": 64}
    assert EncoderShape.from_config(distil).macs(10) == 176_640 + 32 * 2  # no pooler
    shape = EncoderShape.from_folder(tiny_classifier)
    assert (shape.layers, shape.labels) == (2, 3)
    assert shape.macs(20) > shape.macs(10) > 0


def test_a_config_without_sizes_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="hidden_size"):
        EncoderShape.from_config({"model_type": "gpt2"})
    with pytest.raises(ModelError, match="config.json"):
        EncoderShape.from_folder(tmp_path)
