"""One arm of the PerforatedAI dendrite comparison: train, score val and test, export to INT8.

    python tools/dendrite_ablation.py --prepared PATH/data/prepared --arm dendrites --seed 42 \\
        --out results/phrasebank-50agree/dendrites --threads 1
    python tools/dendrite_ablation.py ... --arm control --seed 42 ...

Both arms run :func:`finslm.train.dendrites.train_with_dendrites` on the same split with the
same loop, learning rate and epoch budget (``--epochs``, default 2; dendrites are added after
``--switch-epochs``, default 1); ``control`` runs the tracker without dendrites
(``add_dendrites=False``). The trained network (dendrites and PerforatedAI's wrappers included)
is exported from memory to ONNX (:func:`finslm.export.export_module`) and to dynamic INT8, and
both graphs are checked against it on the validation split with the export stage's parity
numbers and gate (``export.*`` tolerances in params.yaml). Writes ``<out>/<arm>-s<seed>.json``
and PerforatedAI's own graph, ``<out>/<arm>-s<seed>-PAI.png``; its CSVs and torch snapshots
stay in ``--work`` (default: a folder under the system temp dir).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


class _TorchLogits:
    """Logits of an in-memory classifier on the export's encoding (same padding as ONNX)."""

    def __init__(self, model, tokenizer_dir: Path, max_length: int):
        from finslm.predict import Encoder

        self.model, self.encode = model.eval(), Encoder(tokenizer_dir, max_length)

    def logits(self, texts):
        import torch

        batch = self.encode(texts)
        with torch.inference_mode():
            inputs = {k: torch.from_numpy(v) for k, v in batch.items()}
            return self.model(**inputs).logits.float().numpy()


class _OnnxLogits:
    def __init__(self, graph: Path, tokenizer_dir: Path, max_length: int, threads: int):
        import onnxruntime as ort

        from finslm.predict import Encoder

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self.names = {i.name for i in self.session.get_inputs()}
        self.encode = Encoder(tokenizer_dir, max_length)

    def logits(self, texts):
        batch = self.encode(texts)
        return self.session.run(["logits"], {k: v for k, v in batch.items() if k in self.names})[0]


def _export_and_check(model, tokenizer, val_texts, threads: int, work: Path) -> dict:
    """fp32 and INT8 graphs of ``model``: parity on validation, sizes, the export gate."""
    from finslm.config import load_export_config
    from finslm.export import export_module, parity, parity_failures, quantize_graph
    from finslm.models import save_tokenizer

    cfg = load_export_config("params.yaml").for_model("minilm")
    save_tokenizer(tokenizer, work)
    fp32, int8 = work / "model.onnx", work / "model.int8.onnx"
    start = time.perf_counter()
    export_module(model, work, fp32, cfg.opset, cfg.exporter)
    quantize_graph(fp32, int8, cfg.per_channel, cfg.reduce_range)
    reference = _TorchLogits(model, work, 128)
    out: dict = {"seconds": 0.0}
    for backend, graph in (("onnx-fp32", fp32), ("onnx-int8", int8)):
        numbers = parity(reference, _OnnxLogits(graph, work, 128, threads), val_texts, 32)
        numbers["size_mb"] = round(graph.stat().st_size / 2**20, 1)
        out[backend] = numbers
    out["seconds"] = round(time.perf_counter() - start, 1)
    out["gate_failures"] = parity_failures(out, cfg)
    out["int8_latency_bs1_p50_ms"] = _p50_ms(_OnnxLogits(int8, work, 128, threads), val_texts)
    out["torch_latency_bs1_p50_ms"] = _p50_ms(reference, val_texts)
    return out


def _p50_ms(predictor, texts, n: int = 100) -> float:
    for text in texts[:5]:
        predictor.logits([text])
    times = []
    for text in texts[:n]:
        t0 = time.perf_counter()
        predictor.logits([text])
        times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1000, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, required=True)
    parser.add_argument("--arm", choices=["dendrites", "control"], required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--switch-epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoint", default="packaged:all-MiniLM-L6-v2")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "finslm-dendrites"
    )
    args = parser.parse_args(argv)

    import torch

    from finslm.models import load_for_finetuning
    from finslm.train.dendrites import (
        DendriteSettings,
        _val_metrics,
        to_stock,
        train_with_dendrites,
    )
    from finslm.train.determinism import set_determinism

    set_determinism(args.seed, args.threads)  # the new head's initial weights included
    frames = {s: pd.read_parquet(args.prepared / f"{s}.parquet") for s in ("train", "val", "test")}
    tokenizer, model = load_for_finetuning(args.checkpoint, pooling="mean")
    settings = DendriteSettings(
        switch_epochs=args.switch_epochs,
        max_dendrites=1,
        max_epochs=args.epochs,
        lr=args.lr,
        add_dendrites=args.arm == "dendrites",
    )
    name = f"{args.arm}-s{args.seed}"
    scratch = args.work / name
    shutil.rmtree(scratch, ignore_errors=True)
    model, summary = train_with_dendrites(
        model, tokenizer, frames["train"], frames["val"], scratch, settings, args.seed
    )
    summary["test"] = _val_metrics(model, tokenizer, frames["test"], settings)
    _, stock = load_for_finetuning(args.checkpoint, pooling="mean")
    stock = to_stock(model, stock)
    texts = frames["val"].text.tolist()[:64]
    batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.inference_mode():
        gap = (model.eval()(**batch).logits - stock(**batch).logits).abs().max()
    summary["stock"] = {
        "params": sum(p.numel() for p in stock.parameters()),
        "max_abs_logit_diff_vs_trained": float(gap),
        "val": _val_metrics(stock, tokenizer, frames["val"], settings),
    }
    summary["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    with tempfile.TemporaryDirectory(prefix="finslm-dendrite-export-") as tmp:
        summary["export"] = _export_and_check(
            model, tokenizer, frames["val"].text.tolist(), args.threads, Path(tmp)
        )
    summary["recipe"] = {
        "arm": args.arm,
        "seed": args.seed,
        "checkpoint": args.checkpoint,
        "threads": args.threads,
        **{k: getattr(settings, k) for k in settings.__dataclass_fields__},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    if (scratch / "PAI" / "PAI.png").is_file():
        shutil.copyfile(scratch / "PAI" / "PAI.png", args.out / f"{name}-PAI.png")
    (args.out / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: summary[k] for k in ("val", "test", "epochs", "params_added")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
