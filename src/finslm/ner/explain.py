"""Which words drove one predicted entity: integrated gradients on the word embeddings.

For an entity spanning words ``a..b`` with type ``T``, the target is the sum of the logits of
its predicted tags (``B-T`` on word ``a``, ``I-T`` after) at the words' first sub-tokens; the
attribution of every sub-token (embedding x gradient along a straight path from the [PAD]
baseline, Sundararajan et al. 2017) is summed per word and scaled to sum |x| = 1.

    finslm ner explain "Dagny Fennimore joined Corvik Holdings."   # first entity

:func:`explain_examples` explains the first predicted entity of the first ``n`` sentences
that have one (file order: nothing is chosen by score), for the report's NER section.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from finslm.models import ModelError


class UnreadEntity(ModelError):
    """The entity lies past the sub-tokens the model reads in one pass (``max_length``): no
    gradient reaches it, so it cannot be explained in this text."""


def explain_entity(tagger, text: str, index: int = 0, steps: int = 16) -> dict[str, Any]:
    """IG word attributions for entity ``index`` of ``text`` (a torch-fp32 :class:`Tagger`).

    One forward pass reads the first ``tagger.max_length`` sub-tokens (tagging slides windows
    over longer texts, explaining does not): ``truncated`` says whether the text is longer,
    ``words_read`` how many of its words the model read (the others get attribution 0). An
    entity wholly past them raises :class:`UnreadEntity`."""
    import torch
    from captum.attr import LayerIntegratedGradients

    from finslm.ner.align import first_subtokens, split_words
    from finslm.ner.tags import spans, to_labels

    if tagger.backend != "torch-fp32":
        raise ModelError("explain needs the PyTorch model (models/<m>, backend torch-fp32)")
    words = split_words(text)
    if not words:
        raise ModelError("nothing to explain: the text has no words")
    tokens = [w for w, _, _ in words]
    ((tags, _),) = tagger.tag_words([tokens])
    found = spans(tags)
    if not found:
        return {"text": text, "entity": None, "words": []}
    if index >= len(found):
        raise ModelError(
            f"entity {index}: the text has {len(found)} predicted entities; choose 0 to "
            f"{len(found) - 1}"
        )
    kind, a, b = found[index]
    feeds, word_ids = tagger.encoder([tokens])
    first = first_subtokens(word_ids[0], len(tokens))
    covered = [w for w in word_ids[0] if w is not None]
    read = max(covered) + 1 if covered else 0  # truncation keeps a prefix of the words
    # The model's own label per word (an IO-labelled model has I-T where the tags say B-T).
    scheme = tagger.meta.get("tag_scheme", "iob2")
    label_ids = [tagger.labels.index(t) for t in to_labels(tags[a:b], scheme)]
    positions = [int(first[i]) for i in range(a, b) if first[i] >= 0]
    if not positions:
        start, end = words[a][1], words[b - 1][2]
        if a < read:  # inside the read words, yet no sub-token: nothing for a gradient to reach
            raise ModelError(
                f"entity {index} ({text[start:end]!r}): the tokenizer gives it no token"
            )
        raise UnreadEntity(
            f"entity {index} ({kind} {text[start:end]!r}, word {a + 1} of {len(tokens)}) lies "
            f"past the model's first {tagger.max_length} tokens (it reads words 1-{read} in one "
            "pass); explain a shorter excerpt that contains it"
        )
    model = tagger.model
    ids = torch.from_numpy(feeds["input_ids"])
    mask = torch.from_numpy(feeds["attention_mask"])
    extra = {}
    if "token_type_ids" in tagger._inputs:  # word shape rides on them (ner.models.<m>.word_shape)
        extra["token_type_ids"] = torch.from_numpy(feeds["token_type_ids"])

    def forward(input_ids, attention_mask):
        logits = model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits
        return sum(logits[:, p, k] for p, k in zip(positions, label_ids, strict=False))

    pad = tagger.encoder._tok.token_to_id("[PAD]") or 0
    baseline = torch.full_like(ids, pad)
    baseline[0, 0], baseline[0, -1] = ids[0, 0], ids[0, -1]  # keep [CLS] / [SEP]
    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    attr = lig.attribute(ids, baselines=baseline, additional_forward_args=(mask,), n_steps=steps)
    per_token = attr.sum(-1)[0].detach().numpy()
    scores = np.zeros(len(tokens))
    for t, w in enumerate(word_ids[0]):
        if w is not None:
            scores[w] += per_token[t]
    total = np.abs(scores).sum() or 1.0
    start, end = words[a][1], words[b - 1][2]
    return {
        "text": text,
        "entity": {"text": text[start:end], "type": kind, "start": start, "end": end},
        "truncated": read < len(tokens),
        "words_read": read,
        "words": [
            {"word": w, "start": s, "end": e, "attribution": round(float(x / total), 4)}
            for (w, s, e), x in zip(words, scores, strict=True)
        ],
    }


def explain_examples(
    tagger, sentences: list[list[str]], n: int, steps: int = 16, progress=None
) -> list[dict[str, Any]]:
    """IG explanations of the first predicted entity in each of the first ``n`` sentences
    (word lists, joined with spaces) that have one the model reads; fewer when fewer do."""
    out: list[dict[str, Any]] = []
    for tokens in sentences:
        if len(out) >= n:
            break
        try:
            result = explain_entity(tagger, " ".join(tokens), 0, steps)
        except UnreadEntity:
            continue
        if result["entity"] is not None:
            out.append(result)
            if progress is not None:
                progress(len(out))
    return out
