"""Explain one sentence with every method, word-aligned, timed.

    >>> explainer = Explainer(onnx_predictor, torch_predictor, MethodSettings(shap_max_evals=200))
    >>> e = explainer.explain("Operating profit rose to EUR 13.1 mn.")
    >>> e.words[2].text, e.attributions["shap"][2]    # 'rose', its SHAP value for p(predicted)
    >>> e.to_record()                                   # JSON: words, one value per word per method

Methods (:data:`METHODS`): ``shap`` and ``lime`` perturb the text and call the perturbation
predictor (in deployment, the ONNX INT8 graph) in batches through a :class:`Scorer`; ``ig``
(integrated gradients) and ``attention`` (rollout) need the PyTorch model. Every method explains
the same number, the probability of the target class (by default the predicted one), and returns
one value per word of :func:`~finslm.explain.words.split_words`; larger means more support for
the target class (attention is non-negative: importance without a direction).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from finslm.errors import FinslmError
from finslm.explain.scorer import Scorer
from finslm.explain.words import Word, split_words

METHODS: tuple[str, ...] = ("shap", "lime", "ig", "attention")


class ExplainError(FinslmError, ValueError):
    """A request the explainer cannot take (an unknown method, a text with no words)."""


PERTURBATION_METHODS = frozenset({"shap", "lime"})
TORCH_METHODS = frozenset({"ig", "attention"})
METHOD_TITLES = {
    "shap": "SHAP (partition)",
    "lime": "LIME",
    "ig": "Integrated Gradients",
    "attention": "Attention rollout",
    "random": "Random (reference)",
}


@dataclass(frozen=True)
class MethodSettings:
    """Per-sentence budgets; defaults keep 100 sentences x 4 methods under 3 min on 2 cores."""

    shap_max_evals: int = 120  # model calls for the Partition explainer (fewer on short texts)
    lime_samples: int = 120  # perturbed texts LIME fits its local model on
    ig_steps: int = 16  # integration points (Gauss-Legendre), run as one batch
    batch_size: int = 64  # texts per perturbation-predictor call
    seed: int = 42  # with the text, seeds SHAP's and LIME's sampling per sentence

    @classmethod
    def from_config(cls, cfg) -> MethodSettings:
        """The budgets from an ``ExplainConfig`` (params ``explain.*``)."""
        return cls(
            shap_max_evals=cfg.shap_max_evals,
            lime_samples=cfg.lime_samples,
            ig_steps=cfg.ig_steps,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
        )


@dataclass
class Explanation:
    """One sentence explained: ``attributions[method]`` has one value per ``words`` entry."""

    text: str
    words: list[Word]
    labels: tuple[str, ...]
    target: int  # index into labels of the explained class
    proba: np.ndarray  # (n_labels,) from the perturbation predictor
    attributions: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    evaluations: dict[str, int] = field(default_factory=dict)  # texts run by the model, per method
    ig_delta: float | None = None  # |completeness gap| of integrated gradients

    @property
    def predicted(self) -> str:
        return self.labels[int(np.argmax(self.proba))]

    def to_record(self, digits: int = 5) -> dict[str, Any]:
        """JSON-ready: words with spans, and per method the value of each word, in word order."""
        return {
            "text": self.text,
            "target": self.labels[self.target],
            "predicted": self.predicted,
            "probabilities": {
                label: round(float(p), digits)
                for label, p in zip(self.labels, self.proba, strict=True)
            },
            "words": [w.text for w in self.words],
            "spans": [[w.start, w.end] for w in self.words],
            "attributions": {
                m: [round(float(v), digits) for v in values]
                for m, values in self.attributions.items()
            },
        }


def sentence_seed(seed: int, text: str) -> int:
    """A per-sentence seed that depends on the text, not on its position in a run."""
    return (int(seed) * 1_000_003 + zlib.crc32(text.encode("utf-8"))) % 2**32


class Explainer:
    """Runs the chosen methods on one sentence at a time (see the module docstring)."""

    def __init__(
        self,
        predictor,
        torch_model=None,
        settings: MethodSettings | None = None,
        methods: Sequence[str] = METHODS,
    ):
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ExplainError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
        if torch_model is None and TORCH_METHODS.intersection(methods):
            raise ValueError("ig and attention need the PyTorch model (torch_model)")
        self.predictor = predictor
        self.torch_model = torch_model
        self.settings = settings or MethodSettings()
        self.methods = tuple(methods)
        self.labels = tuple(predictor.labels)
        self.scorer = Scorer(predictor, self.settings.batch_size)

    def explain(
        self,
        text: str,
        target: int | str | None = None,
        methods: Sequence[str] | None = None,
        proba: np.ndarray | None = None,
    ) -> Explanation:
        """Attributions for ``p(target | text)`` (default target: the predicted class).

        ``methods`` picks a subset of this explainer's methods. ``proba`` skips the predictor
        call for the sentence's own probabilities; with only ``ig``/``attention`` and ``proba``
        given, the perturbation predictor (and its cache) is not touched at all, so the stage can
        run the PyTorch methods in a second thread while SHAP and LIME run in the first
        (see :func:`finslm.explain.runner.run_explain`).
        """
        from finslm.explain.attention import attention_attributions
        from finslm.explain.gradients import ig_attributions
        from finslm.explain.lime_ import lime_attributions
        from finslm.explain.shap_ import shap_attributions

        methods = self.methods if methods is None else tuple(methods)
        unknown = [m for m in methods if m not in self.methods]
        if unknown:
            raise ValueError(f"method(s) {unknown} not among this explainer's {self.methods}")
        text = str(text)
        words = split_words(text)
        if not words:
            raise ExplainError(f"nothing to explain in {text!r}: no words")
        if proba is None:
            self.scorer.clear()
            proba = self.scorer([text])[0]
        if target is None:
            target = int(np.argmax(proba))
        elif isinstance(target, str):
            target = self.labels.index(target)
        out = Explanation(text, words, self.labels, int(target), np.asarray(proba))
        seed = sentence_seed(self.settings.seed, text)
        s = self.settings
        for method in methods:
            before = self.scorer.evaluated
            start = time.perf_counter()
            if method in PERTURBATION_METHODS and len(words) == 1:
                # One word: every method's answer is its whole effect, p(text) - p(empty).
                values = np.array([proba[target] - self.scorer([""])[0, target]])
            elif method == "shap":
                values = shap_attributions(
                    self.scorer, text, words, out.target, s.shap_max_evals, s.batch_size, seed
                )
            elif method == "lime":
                values = lime_attributions(
                    self.scorer, text, words, out.target, s.lime_samples, seed
                )
            elif method == "ig":
                values, out.ig_delta = ig_attributions(
                    self.torch_model, text, words, out.target, s.ig_steps
                )
            else:
                values = attention_attributions(self.torch_model, text, words)
            out.seconds[method] = time.perf_counter() - start
            out.evaluations[method] = self.scorer.evaluated - before
            out.attributions[method] = np.asarray(values, dtype=np.float64)
        return out
