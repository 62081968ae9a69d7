"""How faithful is an attribution to the model? Measured by deleting the words it ranks highest.

Definitions (DeYoung et al., 2020, "ERASER"), all in probability of the explained class
``p = p(target | text)``, words ranked by attribution, highest (most supportive) first, and
``top_k`` = the first ``ceil(k * n_words)`` words for each fraction ``k`` in ``fractions``:

- **comprehensiveness** = mean over k of ``p - p(text without top_k)``. Higher is better: the
  words the method calls important carry the decision (AOPC of the deletion curve).
- **sufficiency** = mean over k of ``p - p(top_k alone)``. Lower is better: those words alone
  keep the decision.
- **loo_spearman**: Spearman rank correlation between the attributions and leave-one-out effects
  ``p - p(text without word i)``, per sentence (sentences with fewer than 3 words, or constant
  vectors, are skipped), averaged. Higher is better.

A random attribution (:func:`random_attributions`) is scored alongside as the floor every method
should clear. :func:`most_faithful` names the method with the best mean rank over the three.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from finslm.explain.scorer import Scorer
from finslm.explain.words import Word, keep_words, remove_words

DEFAULT_FRACTIONS: tuple[float, ...] = (0.1, 0.2, 0.5)
METRICS = ("comprehensiveness", "sufficiency", "loo_spearman")
# Direction of "better" for each metric (+1 higher, -1 lower), for ranking methods.
BETTER = {"comprehensiveness": 1, "sufficiency": -1, "loo_spearman": 1}


def top_counts(n_words: int, fractions: Sequence[float]) -> list[int]:
    """Words in each top-k set: ceil(k * n), at least 1, at most n."""
    return [min(n_words, max(1, math.ceil(k * n_words - 1e-9))) for k in fractions]


def ranking(attributions: np.ndarray) -> np.ndarray:
    """Word indices, most supportive first (ties: earlier word first)."""
    return np.argsort(-np.asarray(attributions, dtype=np.float64), kind="stable")


def random_attributions(n_words: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n_words)


def leave_one_out(scorer: Scorer, text: str, words: Sequence[Word], target: int) -> np.ndarray:
    """``p - p(text without word i)`` for each word; shape (n_words,)."""
    p = scorer([text])[0, target]
    texts = [remove_words(text, words, [i]) for i in range(len(words))]
    return p - scorer(texts)[:, target]


def deletion_curves(
    scorer: Scorer,
    text: str,
    words: Sequence[Word],
    target: int,
    attributions: np.ndarray,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> tuple[np.ndarray, np.ndarray]:
    """(comprehensiveness, sufficiency) at each fraction; each shape (len(fractions),)."""
    order = ranking(attributions)
    removed, kept = [], []
    for count in top_counts(len(words), fractions):
        top = set(order[:count].tolist())
        removed.append(remove_words(text, words, top))
        kept.append(keep_words(text, words, [i in top for i in range(len(words))]))
    probs = scorer([text, *removed, *kept])[:, target]
    p, n = probs[0], len(fractions)
    return p - probs[1 : 1 + n], p - probs[1 + n :]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho (average ranks for ties); NaN when undefined (n < 3 or a constant)."""
    from scipy.stats import rankdata

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(rankdata(a), rankdata(b))[0, 1])


def sentence_faithfulness(
    scorer: Scorer,
    text: str,
    words: Sequence[Word],
    target: int,
    attributions: np.ndarray,
    loo: np.ndarray,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> dict[str, object]:
    """The three metrics for one sentence, plus the curves they average."""
    comp, suff = deletion_curves(scorer, text, words, target, attributions, fractions)
    return {
        "comprehensiveness": float(comp.mean()),
        "sufficiency": float(suff.mean()),
        "loo_spearman": spearman(attributions, loo),
        "comprehensiveness_curve": comp.tolist(),
        "sufficiency_curve": suff.tolist(),
    }


def summarise(rows: Sequence[Mapping[str, object]]) -> dict[str, float]:
    """Mean of each metric over sentences (NaN-skipping for loo_spearman); NaN if none."""
    out = {}
    for key in METRICS:
        values = np.array([float(r[key]) for r in rows], dtype=np.float64)
        values = values[~np.isnan(values)]
        out[key] = float(values.mean()) if values.size else float("nan")
    return out


def mean_curves(rows: Sequence[Mapping[str, object]]) -> dict[str, list[float]]:
    """Mean comprehensiveness and sufficiency at each fraction over sentences."""
    return {
        key: np.mean([r[f"{key}_curve"] for r in rows], axis=0).tolist()
        for key in ("comprehensiveness", "sufficiency")
    }


def rank_methods(table: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Mean rank of each method over the three metrics (1 = best); NaN metrics rank last."""
    names = list(table)
    ranks = {name: [] for name in names}
    for key in METRICS:
        sign = BETTER[key]

        def sort_key(name, key=key, sign=sign):
            v = table[name][key]
            return (math.isnan(v), -sign * v if not math.isnan(v) else 0.0)

        for position, name in enumerate(sorted(names, key=sort_key), start=1):
            ranks[name].append(position)
    return {name: float(np.mean(r)) for name, r in ranks.items()}


def most_faithful(
    table: Mapping[str, Mapping[str, float]], exclude: Sequence[str] = ("random",)
) -> str:
    """The method with the best mean rank; ties go to higher comprehensiveness."""
    candidates = {m: v for m, v in table.items() if m not in exclude}
    if not candidates:
        raise ValueError("no method to rank")
    ranks = rank_methods(candidates)
    return min(candidates, key=lambda m: (ranks[m], -candidates[m]["comprehensiveness"]))
