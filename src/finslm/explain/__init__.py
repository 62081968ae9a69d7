"""Explanations of a finslm model, how faithful they are, and where the model fails.

    >>> from finslm.explain import Explainer, MethodSettings
    >>> e = Explainer(onnx_predictor, torch_predictor).explain("Operating profit rose 12%.")
    >>> dict(zip([w.text for w in e.words], e.attributions["shap"]))

Modules, one per responsibility:

- ``words``: the word unit every method reports in (split, align word pieces, delete words);
- ``scorer``: batched, memoised predictor calls for perturbed texts;
- ``shap_``, ``lime_``: perturbation methods on any :class:`~finslm.predict.Predictor`;
- ``gradients`` (integrated gradients, captum), ``attention`` (rollout): PyTorch methods;
- ``attributions``: :class:`Explainer`, all methods on one sentence, timed;
- ``faithfulness``: comprehensiveness, sufficiency (AOPC) and leave-one-out rank correlation;
- ``analysis``: error analysis on validation and the recommendations file (+ its JSON schema);
- ``plots``, ``report``: the faithfulness and reliability PNGs, the HTML page;
- ``console``: coloured terminal output for ``finslm explain``;
- ``pipeline``: the explain stage's core.
"""

from finslm.explain.attributions import METHODS, Explainer, Explanation, MethodSettings
from finslm.explain.words import Word, split_words

__all__ = ["METHODS", "Explainer", "Explanation", "MethodSettings", "Word", "split_words"]
