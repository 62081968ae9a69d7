"""How faithful is an entity explanation? Measured by masking the words it ranks highest.

The sentence side's definitions (:mod:`finslm.explain.faithfulness`, DeYoung et al. 2020,
"ERASER") for one predicted entity. ``p`` is the entity's score as ``finslm ner predict``
reports it: the mean probability of its predicted tags over its words. Words are *masked*
(replaced by the tokenizer's mask token), not deleted, so the entity keeps its positions and
``p`` stays defined whichever words go; ``top_k`` = the ``ceil(k * n_words)`` words with the
highest attribution, for each fraction ``k``:

- **comprehensiveness** = mean over k of ``p - p(top_k masked)``: higher is better;
- **sufficiency** = mean over k of ``p - p(every word but top_k masked)``: lower is better;
- **loo_spearman**: Spearman correlation of the attributions with the leave-one-out effects
  ``p - p(word i masked)``: higher is better.

Seeded random attributions are scored on the same sentences as the floor a method should clear.
The entity's own words are ranked like any other: an explanation that credits them is right
to, and a random one credits them only by chance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from finslm.explain.faithfulness import (
    DEFAULT_FRACTIONS,
    random_attributions,
    ranking,
    spearman,
    summarise,
    top_counts,
)
from finslm.ner.tags import to_labels

MASK = "[MASK]"


def mask_token(tagger) -> str:
    """The tokenizer's mask token when it has one (BERT, MPNet), else its unknown token."""
    tok = tagger.encoder._tok
    for candidate in (MASK, "<mask>", "[UNK]", "<unk>"):
        if tok.token_to_id(candidate) is not None:
            return candidate
    return MASK


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def entity_scores(
    tagger, variants: Sequence[Sequence[str]], span: range, label_ids: Sequence[int]
) -> np.ndarray:
    """``p`` for each word list in ``variants`` (all as long as the original): the mean
    probability of ``label_ids`` at the entity's word positions ``span``."""
    out = []
    for logits in tagger.word_logits([list(v) for v in variants]):
        probs = _softmax(logits.astype(np.float64))
        out.append(np.mean([probs[i, k] for i, k in zip(span, label_ids, strict=True)]))
    return np.asarray(out)


def _masked(words: Sequence[str], hide: set[int], mask: str) -> list[str]:
    return [mask if i in hide else w for i, w in enumerate(words)]


def entity_faithfulness(
    tagger,
    explanation: dict[str, Any],
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """The three metrics for one explained entity (an :func:`finslm.ner.explain.explain_entity`
    result), for its attributions (``ig``) and for random ones (``random``)."""
    words = [w["word"] for w in explanation["words"]]
    attributions = np.array([w["attribution"] for w in explanation["words"]], dtype=np.float64)
    ent = explanation["entity"]
    inside = [
        i for i, w in enumerate(explanation["words"]) if ent["start"] <= w["start"] < ent["end"]
    ]
    span = range(inside[0], inside[-1] + 1)
    ((tags, _),) = tagger.tag_words([words])
    labels = to_labels(tags[span.start : span.stop], tagger.meta.get("tag_scheme", "iob2"))
    label_ids = [tagger.labels.index(t) for t in labels]
    mask, n = mask_token(tagger), len(words)
    counts = top_counts(n, fractions)
    methods = {"ig": attributions, "random": random_attributions(n, seed)}
    # One batch: the sentence, each word masked alone, then per method and fraction the top
    # words masked and everything but them masked.
    variants = [words] + [_masked(words, {i}, mask) for i in range(n)]
    for attr in methods.values():
        order = ranking(attr)
        for count in counts:
            top = set(order[:count].tolist())
            variants.append(_masked(words, top, mask))
            variants.append(_masked(words, set(range(n)) - top, mask))
    p = entity_scores(tagger, variants, span, label_ids)
    loo = p[0] - p[1 : 1 + n]
    out, width = {}, 2 * len(counts)
    for m, (name, attr) in enumerate(methods.items()):
        block = p[1 + n + width * m : 1 + n + width * (m + 1)]
        out[name] = {
            "comprehensiveness": float(np.mean(p[0] - block[0::2])),
            "sufficiency": float(np.mean(p[0] - block[1::2])),
            "loo_spearman": spearman(attr, loo),
        }
    return out


def explanations_faithfulness(
    tagger, explanations: Sequence[dict[str, Any]], seed: int = 0
) -> dict[str, Any]:
    """Mean metrics over explained entities: ``{"n", "fractions", "ig": {...}, "random": {...}}``
    (each entity's random attribution seeded ``seed + its index``)."""
    rows = [entity_faithfulness(tagger, e, seed=seed + i) for i, e in enumerate(explanations)]
    out: dict[str, Any] = {"n": len(rows), "fractions": list(DEFAULT_FRACTIONS)}
    for name in ("ig", "random"):
        out[name] = summarise([r[name] for r in rows]) if rows else {}
    return out
