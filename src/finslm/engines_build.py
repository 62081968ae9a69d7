"""Building the other CPU engines' files into an export folder and gating them on parity
(:mod:`finslm.engines` runs them): the NNCF INT8 OpenVINO IR and the CTranslate2 folder.

Kept apart from :mod:`finslm.engines` because it uses the export stage's parity gate and the
training heads: a stage that only loads a Predictor then does not depend on that code.
``python tools/engines.py build`` is the command.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from finslm.engines import ENGINE_FILES, HEAD_FILE, require
from finslm.models import ModelError, read_meta
from finslm.predict import TOKENIZER_FILES, Encoder

# --- building the engines' files into an export folder ------------


def build_openvino_int8(
    export_dir: Path,
    calibration_texts: Sequence[str],
    keep_fp32: Sequence[int | str] = (),
    smooth_quant_alpha: float | None = None,
    preset: str = "mixed",
    log=print,
) -> Path:
    """Quantise ``export_dir/model.onnx`` with NNCF into ``export_dir/openvino/model.int8.xml``.

    Static INT8 (activation ranges fixed from ``calibration_texts``, which must be training
    sentences: the test split is never seen, validation measures parity), the transformer
    model type (mixed preset: symmetric weights, asymmetric activations; SmoothQuant).
    ``keep_fp32``: encoder layers (ints) or regular expressions over node names left in fp32,
    like ``export.int8_keep_fp32``. ``preset``: ``mixed`` (asymmetric activations, NNCF's
    default for transformers) or ``performance`` (symmetric). Returns the IR's path.
    """
    ov = require("openvino", "openvino")
    nncf = require("nncf", "openvino")
    export_dir = Path(export_dir)
    if not calibration_texts:
        raise ModelError("openvino-int8: no calibration (training) texts")
    meta = read_meta(export_dir)
    encoder = Encoder(export_dir, int(meta.get("max_length", 128)))
    model = ov.Core().read_model(str(export_dir / ENGINE_FILES["openvino-fp32"]))
    names = [port.get_any_name() for port in model.inputs]
    # One sentence per item: no padding in the ranges the calibration sees.
    items = [{n: v for n, v in encoder([t]).items() if n in names} for t in calibration_texts]
    patterns = [rf".*[/.]layer\.{k}[/.].*" if isinstance(k, int) else str(k) for k in keep_fp32]
    advanced = None
    if smooth_quant_alpha is not None:
        advanced = nncf.AdvancedQuantizationParameters(
            smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(matmul=smooth_quant_alpha)
        )
    log(
        f"nncf: quantise {export_dir / 'model.onnx'} on {len(items)} training sentences "
        f"(fp32: {list(keep_fp32) or 'nothing'})"
    )
    quantized = nncf.quantize(
        model,
        nncf.Dataset(items),
        model_type=nncf.ModelType.TRANSFORMER,
        preset=nncf.QuantizationPreset(preset),
        subset_size=len(items),
        ignored_scope=nncf.IgnoredScope(patterns=patterns, validate=False) if patterns else None,
        advanced_parameters=advanced,
    )
    out = export_dir / ENGINE_FILES["openvino-int8"]
    out.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    return out


def convert_ct2(model_dir: Path, export_dir: Path, log=print) -> Path:
    """Convert ``model_dir``'s BERT encoder to CTranslate2 (int8 weights) in ``export_dir/ct2``,
    with the pooling and head in ``head.npz`` / ``head.json``; return the folder.

    CTranslate2's converter takes a plain ``BertModel`` with its pooler: the encoder is copied
    into one (the pooler's weights zero when the model pools by mean and has none), saved to a
    temporary folder with the tokenizer, and converted. A ModelError for non-BERT encoders.
    """
    ct2 = require("ctranslate2", "ct2")
    import torch
    from transformers import BertConfig, BertModel

    from finslm.train.heads import MeanPoolBertForSequenceClassification, load_classifier

    model_dir, export_dir = Path(model_dir), Path(export_dir)
    model = load_classifier(model_dir).eval()
    bert = getattr(model, "bert", None)
    kind = type(model).__name__
    if bert is None or getattr(bert.config, "position_embedding_type", "absolute") != "absolute":
        raise ModelError(
            f"{model_dir}: ct2-int8 serves BERT encoders (BertForSequenceClassification or "
            f"finslm's mean-pooling BERT head), not {kind}"
        )
    pooling = "mean" if isinstance(model, MeanPoolBertForSequenceClassification) else "cls"
    config = BertConfig.from_dict(
        {k: v for k, v in bert.config.to_dict().items() if k not in {"model_type", "architectures"}}
    )
    # CTranslate2's BERT loader asserts this attribute, which transformers 5 no longer defines
    # (absolute positions are the only kind it has for BERT).
    config.position_embedding_type = "absolute"
    plain = BertModel(config, add_pooling_layer=True)
    state = bert.state_dict()
    if bert.pooler is None:
        with torch.no_grad():
            plain.pooler.dense.weight.zero_()
            plain.pooler.dense.bias.zero_()
        state.update({f"pooler.dense.{k}": v for k, v in plain.pooler.dense.state_dict().items()})
    plain.load_state_dict(state, strict=True)
    head = {
        "classifier_weight": model.classifier.weight.detach().float().numpy(),
        "classifier_bias": model.classifier.bias.detach().float().numpy(),
    }
    if pooling == "cls":
        head["pooler_weight"] = bert.pooler.dense.weight.detach().float().numpy()
        head["pooler_bias"] = bert.pooler.dense.bias.detach().float().numpy()
    out = export_dir / ENGINE_FILES["ct2-int8"]
    with tempfile.TemporaryDirectory() as tmp:
        plain.save_pretrained(tmp)
        for name in TOKENIZER_FILES:
            if (model_dir / name).is_file():
                shutil.copy2(model_dir / name, Path(tmp) / name)
        log(f"ct2: convert the {pooling}-pooled BERT encoder of {model_dir} -> {out} (int8)")
        ct2.converters.TransformersConverter(tmp).convert(str(out), quantization="int8", force=True)
    np.savez(out / HEAD_FILE, **head)
    (out / "head.json").write_text(json.dumps({"pooling": pooling}) + "\n", encoding="utf-8")
    return out


def engine_parity(
    model_dir: Path,
    export_dir: Path,
    texts: Sequence[str],
    cfg,
    backends: Sequence[str] = tuple(ENGINE_FILES),
    threads: int = 0,
    log=print,
) -> dict[str, Any]:
    """Parity of each engine backend in ``export_dir`` with PyTorch (``model_dir``) on ``texts``
    (validation sentences), gated like the export stage's graphs: ``cfg`` is an ExportConfig,
    ``*-int8`` backends get its INT8 tolerances. Raises :class:`finslm.export.ParityError`
    (carrying the numbers) when one breaks them; returns the numbers (and sizes) otherwise."""
    from finslm.export import ParityError, parity, parity_failures
    from finslm.predict import TorchPredictor, load_predictor

    reference = TorchPredictor(Path(model_dir), read_meta(Path(model_dir)), threads=threads)
    metrics: dict[str, Any] = {}
    for backend in backends:
        candidate = load_predictor(export_dir, backend, threads=threads)
        numbers = parity(reference, candidate, list(texts), cfg.batch_size)
        files = [f for f in candidate.files() if f.suffix not in {".json", ".txt"}]
        numbers["size_mb"] = round(sum(f.stat().st_size for f in files) / 1e6, 3)
        metrics[backend] = numbers
        log(
            f"{backend}: max |Δlogit| {numbers['max_abs_logit_diff']:.2e}, "
            f"agreement {numbers['agreement']:.4f}, {numbers['size_mb']:.1f} MB"
        )
    failures = parity_failures(metrics, cfg)
    if failures:
        raise ParityError(
            f"engines in {export_dir} broke the parity tolerance on {len(texts)} validation "
            "texts:\n  " + "\n  ".join(failures),
            metrics,
        )
    return metrics


def build_engines(
    model_dir: Path,
    export_dir: Path,
    train_texts: Sequence[str],
    val_texts: Sequence[str],
    cfg,
    engines: Sequence[str] = ("openvino", "ct2"),
    keep_fp32: Sequence[int | str] = (),
    preset: str = "mixed",
    threads: int = 0,
    log=print,
) -> dict[str, Any]:
    """Build the engines' files into ``export_dir`` (``openvino``: the NNCF INT8 IR calibrated
    on ``train_texts``; ``ct2``: the CTranslate2 folder) and gate every engine backend on
    ``val_texts`` (:func:`engine_parity`). Returns the parity numbers."""
    unknown = set(engines) - {"openvino", "ct2"}
    if unknown:
        raise ModelError(f"engines {sorted(unknown)}: unknown; choose openvino, ct2")
    backends: list[str] = []
    if "openvino" in engines:
        build_openvino_int8(export_dir, train_texts, keep_fp32, preset=preset, log=log)
        backends += ["openvino-fp32", "openvino-int8"]
    if "ct2" in engines:
        convert_ct2(model_dir, export_dir, log=log)
        backends.append("ct2-int8")
    return engine_parity(model_dir, export_dir, val_texts, cfg, backends, threads, log)
