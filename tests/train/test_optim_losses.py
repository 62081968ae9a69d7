"""Layer-wise learning-rate decay groups, the R-Drop loss and the supervised contrastive loss."""

from __future__ import annotations

import pytest
import torch

from finslm.train.losses import rdrop_loss, supcon_loss
from finslm.train.optim import layer_depth, layer_lr_groups


@pytest.mark.parametrize(
    ("name", "depth"),
    [
        ("bert.embeddings.word_embeddings.weight", 0),
        ("bert.encoder.layer.0.attention.self.query.weight", 1),
        ("bert.encoder.layer.5.output.dense.bias", 6),
        ("distilbert.transformer.layer.2.ffn.lin1.weight", 3),
        ("model.layers.11.mlp.up_proj.weight", 12),
        ("bert.pooler.dense.weight", 7),
        ("classifier.weight", 7),
    ],
)
def test_layer_depth_reads_bert_distilbert_and_decoder_names(name, depth):
    assert layer_depth(name, num_layers=6) == depth


def _named(*names):
    return [(n, torch.nn.Parameter(torch.zeros(1))) for n in names]


def test_groups_decay_geometrically_from_the_head_down():
    params = _named(
        "bert.embeddings.word_embeddings.weight",
        "bert.embeddings.LayerNorm.weight",
        "bert.encoder.layer.0.attention.self.query.weight",
        "bert.encoder.layer.1.output.dense.weight",
        "classifier.weight",
        "classifier.bias",
    )
    decays = {
        "bert.embeddings.word_embeddings.weight",
        "bert.encoder.layer.0.attention.self.query.weight",
        "bert.encoder.layer.1.output.dense.weight",
        "classifier.weight",
    }
    groups = layer_lr_groups(
        params, num_layers=2, lr=1.0, decay=0.5, weight_decay=0.01, decay_names=decays
    )
    by_param = {id(p): g for g in groups for p in g["params"]}
    lr = {n: by_param[id(p)]["lr"] for n, p in params}
    wd = {n: by_param[id(p)]["weight_decay"] for n, p in params}
    assert lr["classifier.weight"] == lr["classifier.bias"] == 1.0
    assert lr["bert.encoder.layer.1.output.dense.weight"] == 0.5
    assert lr["bert.encoder.layer.0.attention.self.query.weight"] == 0.25
    assert lr["bert.embeddings.word_embeddings.weight"] == 0.125
    assert wd["classifier.bias"] == wd["bert.embeddings.LayerNorm.weight"] == 0.0
    assert wd["classifier.weight"] == 0.01
    assert sum(len(g["params"]) for g in groups) == len(params)  # each parameter exactly once


def test_decay_one_is_a_single_learning_rate_and_frozen_params_are_left_out():
    params = _named("bert.embeddings.x", "bert.encoder.layer.0.y", "classifier.weight")
    params[0][1].requires_grad_(False)
    groups = layer_lr_groups(params, 1, lr=3e-4, decay=1.0, weight_decay=0.0, decay_names=set())
    assert {g["lr"] for g in groups} == {3e-4}
    assert sum(len(g["params"]) for g in groups) == 2
    with pytest.raises(ValueError, match="layer_lr_decay"):
        layer_lr_groups(params, 1, lr=1.0, decay=1.5, weight_decay=0.0, decay_names=set())


def test_rdrop_is_the_task_loss_when_both_passes_agree_and_grows_when_they_differ():
    ce = torch.nn.functional.cross_entropy
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5]])
    labels = torch.tensor([0, 1])
    assert rdrop_loss(logits, logits, labels, ce, alpha=4.0).item() == pytest.approx(
        ce(logits, labels).item()
    )
    other = torch.tensor([[0.0, 2.0, -1.0], [0.5, 0.0, 1.0]])
    task = 0.5 * (ce(logits, labels) + ce(other, labels))
    kl_ab = torch.nn.functional.kl_div(
        other.log_softmax(-1), logits.softmax(-1), reduction="batchmean"
    )
    kl_ba = torch.nn.functional.kl_div(
        logits.log_softmax(-1), other.softmax(-1), reduction="batchmean"
    )
    expected = task + 2.0 * 0.5 * (kl_ab + kl_ba)
    assert rdrop_loss(logits, other, labels, ce, alpha=2.0).item() == pytest.approx(expected.item())
    # Symmetric in the two passes.
    assert rdrop_loss(other, logits, labels, ce, 2.0).item() == pytest.approx(expected.item())


def _supcon_reference(z, labels, tau):
    """Khosla et al.'s SupCon loss, one anchor at a time (the vectorised one must equal it)."""
    z = torch.nn.functional.normalize(z, dim=1)
    losses = []
    for i in range(len(z)):
        others = [a for a in range(len(z)) if a != i]
        positives = [p for p in others if labels[p] == labels[i]]
        if not positives:
            continue
        denom = torch.logsumexp(torch.stack([z[i] @ z[a] / tau for a in others]), 0)
        losses.append(-torch.stack([z[i] @ z[p] / tau - denom for p in positives]).mean())
    return torch.stack(losses).mean()


def test_supcon_matches_the_per_anchor_definition():
    torch.manual_seed(0)
    z = torch.randn(7, 5)
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 2])
    assert supcon_loss(z, labels, 0.2).item() == pytest.approx(
        _supcon_reference(z, labels, 0.2).item(), rel=1e-5
    )
    # An anchor without a positive (label 3 appears once) is left out, not counted as 0.
    lone = torch.tensor([0, 1, 0, 2, 1, 0, 3])
    assert supcon_loss(z, lone, 0.2).item() == pytest.approx(
        _supcon_reference(z, lone, 0.2).item(), rel=1e-5
    )


def test_supcon_is_lower_when_classes_cluster_and_zero_without_pairs():
    labels = torch.tensor([0, 0, 1, 1])
    clustered = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    mixed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    assert supcon_loss(clustered, labels, 0.1) < supcon_loss(mixed, labels, 0.1)
    z = torch.randn(3, 4, requires_grad=True)
    loss = supcon_loss(z, torch.tensor([0, 1, 2]), 0.1)
    assert loss.item() == 0.0
    loss.backward()  # still part of the graph: a batch of distinct labels does not crash a step
    assert torch.equal(z.grad, torch.zeros_like(z))
