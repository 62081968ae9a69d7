"""A rule-based stand-in for :class:`finslm.ner.predict.Tagger` (fast serving and bulk tests).

Runs of capitalised words after the first word are ``ORG`` entities, a word after "in" is
``LOC``: answers anyone can work out by hand, with the Tagger's interface (``task``, ``name``,
``backend``, ``labels``, ``meta``, ``files``, ``num_parameters``, ``lengths``, ``entities``).
"""

from __future__ import annotations

from pathlib import Path

from finslm.ner.align import split_words
from finslm.ner.tags import spans


class FakeTagger:
    task = "token-classification"
    backend = "rules"

    def __init__(self, folder: Path):
        self.model_dir = Path(folder)
        self.labels = ["O", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
        self.meta = {"name": "fake-ner", "labels": self.labels, "max_length": 64}
        self.calls: list[list[str]] = []

    @property
    def name(self) -> str:
        return f"fake-ner/{self.backend}"

    def files(self) -> list[Path]:
        return []

    def num_parameters(self) -> int:
        return 0

    def lengths(self, texts) -> list[int]:
        return [len(split_words(t)) + 2 for t in texts]

    @staticmethod
    def tags(words: list[str]) -> list[str]:
        out: list[str] = []
        for i, word in enumerate(words):
            if i and words[i - 1] == "in" and word[:1].isupper():
                out.append("B-LOC")
            elif i and word[:1].isupper():
                out.append("I-ORG" if out[-1] in ("B-ORG", "I-ORG") else "B-ORG")
            else:
                out.append("O")
        return out

    def entities(self, texts, batch_size: int = 32) -> list[list[dict]]:
        self.calls.append(list(texts))
        found = []
        for text in texts:
            words = split_words(text)
            found.append(
                [
                    {
                        "text": text[words[a][1] : words[b - 1][2]],
                        "type": kind,
                        "start": words[a][1],
                        "end": words[b - 1][2],
                        "score": 0.9,
                    }
                    for kind, a, b in spans(self.tags([w for w, _, _ in words]))
                ]
            )
        return found
