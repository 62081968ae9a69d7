"""``export`` and ``benchmark``: ONNX export, INT8 and the parity gate; the benchmark's
variants and timing settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar, Literal

from finslm.config.base import ConfigError, Need, Section, build, need_names
from finslm.config.reader import derived_models, names_the_line, read_params

# The engines of finslm.engines come last (optional extras; BACKEND_NAMES[:4] are the core four).
BACKEND_NAMES = (
    "torch-fp32",
    "onnx-fp32",
    "onnx-opt",
    "onnx-int8",
    "sklearn",
    "openvino-fp32",
    "openvino-int8",
    "ct2-int8",
)


@dataclasses.dataclass(frozen=True)
class ExportConfig(Section):
    """ONNX export, graph optimisation, INT8 quantisation and their parity gate (``export.*``)."""

    # Transformer models (names under ``models``) to export; dvc.yaml's export stage is
    # ``foreach: ${export.models}``. TF-IDF models have no graph, so they are not listed.
    models: list[str] = dataclasses.field(default_factory=lambda: ["minilm"])
    opset: int = 17
    # ``torchscript`` (torch.onnx.export dynamo=False) writes one self-contained .onnx whose
    # attention onnxruntime's optimizer fuses; ``dynamo`` is the newer exporter (kept for
    # comparison: it writes weights to a separate .onnx.data unless re-saved, as we do).
    exporter: Literal["torchscript", "dynamo"] = "torchscript"
    # Fuse attention/LayerNorm/GELU with onnxruntime's transformer optimizer -> model.opt.onnx.
    optimize: bool = True
    # Graph the INT8 model is quantised from: the optimised one (fused attention becomes
    # QAttention) or the plain fp32 export.
    quantize_from: Literal["opt", "fp32"] = "opt"
    # One scale per output channel of each weight matrix (keeps accuracy, no speed cost).
    per_channel: bool = True
    # 7-bit weights, for CPUs without VNNI where 8-bit products can saturate: true / false for
    # every model, or a list of the models that get them (e.g. [mpnet]: the MPNet teacher's
    # 8-bit INT8 graph agreed 50% with PyTorch on such a CPU, its 7-bit one 98%).
    reduce_range: bool | list[str] = False
    # Parts of the INT8 graph left in fp32 (mixed precision where INT8 hurts most; choose them
    # on the validation split). An integer is a whole encoder layer (0-based); a string is a
    # piece of ONNX node/tensor name, e.g. "layer.1/output/dense" (layer 1's FFN down-projection).
    int8_keep_fp32: list[int | str] = dataclasses.field(default_factory=list)
    # Parity gate on the validation split: max |logit difference| vs PyTorch and the share of
    # identical labels, for the fp32 graphs (model.onnx, model.opt.onnx) and for INT8. The INT8
    # gate is loose on purpose: it catches a broken graph, while a near-tie flipping on a small
    # validation split is expected; INT8 quality is measured by the benchmark on the test split.
    atol: float = 1e-3
    min_agreement: float = 0.99
    int8_atol: float = 3.0
    int8_min_agreement: float = 0.9
    # Texts per forward pass when measuring parity (padding varies with it, as in serving).
    batch_size: int = 32
    # Other CPU engines built into exports/<m>/ by the export stage, parity-gated on validation
    # like the ONNX graphs (finslm.engines_build; extras [openvino], [ct2]): "openvino" (the
    # OpenVINO backends and NNCF's INT8 IR, calibrated on training sentences) and/or "ct2"
    # (CTranslate2 INT8). [] = none (the default: it keeps the first run short).
    engines: list[str] = dataclasses.field(default_factory=list)
    # Training sentences (the first N of the train split) that calibrate the OpenVINO INT8 IR.
    engine_calibration: int = 300
    # Quantisation-aware fine-tuning of the INT8 graph's weights (finslm.qat): a copy of the
    # model is fine-tuned for this many epochs on the training texts, under simulated INT8
    # rounding, to reproduce the model's own logits; the epoch (0 = no change) whose INT8 graph
    # agrees best with the model on validation gives model.int8.onnx. The fp32 graphs are the
    # model's own. 0 = off (the default). docs/speed.md has what it gave.
    qat_epochs: int = 0
    qat_lr: float = 3e-6

    SECTION: ClassVar[str] = "export"

    def check(self, need: Need) -> None:
        need_names(need, "models", self.models)
        keep = self.int8_keep_fp32
        need(
            isinstance(keep, list)
            and all(
                (isinstance(k, int) and not isinstance(k, bool) and k >= 0)
                or (isinstance(k, str) and k)
                for k in keep
            ),
            "int8_keep_fp32",
            "a list of encoder layer indices (0, 1, ...) and/or pieces of node names",
        )
        need(7 <= self.opset <= 23, "opset", "between 7 and 23")
        for key in ("atol", "int8_atol"):
            need(getattr(self, key) > 0, key, "> 0")
        for key in ("min_agreement", "int8_min_agreement"):
            need(0 <= getattr(self, key) <= 1, key, "between 0 and 1")
        need(self.batch_size >= 1, "batch_size", ">= 1")
        need(
            isinstance(self.engines, list) and set(self.engines) <= {"openvino", "ct2"},
            "engines",
            'a list of "openvino" and/or "ct2" ([] = none)',
        )
        need(self.engine_calibration >= 1, "engine_calibration", ">= 1")
        need(self.qat_epochs >= 0, "qat_epochs", ">= 0 (0 = off)")
        need(self.qat_lr > 0, "qat_lr", "> 0")
        if isinstance(self.reduce_range, list):
            need_names(need, "reduce_range", self.reduce_range)

    def reduce_range_for(self, model: str) -> bool:
        """Whether ``model``'s INT8 graph gets 7-bit weights (``reduce_range``)."""
        if isinstance(self.reduce_range, list):
            return model in self.reduce_range
        return self.reduce_range

    def for_model(self, model: str) -> ExportConfig:
        """These settings as they apply to ``model`` (``reduce_range`` resolved to a bool)."""
        return dataclasses.replace(self, reduce_range=self.reduce_range_for(model))


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig(Section):
    """The side-by-side benchmark of every model variant on the test split (``benchmark.*``)."""

    # ``<model>/<backend>`` names; ``<model>`` is a folder under models/ (torch, sklearn) or
    # exports/ (onnx-*). Later variants (minilm-targeted, minilm-pruned) are added here.
    variants: list[str] = dataclasses.field(
        default_factory=lambda: [
            "minilm/torch-fp32",
            "minilm/onnx-fp32",
            "minilm/onnx-opt",
            "minilm/onnx-int8",
            "tfidf/sklearn",
        ]
    )
    # Speed ratios, accuracy deltas and label agreement are reported against this variant.
    reference: str = "minilm/torch-fp32"
    # Intra-op CPU threads for torch and onnxruntime alike; 0 = every core (os.cpu_count()).
    threads: int = 0
    # Untimed batch-1 calls per variant before latency is measured.
    warmup: int = 20
    # Latency at batch 1 over this many test sentences (all if fewer), tokenisation included,
    # repeated ``repeats`` times with the variants taking turns (round-robin) each repetition.
    latency_sentences: int = 300
    repeats: int = 3
    # Throughput (sentences/s) at this batch size over the whole test split, same round-robin.
    batch_size: int = 32
    # Peak RSS per variant, each in a fresh Python process that loads it and predicts one
    # batch of the longest test sentences (a few seconds per variant).
    rss: bool = True

    SECTION: ClassVar[str] = "benchmark"

    def check(self, need: Need) -> None:
        variants = self.variants
        need_names(need, "variants", variants)
        need(bool(variants), "variants", "a non-empty list")
        for v in variants:
            model, _, backend = v.partition("/")
            need(
                bool(model) and backend in BACKEND_NAMES,
                "variants",
                f"<model>/<backend> with backend one of {', '.join(BACKEND_NAMES)}",
                value=v,
            )
        need(self.reference in variants, "reference", "one of benchmark.variants")
        need(self.threads >= 0, "threads", ">= 0")
        need(self.warmup >= 0, "warmup", ">= 0")
        need(self.latency_sentences >= 1, "latency_sentences", ">= 1")
        need(self.repeats >= 1, "repeats", ">= 1")
        need(self.batch_size >= 1, "batch_size", ">= 1")


@names_the_line
def load_export_config(
    path: str | Path = "params.yaml", check_models: bool = True, *, profile: str = "auto"
) -> ExportConfig:
    """``export.*``, checking every listed model is a transformer under ``models`` or one
    derived from such a model by another stage (:data:`DERIVED_SUFFIXES`); ``check_models``
    False skips that (``finslm export`` of a folder the pipeline does not name)."""
    raw = read_params(path, profile)
    cfg = build(ExportConfig, raw.get("export"), "export")
    if not check_models:
        return cfg
    models = raw.get("models") or {}
    transformers = [n for n, m in models.items() if (m or {}).get("kind") == "transformer"]
    transformers += [d for d, base in derived_models(raw).items() if base in transformers]
    for name in cfg.models:
        if name not in transformers:
            kind = (models.get(name) or {}).get("kind")
            what = "is not under models" if name not in models else f"has kind {kind!r}"
            raise ConfigError(
                f"export.models: {name!r} {what}; only transformer models can be exported to "
                f"ONNX (transformers here: {', '.join(transformers) or 'none'})"
            )
    return cfg


@names_the_line
def load_benchmark_config(
    path: str | Path = "params.yaml", *, profile: str = "auto"
) -> BenchmarkConfig:
    """``benchmark.*`` (variants are checked against folders on disk by the stage)."""
    return build(BenchmarkConfig, read_params(path, profile).get("benchmark"), "benchmark")
