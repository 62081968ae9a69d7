"""LIME attributions: a local linear model over word presence, fitted to perturbed copies.

``lime.lime_text.LimeTextExplainer`` with our word splitter and ``bow=False`` (each position is
its own feature, so a word repeated in a sentence gets one value per occurrence, aligned with
:func:`~finslm.explain.words.split_words`). Removed words are deleted (an empty mask string),
as in every other perturbation here. The weights are the ridge coefficients for the target
class's probability: roughly, how much that probability drops when the word is removed.

Cost: ``num_samples`` perturbed texts per sentence (fewer distinct ones reach the model).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from finslm.explain.scorer import Scorer
from finslm.explain.words import Word, split_words


def _split(text: str) -> list[str]:
    return [w.text for w in split_words(text)]


def lime_attributions(
    scorer: Scorer,
    text: str,
    words: Sequence[Word],
    target: int,
    num_samples: int = 120,
    seed: int = 0,
) -> np.ndarray:
    """LIME weight of each word for ``p(target)``; shape (len(words),)."""
    from lime.lime_text import LimeTextExplainer

    explainer = LimeTextExplainer(
        class_names=list(scorer.labels),
        split_expression=_split,
        bow=False,
        mask_string="",
        # Every word gets a weight: the stage wants all of them, and LIME's default
        # forward selection refits the model once per candidate word.
        feature_selection="none",
        random_state=seed % 2**32,
    )
    explanation = explainer.explain_instance(
        text,
        classifier_fn=lambda texts: scorer(list(texts)),
        labels=(target,),
        num_features=len(words),
        num_samples=max(int(num_samples), 2),
    )
    out = np.zeros(len(words), dtype=np.float64)
    n_features = explanation.domain_mapper.indexed_string.num_words()
    if n_features != len(words):  # LIME split the text differently: a bug here
        raise RuntimeError(f"lime found {n_features} words, expected {len(words)}")
    for feature, weight in explanation.as_map()[target]:
        out[int(feature)] = float(weight)
    return out
