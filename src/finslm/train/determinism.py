"""Seeds and thread counts: the same seed and thread count give the same weights on CPU.

Every training loop (train@<m>, soups, TAPT, the contrastive stage, distillation, pruning's
recovery, the targeted fine-tune and its mining) seeds through :func:`set_determinism`.
"""

from __future__ import annotations


def set_determinism(seed: int, threads: int = 0) -> None:
    """Same seed and thread count -> same weights on CPU (reductions depend on thread count)."""
    import torch
    from transformers import set_seed

    if threads > 0:
        torch.set_num_threads(threads)
    set_seed(seed)
