"""``explain``: the explain stage's methods, examples and faithfulness settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar, Literal

from finslm.config.base import SEED_RULE, Need, Section, build, is_seed, need_names
from finslm.config.reader import names_the_line, read_params, require_transformer

EXPLAIN_METHODS = ("shap", "lime", "ig", "attention")


@dataclasses.dataclass(frozen=True)
class ExplainConfig(Section):
    """Explanations, their faithfulness and the error analysis of one model (``explain.*``).

    Validation split only. Defaults keep 100 sentences x 4 methods within about 3 minutes on a
    2-core CPU with the ONNX INT8 MiniLM.
    """

    # A transformer under ``models`` (IG and attention need its PyTorch weights).
    model: str = "minilm"
    # Predictor for SHAP, LIME, leave-one-out, the faithfulness curves and the validation
    # predictions of the error analysis: onnx-* read exports/<model> (or models/<model>/onnx/),
    # torch-fp32 models/<model>. IG and attention always use PyTorch.
    backend: Literal["onnx-int8", "onnx-opt", "onnx-fp32", "torch-fp32"] = "onnx-int8"
    # Used, with a warning in the log and the report, when ``backend``'s files are missing
    # (e.g. no export yet); "" makes that an error instead.
    fallback_backend: Literal["torch-fp32", "onnx-fp32", ""] = "torch-fp32"
    methods: list[str] = dataclasses.field(default_factory=lambda: list(EXPLAIN_METHODS))
    # Sentences explained, stratified over (true label, correct?) strata; errors are rarer, so
    # they are all taken when a stratum is smaller than its share.
    sample_size: int = 100
    seed: int = 42
    # Per-sentence budgets: SHAP Partition-explainer model calls, LIME perturbed samples, IG
    # integration steps (one batch).
    shap_max_evals: int = 120
    lime_samples: int = 120
    ig_steps: int = 16
    # Texts per call of the perturbation predictor.
    batch_size: int = 64
    # Intra-op CPU threads for torch and for onnxruntime each; 0 = library default (every core).
    # 1: IG/attention (torch) already run in a thread of their own beside SHAP/LIME (onnxruntime),
    # which fills a 2-core CPU, and small perturbation batches gain little from a second
    # intra-op thread while losing a lot to spin-waiting when the machine is busy.
    threads: int = 1
    # Faithfulness: shares of top-ranked words deleted (comprehensiveness) or kept (sufficiency).
    fractions: list[float] = dataclasses.field(default_factory=lambda: [0.1, 0.2, 0.5])
    # Error analysis: reliability-diagram bins; the accuracy the confidence threshold must reach
    # on predictions above it; words behind errors (at most ``top_tokens``, each pushing at least
    # ``min_token_errors`` explained errors); examples listed per kind.
    calibration_bins: int = 10
    target_accuracy: float = 0.95
    top_tokens: int = 25
    min_token_errors: int = 2
    max_examples: int = 25

    SECTION: ClassVar[str] = "explain"

    def check(self, need: Need) -> None:
        need(is_seed(self.seed), "seed", SEED_RULE)
        methods = self.methods
        need_names(need, "methods", methods)
        need(bool(methods), "methods", "a non-empty list")
        for m in methods:
            need(m in EXPLAIN_METHODS, "methods", f"one of {', '.join(EXPLAIN_METHODS)}", value=m)
        fr = self.fractions
        ok = (
            isinstance(fr, list)
            and bool(fr)
            and all(isinstance(k, int | float) and not isinstance(k, bool) for k in fr)
            and all(0 < k <= 1 for k in fr)
        )
        need(ok, "fractions", "a non-empty list of numbers in (0, 1]")
        need(self.backend != self.fallback_backend, "fallback_backend", "different from explain.backend (or \"\")")  # fmt: skip
        for key, low in (
            ("sample_size", 1),
            ("shap_max_evals", 10),
            ("lime_samples", 10),
            ("ig_steps", 2),
            ("batch_size", 1),
            ("threads", 0),
            ("calibration_bins", 2),
            ("top_tokens", 0),
            ("min_token_errors", 1),
            ("max_examples", 0),
        ):
            need(getattr(self, key) >= low, key, f">= {low}")
        need(0 < self.target_accuracy <= 1, "target_accuracy", "in (0, 1]")


@names_the_line
def load_explain_config(
    path: str | Path = "params.yaml", *, profile: str = "auto"
) -> ExplainConfig:
    """``explain.*``, checking ``explain.model`` is a transformer under ``models``."""
    raw = read_params(path, profile)
    cfg = build(ExplainConfig, raw.get("explain"), "explain")
    need = "integrated gradients and attention need a transformer"
    require_transformer(raw, cfg.model, "explain.model", need)
    return cfg
