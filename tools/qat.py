"""Quantisation-aware fine-tuning of a trained model for an every-layer INT8 graph (#28).

    python tools/qat.py --model models/minilm --out models/minilm-qat \\
        --train data/prepared/train.parquet --val data/prepared/val.parquet \\
        --test data/prepared/test.parquet --report qat.json

Runs :func:`finslm.qat.qat_finetune` (training texts to fine-tune, validation to choose the
epoch), then, for the record only, scores on the test split the INT8 graphs against the source
model: the every-layer graph of the source (no QAT), the every-layer graph of the QAT copy, and
``--default-int8`` (today's mixed graph, e.g. ``exports/minilm/model.int8.onnx``) when given:
label agreement with the source's PyTorch logits, accuracy and macro-F1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from finslm.config import ExportConfig
from finslm.export import parity
from finslm.models import read_meta
from finslm.predict import OnnxPredictor, TorchPredictor
from finslm.qat import QatSettings, int8_graph, qat_finetune


def _texts(path: Path) -> tuple[list[str], np.ndarray | None]:
    df = pd.read_parquet(path)
    labels = df["label"].to_numpy() if "label" in df else None
    return df["text"].astype(str).tolist(), labels


def _score(reference, candidate, texts, labels, names) -> dict:
    row = parity(reference, candidate, texts)
    if labels is not None:
        pred = [names[i] for i in candidate.predict_proba(texts, 32).argmax(1)]
        row["accuracy"] = float(accuracy_score(labels, pred))
        row["macro_f1"] = float(f1_score(labels, pred, average="macro"))
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--val", type=Path, required=True)
    parser.add_argument("--test", type=Path)
    parser.add_argument("--default-int8", type=Path)
    parser.add_argument("--epochs", type=int, default=QatSettings.epochs)
    parser.add_argument("--lr", type=float, default=QatSettings.lr)
    parser.add_argument("--batch-size", type=int, default=QatSettings.batch_size)
    parser.add_argument("--hidden-weight", type=float, default=QatSettings.hidden_weight)
    parser.add_argument("--eight-bit", action="store_true", help="8-bit weights (no reduce_range)")
    parser.add_argument("--report", type=Path)
    args = parser.parse_args(argv)
    settings = QatSettings(
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        hidden_weight=args.hidden_weight,
        reduce_range=not args.eight_bit,
    )
    train, _ = _texts(args.train)
    val, _ = _texts(args.val)
    start = time.perf_counter()
    history = qat_finetune(args.model, args.out, train, val, settings)
    report = {
        "settings": dataclasses.asdict(settings),
        "history": history,
        "seconds": round(time.perf_counter() - start, 1),
    }
    if args.test:
        test, labels = _texts(args.test)
        meta = read_meta(args.model)
        names = list(meta["labels"])
        reference = TorchPredictor(args.model, meta)
        cfg = ExportConfig()
        rows = {"source/torch-fp32": _score(reference, reference, test, labels, names)}
        with tempfile.TemporaryDirectory() as tmp:
            graphs = {
                "source/int8-every-layer": (args.model, Path(tmp) / "src.int8.onnx"),
                "qat/int8-every-layer": (args.out, Path(tmp) / "qat.int8.onnx"),
            }
            for name, (model_dir, graph) in graphs.items():
                int8_graph(model_dir, Path(tmp) / name.split("/")[0], graph, cfg, True)
                onnx = OnnxPredictor(model_dir, read_meta(model_dir), graph=graph)
                rows[name] = _score(reference, onnx, test, labels, names)
            if args.default_int8:
                export = args.default_int8.parent
                onnx = OnnxPredictor(export, read_meta(export), graph=args.default_int8)
                rows["default/int8-mixed"] = _score(reference, onnx, test, labels, names)
        report["test"] = rows
        for name, row in rows.items():
            print(
                f"{name:28s} agreement {row['agreement']:.4f}  mean |Δlogit| "
                f"{row['mean_abs_logit_diff']:.4f}  acc {row.get('accuracy', float('nan')):.4f}  "
                f"F1 {row.get('macro_f1', float('nan')):.4f}"
            )
    if args.report:
        args.report.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
