"""Every-layer INT8 attempts on one trained model: label agreement with PyTorch on validation.

    python tools/int8_explore.py --model models/minilm --export exports/minilm \\
        --val data/prepared/val.parquet --train data/prepared/train.parquet --out int8.json

Each attempt writes a graph into ``--work`` and is scored with :func:`finslm.export.parity`
against the PyTorch model on the validation texts (agreement, max |Δlogit|); calibration
(static attempts) reads training sentences only. Attempts:

- ``dynamic-keep``: today's export (``export.int8_keep_fp32: [0, layer.1/output/dense]``);
- ``dynamic-all``: dynamic INT8, every layer;
- ``dynamic-all-reduce-range``: the same with 7-bit weights (no int16 saturation in the u8×s8
  kernels of CPUs without VNNI);
- ``static-qdq-<method>``: static QDQ (int8 per-channel weights, uint8 activations with
  calibrated fixed scales) of the unfused fp32 graph, calibrated with ``percentile`` or
  ``entropy`` on ``--calibration`` training sentences.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from finslm.export import parity, quantize_graph, select_nodes
from finslm.models import read_meta
from finslm.predict import Encoder, OnnxPredictor, TorchPredictor


class _Reader:
    """onnxruntime's CalibrationDataReader protocol: one tokenised sentence per call, all
    padded to the longest (the histogram calibrators stack every feed's tensors, so the shapes
    must agree; padded positions are masked in attention but do enter the histograms)."""

    def __init__(self, encoder: Encoder, texts: list[str], inputs: list[str]):
        enc = {k: v for k, v in encoder(list(texts)).items() if k in inputs}
        self._feeds = iter([{k: v[i : i + 1] for k, v in enc.items()} for i in range(len(texts))])

    def get_next(self):
        return next(self._feeds, None)


class _Cached:
    """The reference's logits per batch, computed once for every attempt."""

    def __init__(self, predictor):
        self._predictor, self._memo = predictor, {}

    def logits(self, texts: list[str]) -> np.ndarray:
        key = tuple(texts)
        if key not in self._memo:
            self._memo[key] = self._predictor.logits(texts)
        return self._memo[key]


def static_qdq(src: Path, dst: Path, encoder: Encoder, texts: list[str], method: str) -> None:
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    inputs = [i.name for i in onnx.load(str(src), load_external_data=False).graph.input]
    quantize_static(
        str(src),
        str(dst),
        _Reader(encoder, texts, inputs),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        calibrate_method={
            "percentile": CalibrationMethod.Percentile,
            "entropy": CalibrationMethod.Entropy,
            "minmax": CalibrationMethod.MinMax,
        }[method],
        extra_options={"CalibPercentile": 99.99, "ActivationSymmetric": False},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--export", type=Path, required=True)
    parser.add_argument("--val", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("int8-explore"))
    parser.add_argument("--calibration", type=int, default=200)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    val = pd.read_parquet(args.val, columns=["text"])["text"].astype(str).tolist()
    train = pd.read_parquet(args.train, columns=["text"])["text"].astype(str).tolist()
    calib = [train[i] for i in np.random.default_rng(0).permutation(len(train))[: args.calibration]]
    meta = read_meta(args.export)
    reference = _Cached(TorchPredictor(args.model, read_meta(args.model)))
    encoder = Encoder(args.export, int(meta.get("max_length", 128)))
    opt, fp32 = args.export / "model.opt.onnx", args.export / "model.onnx"
    keep = select_nodes(opt, [0, "layer.1/output/dense"])
    attempts = {
        "dynamic-keep": lambda d: quantize_graph(opt, d, exclude=keep),
        "dynamic-all": lambda d: quantize_graph(opt, d),
        "dynamic-all-reduce-range": lambda d: quantize_graph(opt, d, reduce_range=True),
        "static-qdq-percentile": lambda d: static_qdq(fp32, d, encoder, calib, "percentile"),
        "static-qdq-entropy": lambda d: static_qdq(fp32, d, encoder, calib, "entropy"),
    }
    results = {}
    for name, make in attempts.items():
        if args.only and name not in args.only:
            continue
        graph = args.work / f"{name}.onnx"
        t0 = time.perf_counter()
        try:
            make(graph)
            made = time.perf_counter() - t0
            candidate = OnnxPredictor(args.export, meta, graph=graph)
            row = parity(reference, candidate, val)
            p = candidate
            for t in val[:5]:
                p.predict_proba([t], 1)
            t1 = time.perf_counter()
            for t in val[:100]:
                p.predict_proba([t], 1)
            row["ms_per_sentence_bs1"] = round(10 * (time.perf_counter() - t1), 2)
            row["build_s"] = round(made, 1)
        except Exception as exc:  # an attempt that cannot be built is a result too
            row = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        results[name] = row
        print(json.dumps({name: row}), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
