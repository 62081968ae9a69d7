"""The same token classifiers decoded two ways: argmax vs constrained Viterbi (issue #22).

    python tools/ner_decode.py .tmp/sec-ner-sv 42 43 44 > results/.../decode.json

``<run>`` is ``results/sec-filings-ner/run.sh``'s work folder: ``prepared/`` and, per seed,
``seed<k>/models/ner-minilm`` (PyTorch) and ``seed<k>/exports/ner-minilm`` (INT8). Prints
entity micro-F1 per seed, backend, split (val, test) and decoding, as JSON, then the mean
difference (Viterbi minus argmax, points) per backend and split. Nothing is trained: the
weights are the same, only how word scores become tags differs. The choice of decoding was
made on validation; test is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from finslm.ner.evaluate_run import score
from finslm.ner.predict import Tagger
from finslm.ner.prepare import read_split

BACKENDS = {"torch-fp32": "models", "onnx-int8": "exports"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="run.sh's work folder (W)")
    parser.add_argument("seeds", nargs="+", help="seeds trained there")
    parser.add_argument("--model", default="ner-minilm")
    args = parser.parse_args(argv)
    splits = {s: read_split(args.run / "prepared", s) for s in ("val", "test")}
    scores: dict[str, float] = {}
    for seed in args.seeds:
        for backend, sub in BACKENDS.items():
            folder = args.run / f"seed{seed}" / sub / args.model
            for split, frame in splits.items():
                for method in ("argmax", "viterbi"):
                    tagger = Tagger(folder, backend, threads=1, decode=method)
                    m = score(tagger, frame, [])["entity_micro_f1"]
                    scores[f"seed{seed}/{backend}/{split}/{method}"] = round(m, 4)
    gain = {
        f"{backend}/{split}": round(
            100
            * float(
                np.mean(
                    [
                        scores[f"seed{s}/{backend}/{split}/viterbi"]
                        - scores[f"seed{s}/{backend}/{split}/argmax"]
                        for s in args.seeds
                    ]
                )
            ),
            2,
        )
        for backend in BACKENDS
        for split in splits
    }
    json.dump({"entity_micro_f1": scores, "viterbi_minus_argmax_pt": gain}, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
