"""Words <-> sub-tokens: the first sub-token of a word carries its label, the rest are ignored.

Training labels (:func:`align_labels`) put the word's label id on its first sub-token and
``IGNORE`` (-100, skipped by the loss) on the other sub-tokens and on special tokens.
Prediction reads a word's scores off its first sub-token (:func:`word_scores`); a word cut off
by ``max_length`` (windows make that rare) is predicted ``O``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from finslm.ner.context import NO_CONTEXT, Context, join, less

IGNORE = -100
# Words of raw text for prediction, close to how CoNLL files are tokenised: alphanumeric runs
# joined by . , & ' - / (U.S., AT&T, 1,250.5, Smith-Jones), every other non-space character
# alone, and an abbreviation's period kept on it (Inc., Corp., Mr., U.S.).
# A combining mark (decomposed "n" + U+0303) or a soft hyphen inside a run stays in its word.
_RUN = (
    r"[^\W_](?:[^\W_]|[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f\u00ad])*"
)
_WORD = re.compile(rf"{_RUN}(?:[.,&'’\-/]{_RUN})*|\S")
_ABBREVIATION = re.compile(
    r"^(?:Inc|Corp|Co|Ltd|Plc|Bros|Mr|Mrs|Ms|Dr|Jr|Sr|St|Ave|No|Nos|Dept|Sec|Ch|(?:[A-Za-z]\.)+[A-Za-z])$"
)


def split_words(text: str) -> list[tuple[str, int, int]]:
    """``(word, start, end)`` character spans of ``text`` (end exclusive)."""
    out: list[tuple[str, int, int]] = []
    for m in _WORD.finditer(text):
        word, start, end = m.group(), m.start(), m.end()
        if word == "." and out and out[-1][2] == start and _ABBREVIATION.match(out[-1][0]):
            prev = out.pop()
            out.append((prev[0] + ".", prev[1], end))
            continue
        out.append((word, start, end))
    return out


def align_labels(
    word_ids: Sequence[int | None], tags: Sequence[str | None], label2id: dict[str, int]
) -> list[int]:
    """Label ids per sub-token: the word's label on its first sub-token, IGNORE elsewhere
    (and on every sub-token of a word tagged ``None``: document context, not labelled)."""
    out, prev = [], None
    for w in word_ids:
        out.append(IGNORE if w is None or w == prev or tags[w] is None else label2id[tags[w]])
        prev = w
    return out


def first_subtokens(word_ids: Sequence[int | None], n_words: int) -> np.ndarray:
    """Index of each word's first sub-token (-1: the word was truncated away)."""
    first = np.full(n_words, -1, dtype=np.int64)
    for i, w in enumerate(word_ids):
        if w is not None and w < n_words and first[w] < 0:
            first[w] = i
    return first


def word_scores(
    sub_scores: np.ndarray, word_ids: Sequence[int | None], n_words: int, o_index: int = 0
) -> np.ndarray:
    """(n_words, n_labels) scores from one sentence's (seq, n_labels) sub-token scores.

    A truncated word gets a one-hot ``O`` row (probability 1 on O) — it is not silently dropped.
    """
    first = first_subtokens(word_ids, n_words)
    out = np.zeros((n_words, sub_scores.shape[-1]), dtype=np.float32)
    out[:, o_index] = 1.0
    seen = first >= 0
    out[seen] = sub_scores[first[seen]]
    return out


def shape_type_ids(words: Sequence[str], word_ids: Sequence[int | None]) -> list[int]:
    """Word shape as token type ids: 1 on every sub-token of a word that starts with a capital
    letter, 0 elsewhere (lower case, digits, punctuation, special tokens, padding).

    An uncased tokenizer (all-MiniLM-L6-v2's) lowercases "Apple" and "apple" alike; names of
    people, companies and places are capitalised, so NER loses its strongest surface cue. With
    ``ner.models.<m>.word_shape: true`` the model's token type embedding (BERT has two rows)
    carries that bit instead: no new input, so the ONNX graph and every backend stay as they are.
    """
    return [0 if w is None or not words[w][:1].isupper() else 1 for w in word_ids]


def fit_to_length(
    tokenizer,
    tokens: list[list[str]],
    tags: list[list[str]],
    max_length: int,
    contexts: Sequence[Context] | None = None,
) -> tuple[list[list[str]], list[list[str]], list[Context], int]:
    """Split every sentence whose sub-tokens do not fit in ``max_length`` (special tokens
    included) into consecutive pieces that do, at word boundaries, so that no labelled word is
    cut off in training or in the validation metric (``prepare_ner``'s windows count words, and
    a word of digits can be many sub-tokens). A piece that starts inside an entity starts with
    ``B-`` (IOB2 in, IOB2 out); pieces get no document context. A single word longer than the
    budget is a piece of its own (its own first sub-token still carries its label).

    Returns (tokens, tags, contexts, sentences split).
    """
    from finslm.ner.tags import to_iob2

    contexts = list(contexts) if contexts is not None else [NO_CONTEXT] * len(tokens)
    budget = max(max_length - tokenizer.num_special_tokens_to_add(pair=False), 1)
    enc = tokenizer([list(t) for t in tokens], is_split_into_words=True, add_special_tokens=False)
    out_tokens, out_tags, out_contexts, split = [], [], [], 0
    for j, (words, word_tags) in enumerate(zip(tokens, tags, strict=True)):
        word_ids = enc.word_ids(j)
        if len(word_ids) <= budget:
            out_tokens.append(list(words))
            out_tags.append(list(word_tags))
            out_contexts.append(contexts[j])
            continue
        split += 1
        sizes = np.bincount([w for w in word_ids if w is not None], minlength=len(words))
        start, used = 0, 0
        for k, size in enumerate(sizes):
            if k > start and used + size > budget:
                out_tokens.append(list(words[start:k]))
                out_tags.append(to_iob2(word_tags[start:k]))
                out_contexts.append(NO_CONTEXT)
                start, used = k, 0
            used += size
        out_tokens.append(list(words[start:]))
        out_tags.append(to_iob2(word_tags[start:]))
        out_contexts.append(NO_CONTEXT)
    return out_tokens, out_tags, out_contexts, split


def encode_dataset(
    tokenizer,
    tokens: list[list[str]],
    tags: list[list[str]],
    label2id,
    max_length,
    word_shape: bool = False,
    contexts: Sequence[Context] | None = None,
):
    """Training/validation features: input ids, attention mask, token type ids (word shape
    with ``word_shape``), aligned labels.

    ``contexts``: per sentence, document words before and after it (:mod:`finslm.ner.context`),
    encoded around the sentence and never labelled. Where the whole does not fit in
    ``max_length`` the context is halved until the sentence's last word fits (down to none),
    as :meth:`finslm.ner.predict.Tagger.word_logits` does at prediction time.
    """
    contexts = list(contexts) if contexts is not None else [NO_CONTEXT] * len(tokens)
    features: list[dict | None] = [None] * len(tokens)
    todo, keep = list(range(len(tokens))), 1.0
    while todo:
        joined = [join(tokens[i], contexts[i], keep) for i in todo]
        enc = tokenizer(
            [w for w, _ in joined], is_split_into_words=True, truncation=True, max_length=max_length
        )
        later = []
        for j, (i, (words, at)) in enumerate(zip(todo, joined, strict=True)):
            word_ids = enc.word_ids(j)
            cut = at + len(tokens[i]) - 1 not in word_ids
            if cut and keep > 0 and (contexts[i][0] or contexts[i][1]):
                later.append(i)  # the sentence's tail was cut: less context
                continue
            word_tags: list[str | None] = [None] * len(words)
            word_tags[at : at + len(tokens[i])] = tags[i]
            row = {k: enc[k][j] for k in enc}
            row["labels"] = align_labels(word_ids, word_tags, label2id)
            if word_shape:
                row["token_type_ids"] = shape_type_ids(words, word_ids)
            features[i] = row
        todo, keep = later, less(keep)
    return features
