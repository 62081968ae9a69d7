"""Long texts are tagged in overlapping windows: no word past ``max_length`` is lost."""

from __future__ import annotations

import numpy as np
import pytest

from finslm.ner.predict import Tagger, window_plan


@pytest.mark.parametrize(
    ("covered", "n", "expected"),
    [
        (10, 10, (10, 10)),  # everything fitted: one window
        (40, 50, (32, 24)),  # 16 words of overlap, 8 kept from each side
        (20, 50, (15, 10)),  # at most half the window overlaps
        (6, 50, (5, 3)),  # a short window: the overlap is half of it
        (1, 50, (1, 1)),
        (0, 50, (0, 1)),  # not even one word fitted: skip it
    ],
)
def test_window_plan(covered, n, expected):
    keep, step = window_plan(covered, n)
    assert (keep, step) == expected
    assert 1 <= step <= max(keep, 1)  # always progress, never a gap


class WindowedFake(Tagger):
    """One sub-token per word (a word starting with ``~`` takes ``width + 2``), truncation at
    ``width`` sub-tokens; a capitalised word scores B-ORG, anything else O."""

    def __init__(self, width: int):
        self.labels = ["O", "B-ORG", "I-ORG"]
        self.width = width
        self.windows: list[list[str]] = []
        self.decode = "argmax"

    def sub_logits(self, words):
        logits = np.zeros((len(words), self.width + 2, 3), dtype=np.float32)
        ids = []
        for r, sentence in enumerate(words):
            self.windows.append(sentence)
            wid, pos = [None], 1
            for w, word in enumerate(sentence):
                size = self.width + 2 if word.startswith("~") else 1
                if pos > 1 and pos + size > self.width + 1:
                    break
                logits[r, pos, 1 if word[:1].isupper() else 0] = 5.0
                wid += [w] * min(size, self.width + 1 - pos)
                pos += size
            ids.append(wid + [None] * (self.width + 2 - len(wid)))
        return logits, ids


def test_every_word_of_a_long_sentence_is_tagged():
    words = [f"Firm{i}" if i % 7 == 0 else f"w{i}" for i in range(100)]
    fake = WindowedFake(width=20)
    ((tags, _),) = fake.tag_words([words])
    assert tags == ["B-ORG" if i % 7 == 0 else "O" for i in range(100)]
    assert len(fake.windows) > 5 and all(len(w) <= 100 for w in fake.windows)
    assert fake.windows[1][0] == words[10]  # the second window overlaps half of the first


def test_a_sentence_of_no_words_is_tagged_empty_beside_others():
    fake = WindowedFake(width=20)
    (empty, _), (tags, _) = fake.tag_words([[], ["Acme", "rose"]])
    assert empty == [] and tags == ["B-ORG", "O"]
    assert fake.windows == [["Acme", "rose"]]  # the empty one never reached the model


def test_a_word_longer_than_a_window_is_scored_on_its_first_sub_token():
    words = ["Acme", "~" + "x" * 50, "said", "Velmont"]
    fake = WindowedFake(width=3)
    ((tags, _),) = fake.tag_words([words])
    assert tags == ["B-ORG", "O", "O", "B-ORG"]
    assert [w[0] for w in fake.windows] == ["Acme", words[1], "said"]


def test_bucketed_batches_keep_input_order():
    sentences = [[f"w{j}" for j in range(n)] + ["Zeta"] for n in (9, 1, 5, 3)]
    fake = WindowedFake(width=40)
    plain = fake.tag_words(sentences, batch_size=2)
    fake.windows.clear()
    bucketed = fake.tag_words(sentences, batch_size=2, bucket=True)
    assert [t for t, _ in plain] == [t for t, _ in bucketed]
    assert [len(w) for w in fake.windows] == [2, 4, 6, 10]  # shortest first


def test_entity_spans_are_exact_character_offsets():
    """Tagger.entities turns word tags into spans whose [start, end) slice the text back to the
    entity (end exclusive), with a multi-word entity spanning from its first to its last word;
    the model is stubbed, so this runs without one."""
    import numpy as np

    text = "Tamber Bank hired Marla today."
    tags = ["B-ORG", "I-ORG", "O", "B-PER", "O", "O"]  # Tamber Bank hired Marla today .
    tagger = Tagger.__new__(Tagger)
    probs = np.array([0.9, 0.6, 0.99, 0.7, 0.98, 0.97])  # each word's tag probability
    tagger.tag_words = lambda words, batch_size=32, bucket=False: [
        (tags[: len(w)], probs[: len(w)]) for w in words
    ]
    found = tagger.entities([text])[0]
    assert [(e["type"], e["start"], e["end"], e["text"]) for e in found] == [
        ("ORG", 0, 11, "Tamber Bank"), ("PER", 18, 23, "Marla"),
    ]  # fmt: skip
    assert all(text[e["start"] : e["end"]] == e["text"] for e in found)
    # An entity's score is the mean of its words' tag probabilities (not its first word's).
    assert [e["score"] for e in found] == [0.75, 0.7]
