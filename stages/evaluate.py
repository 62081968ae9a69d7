"""Stage evaluate@<model>: metrics and confusion matrices on validation and test.

    python stages/evaluate.py minilm   # writes metrics/eval/minilm.json, plots/confusion/minilm/{val,test}.csv

The only training-side stage that reads the test split; nothing downstream selects on it.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pandas as pd

from finslm.data import read_split
from finslm.evaluation import confusion_rows, evaluate_predictor, metrics_by_agreement
from finslm.outputs import atomic_path, remove_outputs
from finslm.predict import load_predictor
from finslm.stage import run_stage, stage_parser


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("name", help="a model under params.yaml models")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    args = parser.parse_args(argv)
    return run_stage(f"evaluate@{args.name}", lambda: evaluate(args.name, args.prepared))


def evaluate(name: str, prepared: Path) -> None:
    plots_dir = Path("plots/confusion") / name
    out = Path("metrics/eval") / f"{name}.json"
    # A failure below must not leave last run's metrics beside this run's plots.
    remove_outputs(out, *(plots_dir / f"{split}.csv" for split in ("val", "test")))
    predictor = load_predictor(Path("models") / name)
    plots_dir.mkdir(parents=True, exist_ok=True)
    result = {}
    for split in ("val", "test"):
        df = read_split(prepared / f"{split}.parquet")
        metrics, pred, _ = evaluate_predictor(predictor, df.text.tolist(), df.label.tolist())
        if "agreement" in df.columns and df["agreement"].notna().all():
            # data.source is the PhraseBank folder: where do the errors sit, by annotator tier?
            metrics["by_agreement"] = metrics_by_agreement(df.label, pred, df["agreement"])
        result[split] = metrics
        with atomic_path(plots_dir / f"{split}.csv") as tmp:
            pd.DataFrame(confusion_rows(df.label.tolist(), pred)).to_csv(tmp, index=False)
        logging.info(
            "%s %s: accuracy %.4f, macro-F1 %.4f",
            name,
            split,
            metrics["accuracy"],
            metrics["macro_f1"],
        )
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
