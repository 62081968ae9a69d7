"""SHAP attributions: the Partition explainer over a text masker that deletes whole words.

``shap.maskers.Text`` is given :class:`~finslm.explain.words.WordTokenizer`, so its features
are the words of :func:`~finslm.explain.words.split_words` and its hierarchy (the partition
tree shap builds from the text) groups neighbouring words. Masked words are deleted rather than
replaced by a mask string, the same perturbation LIME, leave-one-out and the faithfulness
metrics use. The explained output is the probability of the target class, so a word's value is
its (Owen-value) share of ``p(target | text) - p(target | empty text)``.

Cost: at most ``max_evals`` model calls per sentence, fewer for short sentences (the tree is
exhausted first); each distinct masked text is predicted once by the :class:`Scorer`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from finslm.explain.scorer import Scorer
from finslm.explain.words import Word, WordTokenizer


def import_shap():
    """``import shap`` with its numba kernels left as plain Python.

    shap compiles a dozen ``@njit`` helpers on first use, 5-10 s per process on this CPU (there
    is no on-disk cache for them), while for sentences of a few dozen words the same helpers
    run in milliseconds as Python. ``numba.config.DISABLE_JIT`` is read when a function is
    decorated, so it is switched on only while shap is imported (the first time) and restored:
    other numba users in the process are unaffected.
    """
    import sys
    import warnings

    if "shap" in sys.modules:
        return sys.modules["shap"]
    import numba

    previous = numba.config.DISABLE_JIT
    numba.config.DISABLE_JIT = True
    try:
        with warnings.catch_warnings():  # shap's plotting colormaps use deprecated matplotlib calls
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            import shap
    finally:
        numba.config.DISABLE_JIT = previous
    return shap


def shap_attributions(
    scorer: Scorer,
    text: str,
    words: Sequence[Word],
    target: int,
    max_evals: int = 120,
    batch_size: int = 64,
    seed: int = 0,
) -> np.ndarray:
    """Owen values of each word for ``p(target)``; shape (len(words),)."""
    shap = import_shap()

    masker = shap.maskers.Text(WordTokenizer(), mask_token="...", collapse_mask_token=True)
    # "..." is only a placeholder for the constructor (it needs a token id for its mask); an
    # empty mask string deletes masked words instead of writing "..." in their place.
    masker.mask_token = ""

    def model(texts) -> np.ndarray:  # (n,) probability of the target class
        return scorer([str(t) for t in texts])[:, target]

    explainer = shap.explainers.Partition(model, masker)
    # The Partition explainer breaks ties with the global numpy RNG: seed it per sentence so an
    # explanation does not depend on what was explained before it, then restore the state.
    # (The state is set from a private RandomState: the same stream as seeding, and nothing of
    # the caller's global RNG changes.)
    state = np.random.get_state()
    np.random.set_state(np.random.RandomState(seed % 2**32).get_state())
    try:
        explanation = explainer(
            [text], max_evals=max(int(max_evals), 4), batch_size=batch_size, silent=True
        )
    finally:
        np.random.set_state(state)
    values = np.asarray(explanation.values[0], dtype=np.float64).reshape(-1)
    if values.shape[0] != len(words):  # the masker split the text differently: a bug here
        raise RuntimeError(f"shap returned {values.shape[0]} values for {len(words)} words")
    return values
