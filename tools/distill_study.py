"""Distilled students over seeds, against a baseline ablation, in one JSON (issue #23).

    python tools/distill_study.py --name plain \\
        --students 42=minilm-d42 45=minilm-d45 48=minilm-d48 \\
        --baseline results/phrasebank-50agree/ablation/soup3.json \\
        --out results/phrasebank-50agree/distill/plain.json

Each student is ``models/<name>`` (written by ``stages/distill.py student <name>``), scored on
the validation and test splits with every ``--backends`` entry (``onnx-int8`` reads
``exports/<name>``: run ``stages/export.py <name>`` first). The paired difference against the
baseline's per-seed results (``finslm ablate``'s JSON: the seed keys must match) is what a
choice may read: validation. Test is reported beside it, never used to choose.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from finslm.ablation import evaluate_model, mean_std, paired, summarise
from finslm.data import read_split
from finslm.models import read_meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", required=True, help="what the students are (e.g. plain)")
    parser.add_argument("--students", nargs="+", required=True, help="seed=model-name pairs")
    parser.add_argument("--baseline", type=Path, help="a finslm ablate JSON (per_seed)")
    parser.add_argument("--backends", nargs="+", default=["torch-fp32", "onnx-int8"])
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    splits = {s: read_split(args.prepared / f"{s}.parquet") for s in ("val", "test")}
    baseline = json.loads(args.baseline.read_text())["per_seed"] if args.baseline else None
    result: dict = {"name": args.name, "students": {}, "backends": {}}
    for pair in args.students:
        seed, model = pair.split("=", 1)
        meta = read_meta(args.models / model)
        distill_json = Path("metrics/distill") / f"{model}.json"
        info = json.loads(distill_json.read_text()) if distill_json.is_file() else {}
        result["students"][seed] = {
            "model": model,
            "params": meta.get("params"),
            "teacher": meta.get("teacher"),
            "augmented_rows": meta.get("augmented_rows", 0),
            "best_epoch": info.get("best_epoch"),
            "seconds": info.get("seconds"),
        }
    for backend in args.backends:
        per_seed = {
            seed: evaluate_model(args.models / entry["model"], splits, backend)[0]
            for seed, entry in result["students"].items()
        }
        block: dict = {"per_seed": per_seed, "summary": summarise(per_seed)}
        if baseline is not None:
            block["vs_baseline"] = paired(per_seed, baseline)
        result["backends"][backend] = block
        print(f"{args.name} {backend}:", json.dumps(block["summary"]), flush=True)
    seconds = [e["seconds"] for e in result["students"].values() if e["seconds"]]
    if seconds:
        result["seconds"] = mean_std(seconds)
    if baseline is not None:
        result["baseline"] = str(args.baseline)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
