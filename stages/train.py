"""Stage train@<model>: fit one model from params.yaml `models.<model>` on train, select on val.

python stages/train.py minilm     # writes models/minilm/, metrics/train/minilm.json, plots/train/minilm/
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from finslm.config import ConfigError, TfidfConfig, load_params
from finslm.data import DataError, read_split
from finslm.models import ModelError
from finslm.training import train_tfidf, train_transformer


def main(name: str, prepared: Path = Path("data/prepared")) -> None:
    params = load_params()
    if name not in params.models:
        raise ConfigError(
            f"models.{name}: no such model in params.yaml; have {', '.join(params.models)}"
        )
    cfg = params.models[name]
    train_df = read_split(prepared / "train.parquet")
    val_df = read_split(prepared / "val.parquet")
    out_dir = Path("models") / name
    plots_dir = Path("plots/train") / name
    if isinstance(cfg, TfidfConfig):
        summary = train_tfidf(cfg, train_df, val_df, out_dir)
        plots_dir.mkdir(parents=True, exist_ok=True)  # declared out; a baseline has no curves
    else:
        from dvclive import Live

        # dvcyaml/save_dvc_exp off: inside a DVC stage, DVCLive must not rewrite dvc.yaml.
        with Live(dir=str(plots_dir), dvcyaml=False, save_dvc_exp=False, report=None) as live:
            summary = train_transformer(
                cfg,
                train_df,
                val_df,
                out_dir,
                live=live,
                seed=params.train.seed,
                threads=params.train.threads,
            )
    metrics_path = Path("metrics/train") / f"{name}.json"
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    logging.info(
        "%s: val accuracy %.4f, macro-F1 %.4f, %s epochs, %.1f s",
        name,
        summary["val"]["accuracy"],
        summary["val"]["macro_f1"],
        summary["epochs"],
        summary["seconds"],
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if len(sys.argv) != 2:
        sys.exit("usage: python stages/train.py <model name from params.yaml models>")
    try:
        main(sys.argv[1])
    except (ConfigError, DataError, ModelError) as exc:
        sys.exit(f"train@{sys.argv[1]}: {exc}")
