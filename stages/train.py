"""Stage train@<model>: fit one model from params.yaml `models.<model>` on train, select on val.

python stages/train.py minilm     # writes models/minilm/, metrics/train/minilm.json, plots/train/minilm/
torchrun --nproc_per_node=4 stages/train.py minilm   # the same, data-parallel (DDP) over 4 processes

Under torchrun only rank 0 writes outputs and logs. With params `train.nproc` > 1, a plain
`python stages/train.py <transformer>` (what dvc.yaml runs) relaunches itself under
`torchrun --standalone --nproc_per_node=<nproc>`; with the default 1 it trains in-process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
from pathlib import Path

from finslm.config import ConfigError, TfidfConfig, TransformerConfig, load_params, naming_entry
from finslm.data import read_split
from finslm.stage import run_stage, stage_parser
from finslm.train.distributed import (
    dist_env,
    finish_distributed,
    is_main_process,
    per_device_batch,
)
from finslm.train.recipe import fit_transformer
from finslm.train.tfidf import train_tfidf


def relaunch(name: str, nproc: int) -> int:
    """Run this stage under torchrun on this machine with ``nproc`` processes; its exit code."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        str(Path(__file__)),
        name,
    ]
    logging.info("train.nproc=%d: %s", nproc, " ".join(cmd))
    return subprocess.run(cmd).returncode


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("name", help="a model under params.yaml models")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    args = parser.parse_args(argv)
    # Ranks other than 0 (torchrun) log warnings and errors only: one copy of each info line.
    level = logging.INFO if is_main_process() else logging.WARNING
    code = run_stage(f"train@{args.name}", lambda: train(args.name, args.prepared), level)
    finish_distributed()  # every rank waits for rank 0's writes, then leaves the group
    return code


def train(name: str, prepared: Path) -> int | None:
    params = load_params()
    if name not in params.models:
        raise ConfigError(
            f"models.{name}: no such model in params.yaml; have {', '.join(params.models)}"
        )
    cfg = params.models[name]
    _, _, world = dist_env()
    if isinstance(cfg, TransformerConfig) and world == 1 and params.train.nproc > 1:
        per_device_batch(cfg.batch_size, params.train.nproc, f"models.{name}.batch_size")
        code = relaunch(name, params.train.nproc)
        if code:
            logging.error("torchrun exited with status %d", code)
        return code
    if isinstance(cfg, TfidfConfig) and not is_main_process():
        return  # the baseline is one process's work; rank 0 fits it
    train_df = read_split(prepared / "train.parquet")
    val_df = read_split(prepared / "val.parquet")
    out_dir = Path("models") / name
    plots_dir = Path("plots/train") / name
    if isinstance(cfg, TfidfConfig):
        summary = train_tfidf(cfg, train_df, val_df, out_dir)
        # A baseline has no curves, but its declared plots folder must not be empty: git keeps
        # no empty folder, so a fresh clone would see the output deleted and rerun the stage.
        # It gets what DVCLive writes beside a transformer's curves: the final metrics.json.
        plots_dir.mkdir(parents=True, exist_ok=True)
        val = {key: summary["val"][key] for key in ("accuracy", "macro_f1")}
        (plots_dir / "metrics.json").write_text(json.dumps({"val": val, "step": 0}, indent=4))
    else:
        from dvclive import Live

        # dvcyaml/save_dvc_exp off: inside a DVC stage, DVCLive must not rewrite dvc.yaml.
        # Under torchrun only rank 0 logs curves; the others train without a Live.
        live_cm = (
            Live(dir=str(plots_dir), dvcyaml=False, save_dvc_exp=False, report=None)
            if is_main_process()
            else contextlib.nullcontext()
        )
        # tapt_epochs > 0: masked-LM on the train texts first (finslm/tapt.py); soup_size > 1:
        # several seeds, one weight-averaged model (finslm/soup.py).
        # A check that needs the checkpoint (pooling, freeze_layers, LoRA targets, TAPT) names
        # models.<name> and its line in params.yaml.
        with naming_entry(f"models.{name}", "params.yaml"), live_cm as live:
            summary = fit_transformer(
                cfg,
                train_df,
                val_df,
                out_dir,
                live=live,
                seed=params.train.seed,
                threads=params.train.threads,
            )
    if not is_main_process():
        return
    metrics_path = Path("metrics/train") / f"{name}.json"
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    logging.info(
        "%s: val accuracy %.4f, macro-F1 %.4f, %s epochs, %.1f s, %d process(es)",
        name,
        summary["val"]["accuracy"],
        summary["val"]["macro_f1"],
        summary["epochs"],
        summary["seconds"],
        summary.get("world_size", 1),
    )


if __name__ == "__main__":
    sys.exit(main())
