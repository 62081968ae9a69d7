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
