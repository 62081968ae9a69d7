"""Seeds and thread counts: the same seed and thread count give the same weights on CPU.

Every training loop (train@<m>, soups, TAPT, the contrastive stage, distillation, pruning's
recovery, the targeted fine-tune and its mining) seeds through :func:`set_determinism`.
"""

from __future__ import annotations


def set_determinism(seed: int, threads: int = 0) -> None:
    """Same seed and thread count -> same weights on CPU (reductions depend on thread count).

    Seeds what ``transformers.set_seed`` seeds (``random``, NumPy, torch on every device) without
    importing ``transformers.trainer_utils``, which pulls in peft (~3 s of start-up in the stages
    that train with their own loop)."""
    import random

    import numpy as np
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # every device's generator
