"""Mention replacement: same-type swaps, valid IOB2, context kept, seeded, training rows only."""

from __future__ import annotations

import random
import re

import pandas as pd
import pytest
import yaml

from finslm.config import ConfigError, NerModelConfig, load_ner_config
from finslm.ner.augment import augment_mentions, mention_inventory, replace_mentions
from finslm.ner.tags import orphan_positions, spans

ROWS = pd.DataFrame(
    {
        "tokens": [
            ["Velmont", "Bank", "lent", "to", "Dagny", "."],
            ["Corvik", "hired", "Oswin", "Tamber", "in", "Port", "Halden", "."],
            ["The", "term", "ends", "today", "."],
        ],
        "tags": [
            ["B-ORG", "I-ORG", "O", "O", "B-PER", "O"],
            ["B-ORG", "O", "B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"],
            ["O"] * 5,
        ],
    }
)


def context(tokens, tags):
    return [t for t, g in zip(tokens, tags, strict=True) if g == "O"]


def test_inventory_is_distinct_mentions_per_type():
    inv = mention_inventory(ROWS)
    assert inv == {
        "LOC": [("Port", "Halden")],
        "ORG": [("Corvik",), ("Velmont", "Bank")],
        "PER": [("Dagny",), ("Oswin", "Tamber")],
    }


def test_every_mention_swapped_for_another_of_its_type_at_p_1():
    inv = mention_inventory(ROWS)
    tokens, tags = list(ROWS.tokens[1]), list(ROWS.tags[1])
    new_tokens, new_tags = replace_mentions(tokens, tags, inv, random.Random(0), 1.0)
    assert len(new_tokens) == len(new_tags) and not orphan_positions(new_tags)
    assert context(new_tokens, new_tags) == context(tokens, tags)  # the context is untouched
    found = [(k, tuple(new_tokens[a:b])) for k, a, b in spans(new_tags)]
    # ORG and PER have another mention to take; LOC has one, so it stays.
    assert found == [("ORG", ("Velmont", "Bank")), ("PER", ("Dagny",)), ("LOC", ("Port", "Halden"))]


def test_copies_are_seeded_skip_entity_free_sentences_and_duplicates():
    out = augment_mentions(ROWS, copies=3, p=1.0, seed=7)
    assert out.iloc[:3].tokens.tolist() == ROWS.tokens.tolist()  # originals first, unchanged
    added = out.iloc[3:]
    assert 0 < len(added) <= 6  # two sentences with entities x 3 copies, duplicates dropped
    assert ["The", "term", "ends", "today", "."] not in added.tokens.tolist()
    assert len({tuple(t) for t in out.tokens}) == len(out)
    assert augment_mentions(ROWS, 3, 1.0, 7).tokens.tolist() == out.tokens.tolist()
    assert augment_mentions(ROWS, 0, 1.0, 7) is ROWS


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"mention_swap_p": 0}, "ner.models.n.mention_swap_p: got 0.0; must be in (0, 1]"),
        ({"mention_swap_copies": -1}, "mention_swap_copies: got -1; must be between 0 and 20"),
        ({"tag_scheme": "bilou"}, "ner.models.n.tag_scheme: got 'bilou'; allowed values: iob2, io"),
        # max_length's bounds: BERT's 512 positions, and room for a word or more.
        ({"max_length": 513}, "ner.models.n.max_length: got 513; must be between 16 and 512"),
        ({"max_length": 15}, "ner.models.n.max_length: got 15; must be between 16 and 512"),
    ],
)
def test_config_refuses_bad_ner_model_settings(tmp_path, patch, message):
    params = {
        "data": {},
        "models": {"m": {"kind": "transformer"}},
        "ner": {"models": {"n": patch}, "bench_model": "n"},
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_ner_config(path)
    assert NerModelConfig().mention_swap_copies == 0 and NerModelConfig().tag_scheme == "iob2"


def test_config_refuses_a_seed_numpy_would_refuse(tmp_path):
    params = {"data": {}, "models": {"m": {"kind": "transformer"}}, "ner": {"seed": -1}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match=r"ner\.seed: got -1; must be between 0 and 2\*\*32 - 1"):
        load_ner_config(path)
