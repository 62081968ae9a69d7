"""Faithfulness of entity explanations: masking the words an explanation ranks highest."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from finslm.ner.faithfulness import entity_faithfulness, explanations_faithfulness, mask_token

LABELS = ["O", "B-ORG", "I-ORG"]


class CueTagger:
    """Word 0 is an ORG entity whose B-ORG logit rises by 3 when the cue word "Corp" is in the
    sentence and by 1 when the word itself is not masked: the cue and the entity word matter,
    the other words not at all. The interface explain/faithfulness use (no model)."""

    labels = LABELS
    meta = {"tag_scheme": "iob2"}

    class encoder:  # noqa: N801 (the Tagger attribute it stands for)
        class _tok:  # noqa: N801
            @staticmethod
            def token_to_id(token):
                return 103 if token == "[MASK]" else None

    def __init__(self):
        self.batches = 0

    def word_logits(self, words, batch_size=32, bucket=False):
        self.batches += 1
        out = []
        for sentence in words:
            logits = np.zeros((len(sentence), 3), dtype=np.float32)
            logits[:, 0] = 2.0
            logits[0, 1] = 1.0 + 3.0 * ("Corp" in sentence) + 1.0 * (sentence[0] != "[MASK]")
            out.append(logits)
        return out

    def tag_words(self, words, batch_size=32, bucket=False):
        return [
            ([LABELS[i] for i in np.argmax(lg, axis=1)], np.ones(len(lg)))
            for lg in self.word_logits(words)
        ]


def explanation(attributions):
    words = ["Acme", "rose", "after", "Corp", "said", "so", "today", "."]
    spans, at = [], 0
    for w in words:
        spans.append((w, at, at + len(w)))
        at += len(w) + 1
    return {
        "entity": {"text": "Acme", "type": "ORG", "start": 0, "end": 4},
        "words": [
            {"word": w, "start": s, "end": e, "attribution": a}
            for (w, s, e), a in zip(spans, attributions, strict=True)
        ],
    }


def test_an_explanation_that_ranks_the_cue_first_beats_random():
    tagger = CueTagger()
    good = explanation([0.3, 0.0, 0.0, 0.7, 0.0, 0.0, 0.0, 0.0])  # the cue, then the entity
    result = entity_faithfulness(tagger, good, seed=1)
    assert tagger.batches == 2  # tags once, then every masked variant in one call
    ig, rnd = result["ig"], result["random"]
    assert ig["comprehensiveness"] > rnd["comprehensiveness"] + 0.1
    assert ig["sufficiency"] < rnd["sufficiency"]
    assert ig["loo_spearman"] > 0.5
    # Masking the cue (the top 10% and 20%: one and two words) drops p; keeping only the top
    # words keeps the entity word and the cue, so p barely moves.
    assert ig["sufficiency"] == pytest.approx(0.0, abs=0.05)


def test_a_backwards_explanation_scores_below_a_good_one():
    tagger = CueTagger()
    good = entity_faithfulness(tagger, explanation([0.3, 0, 0, 0.7, 0, 0, 0, 0]))["ig"]
    bad = entity_faithfulness(tagger, explanation([-0.5, 0.2, 0.1, -0.7, 0.3, 0.1, 0.1, 0]))["ig"]
    assert bad["comprehensiveness"] < good["comprehensiveness"]
    assert bad["loo_spearman"] < 0 < good["loo_spearman"]


def test_summary_over_entities_and_empty():
    tagger = CueTagger()
    items = [explanation([0.3, 0, 0, 0.7, 0, 0, 0, 0])] * 3
    summary = explanations_faithfulness(tagger, items, seed=5)
    assert summary["n"] == 3 and summary["fractions"] == [0.1, 0.2, 0.5]
    assert set(summary["ig"]) == {"comprehensiveness", "sufficiency", "loo_spearman"}
    assert explanations_faithfulness(tagger, [], seed=5) == {
        "n": 0, "fractions": [0.1, 0.2, 0.5], "ig": {}, "random": {},
    }  # fmt: skip
    assert mask_token(tagger) == "[MASK]"


def test_random_floor_is_seeded():
    from finslm.explain.faithfulness import random_attributions

    np.testing.assert_array_equal(random_attributions(6, 3), random_attributions(6, 3))
    assert not np.array_equal(random_attributions(6, 3), random_attributions(6, 4))


def test_summary_seeds_each_entity_apart():
    tagger, items = CueTagger(), [explanation([0.3, 0, 0, 0.7, 0, 0, 0, 0])] * 3
    summary = explanations_faithfulness(tagger, items, seed=5)
    want = np.mean(
        [
            entity_faithfulness(tagger, e, seed=5 + i)["random"]["comprehensiveness"]
            for i, e in enumerate(items)
        ]
    )
    assert summary["random"]["comprehensiveness"] == pytest.approx(want)


class TwoWordTagger(CueTagger):
    """Words 0-1 are one ORG ("Acme Holdings"); word 1's I-ORG logit needs word 1 unmasked."""

    def word_logits(self, words, batch_size=32, bucket=False):
        self.batches += 1
        out = []
        for s in words:
            lg = np.zeros((len(s), 3), dtype=np.float32)
            lg[:, 0] = 2.0
            lg[0, 1] = 4.0
            lg[1, 2] = 1.0 + 3.0 * (s[1] != "[MASK]")
            out.append(lg)
        return out


def test_a_multi_word_entity_is_scored_over_all_its_words():
    words = ["Acme", "Holdings", "rose", "after", "said", "so", "today", "."]
    spans, at = [], 0
    for w in words:
        spans.append((w, at, at + len(w)))
        at += len(w) + 1
    attr = [0.0, 1.0, 0, 0, 0, 0, 0, 0]  # credits "Holdings", the word p depends on
    exp = {
        "entity": {"text": "Acme Holdings", "type": "ORG", "start": 0, "end": 13},
        "words": [
            {"word": w, "start": s, "end": e, "attribution": a}
            for (w, s, e), a in zip(spans, attr, strict=True)
        ],
    }
    ig = entity_faithfulness(TwoWordTagger(), exp)["ig"]
    assert ig["comprehensiveness"] > 0.1


def test_entity_faithfulness_masks_with_the_mask_token_when_the_tokenizer_has_one():
    """Words hidden for entity faithfulness become the tokenizer's mask token ([MASK]) when it
    has one; the unknown token is only the fallback."""
    from finslm.ner.faithfulness import mask_token

    vocab = {"[PAD]": 0, "[UNK]": 1, "[MASK]": 4}
    tagger = SimpleNamespace(encoder=SimpleNamespace(_tok=SimpleNamespace(token_to_id=vocab.get)))
    assert mask_token(tagger) == "[MASK]"
    del vocab["[MASK]"]
    assert mask_token(tagger) == "[UNK]"
