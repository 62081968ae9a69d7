"""Augmented transfer text for distillation: perturbed copies of training sentences that the
teacher labels (TinyBERT's recipe, Jiao et al. 2020, with offline word substitutes).

Each copy of a sentence drops words (``word_dropout``) and swaps words for a near neighbour
(``word_swap``). Neighbours come from a model's own input word-piece embeddings (cosine
similarity between whole-word vocabulary entries), so no word list or network is needed. A
swap may change the sentence's meaning ("rose" -> "fell"): that is the point, since the
teacher, not the original label, scores every copy. Only training sentences are perturbed.
"""

from __future__ import annotations

import random
import re

import numpy as np

from finslm.finetune.augment import match_case

_WORD = re.compile(r"^[a-z]{3,}$")
_PUNCT = ".,;:!?\"'()"  # stripped from a whitespace word's ends to find the word itself


def words_of(texts: list[str]) -> set[str]:
    """The distinct words of ``texts`` (whitespace split, outer punctuation stripped)."""
    return {w.strip(_PUNCT) for t in texts for w in t.split()}


def _whole_words(vocab: dict[str, int]) -> tuple[list[str], np.ndarray]:
    words = sorted(w for w in vocab if _WORD.match(w))
    return words, np.array([vocab[w] for w in words])


def embedding_neighbours(
    model, tokenizer, words: set[str], k: int = 5, min_similarity: float = 0.4
) -> dict[str, list[str]]:
    """For each lower-case word in ``words`` that is one whole word-piece of ``tokenizer``'s
    vocabulary: up to ``k`` other whole words whose input embeddings in ``model`` are nearest
    (cosine, at least ``min_similarity``), nearest first."""
    import torch

    vocab = tokenizer.get_vocab()
    candidates, ids = _whole_words(vocab)
    wanted = sorted(w for w in {w.lower() for w in words} if _WORD.match(w) and w in vocab)
    if not wanted or len(candidates) < 2:
        return {}
    with torch.no_grad():
        table = model.get_input_embeddings().weight.float()
        cand = torch.nn.functional.normalize(table[torch.as_tensor(ids)], dim=-1)
        position = {w: i for i, w in enumerate(candidates)}
        out: dict[str, list[str]] = {}
        for start in range(0, len(wanted), 1024):
            chunk = wanted[start : start + 1024]
            sims = cand[[position[w] for w in chunk]] @ cand.T
            for row, word in enumerate(chunk):
                sims[row, position[word]] = -1.0
            top = torch.topk(sims, min(k, len(candidates) - 1), dim=-1)
            for row, word in enumerate(chunk):
                near = [
                    candidates[j]
                    for s, j in zip(
                        top.values[row].tolist(), top.indices[row].tolist(), strict=True
                    )
                    if s >= min_similarity
                ]
                if near:
                    out[word] = near
    return out


def perturb(
    text: str,
    rng: random.Random,
    neighbours: dict[str, list[str]],
    word_dropout: float,
    word_swap: float,
) -> str:
    """One perturbed copy of ``text`` (whitespace words; punctuation stays attached)."""
    out = []
    for word in text.split():
        core = word.strip(_PUNCT)
        choices = neighbours.get(core.lower())
        draw = rng.random()
        if choices and draw < word_swap:
            out.append(word.replace(core, match_case(rng.choice(choices), core), 1))
        elif core and draw >= 1.0 - word_dropout:
            continue
        else:
            out.append(word)
    return " ".join(out)


def augment_texts(
    texts: list[str],
    neighbours: dict[str, list[str]],
    copies: int,
    word_dropout: float,
    word_swap: float,
    seed: int,
    min_words: int = 3,
) -> list[tuple[int, str]]:
    """Up to ``copies`` perturbed copies per text as (source row, text), in source order.

    A copy identical to its source, to a training sentence or to an earlier copy, or with
    fewer than ``min_words`` words, is drawn again (at most 5 tries) and otherwise left out:
    the teacher scores distinct new text only.
    """
    rng = random.Random(seed)
    seen = set(texts)
    out: list[tuple[int, str]] = []
    for row, text in enumerate(texts):
        for _ in range(copies):
            for _try in range(5):
                copy = perturb(text, rng, neighbours, word_dropout, word_swap)
                if copy not in seen and len(copy.split()) >= min_words:
                    seen.add(copy)
                    out.append((row, copy))
                    break
    return out
