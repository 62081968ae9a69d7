"""Training losses beyond plain cross-entropy."""

from __future__ import annotations

from collections.abc import Callable


def rdrop_loss(logits_a, logits_b, labels, task_loss: Callable, alpha: float):
    """R-Drop (Liang et al. 2021, "R-Drop: Regularized Dropout for Neural Networks").

    ``logits_a`` and ``logits_b`` are two forward passes of the same batch under different
    dropout masks. The loss is the mean of their task losses plus ``alpha`` times the symmetric
    KL divergence between their predicted distributions (batch mean), which pushes the model to
    predict the same thing whichever sub-network dropout picks.
    """
    import torch.nn.functional as F

    task = 0.5 * (task_loss(logits_a, labels) + task_loss(logits_b, labels))
    log_a = F.log_softmax(logits_a.float(), dim=-1)
    log_b = F.log_softmax(logits_b.float(), dim=-1)
    kl = 0.5 * (
        F.kl_div(log_a, log_b, log_target=True, reduction="batchmean")
        + F.kl_div(log_b, log_a, log_target=True, reduction="batchmean")
    )
    return task + alpha * kl


def supcon_loss(features, labels, temperature: float = 0.1):
    """Supervised contrastive loss (Khosla et al. 2020, "Supervised Contrastive Learning").

    ``features``: ``(n, d)`` sentence vectors (L2-normalised here); ``labels``: ``(n,)`` class
    ids. For each anchor the other same-label rows of the batch are positives and every other
    row is in the denominator; the loss is the mean over positives of ``-log softmax`` of the
    cosine similarities / ``temperature``, averaged over the anchors that have a positive. A
    batch where no label repeats has no positive pair: the loss is 0 (and still differentiable).
    """
    import torch
    import torch.nn.functional as F

    z = F.normalize(features.float(), dim=1)
    n = z.shape[0]
    sim = z @ z.T / temperature  # (n, n)
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_mask, float("-inf"))  # an anchor is not its own contrast
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask  # (n, n)
    counts = positives.sum(dim=1)
    has_positive = counts > 0
    if not has_positive.any():
        return features.sum() * 0.0
    pos_log_prob = log_prob.masked_fill(~positives, 0.0).sum(dim=1)
    return -(pos_log_prob[has_positive] / counts[has_positive]).mean()


def soft_target_loss(logits, targets, smoothing: float = 0.0, class_weight=None):
    """Weighted cross-entropy against ``agreement_targets`` rows (distribution + weight)."""
    import torch

    k = logits.shape[1]
    dist, weight = targets[:, :k], targets[:, k]
    if smoothing:
        dist = (1.0 - smoothing) * dist + smoothing / k
    if class_weight is not None:
        weight = weight * class_weight.to(logits.device)[dist.argmax(dim=1)]
    ce = -(dist * torch.log_softmax(logits, dim=1)).sum(dim=1)
    return (weight * ce).sum() / weight.sum()
