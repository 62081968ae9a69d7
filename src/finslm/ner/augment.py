"""Mention replacement: training copies whose entity mentions are swapped for other mentions of
the same type (Dai & Adel 2020, "An Analysis of Simple Data Augmentation for Named Entity
Recognition", COLING).

A small corpus repeats a few names in a few contexts (SEC-filings FIN5: "Borrower" is 574 of
747 PER mentions, "Bank" 149 of 243 ORG), so a model can learn the names rather than the
contexts. Each copy replaces each mention, with probability ``p``, by a mention drawn uniformly
from the *distinct* mentions of its type in the same training split (rare names as often as
common ones). Only the training split is augmented, never validation or test.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import pandas as pd

from finslm.ner.tags import spans


def mention_inventory(rows: pd.DataFrame) -> dict[str, list[tuple[str, ...]]]:
    """Distinct mentions per entity type (sorted, so a seed gives the same draws)."""
    found: dict[str, set[tuple[str, ...]]] = {}
    for tokens, tags in zip(rows.tokens, rows.tags, strict=True):
        for kind, a, b in spans(list(tags)):
            found.setdefault(kind, set()).add(tuple(tokens[a:b]))
    return {kind: sorted(m) for kind, m in sorted(found.items())}


def replace_mentions(
    tokens: Sequence[str],
    tags: Sequence[str],
    inventory: dict[str, list[tuple[str, ...]]],
    rng: random.Random,
    p: float,
) -> tuple[list[str], list[str]]:
    """One copy of a sentence (IOB2 tags): each mention, with probability ``p``, becomes another
    mention of its type (a different one where the type has more than one)."""
    out_tokens: list[str] = []
    out_tags: list[str] = []
    pos = 0
    for kind, a, b in spans(list(tags)):
        out_tokens += tokens[pos:a]
        out_tags += tags[pos:a]
        mention = tuple(tokens[a:b])
        others = [m for m in inventory.get(kind, []) if m != mention]
        if others and rng.random() < p:
            mention = rng.choice(others)
        out_tokens += mention
        out_tags += [f"B-{kind}", *[f"I-{kind}"] * (len(mention) - 1)]
        pos = b
    return out_tokens + list(tokens[pos:]), out_tags + list(tags[pos:])


def augment_mentions(rows: pd.DataFrame, copies: int, p: float, seed: int) -> pd.DataFrame:
    """``rows`` plus ``copies`` mention-replaced copies of each sentence that has an entity;
    a copy identical to a sentence already present is dropped. ``attrs["copy_of"]`` lists,
    per appended copy, the position in ``rows`` of the sentence it was made from."""
    if copies <= 0:
        return rows
    rng = random.Random(seed)
    inventory = mention_inventory(rows)
    seen = {tuple(t) for t in rows.tokens}
    extra, copy_of = [], []
    for _ in range(copies):
        for k, (tokens, tags) in enumerate(zip(rows.tokens, rows.tags, strict=True)):
            if all(t == "O" for t in tags):
                continue
            new_tokens, new_tags = replace_mentions(list(tokens), list(tags), inventory, rng, p)
            if tuple(new_tokens) in seen:
                continue
            seen.add(tuple(new_tokens))
            extra.append({"tokens": new_tokens, "tags": new_tags})
            copy_of.append(k)
    if not extra:
        return rows
    out = pd.concat([rows[["tokens", "tags"]], pd.DataFrame(extra)], ignore_index=True)
    out.attrs["copy_of"] = copy_of
    return out
