"""Stages teacher_logits@<t> and distill@<s>: distillation from a trained teacher, as DVC steps.

python stages/distill.py logits mpnet              # data/teacher/mpnet.parquet (train split only)
python stages/distill.py student minilm-distilled  # models/minilm-distilled, metrics/distill/…

params.yaml `distill.teachers` / `distill.students` (both {} by default: no stages). The
teacher is models/<t>, written by train@<t>; its logits are a cached output every student of
that teacher reuses, so `dvc repro` retrains a student when the teacher changes, and only then.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from finslm.config import load_distill_config, naming_entry
from finslm.data import read_split
from finslm.stage import run_stage, stage_parser
from finslm.train.teacher import (
    aligned_logits,
    augmented_logits,
    fit_student,
    hidden_targets,
    score_train_split,
)

TEACHER_DIR = Path("data/teacher")


def logits(name: str, prepared: Path) -> None:
    cfg = load_distill_config().teacher(name)
    train_df = read_split(prepared / "train.parquet")  # never val or test
    table = score_train_split(Path("models") / name, train_df, cfg)
    TEACHER_DIR.mkdir(parents=True, exist_ok=True)
    table.to_parquet(TEACHER_DIR / f"{name}.parquet", index=False)
    logging.info(
        "%s: logits on %d train sentences and %d augmented copies",
        name,
        len(train_df),
        len(table) - len(train_df),
    )


def student(name: str, prepared: Path) -> None:
    from dvclive import Live

    section = load_distill_config()
    cfg = section.student(name)
    train_df = read_split(prepared / "train.parquet")
    val_df = read_split(prepared / "val.parquet")
    logits_file = TEACHER_DIR / f"{cfg.teacher}.parquet"
    teacher = aligned_logits(logits_file, train_df)
    augmented = augmented_logits(logits_file, train_df) if cfg.augmented else None
    hidden = None
    if cfg.hidden_weight > 0:
        layers = section.teacher(cfg.teacher).hidden_layers
        hidden = hidden_targets(logits_file, train_df, layers)
    plots = Path("plots/distill") / name
    with (
        naming_entry(f"distill.students.{name}", "params.yaml"),
        Live(dir=str(plots), dvcyaml=False, save_dvc_exp=False, report=None) as live,
    ):
        summary = fit_student(
            cfg, train_df, val_df, teacher, Path("models") / name, live,
            augmented=augmented, hidden=hidden,
        )  # fmt: skip
    out = Path("metrics/distill") / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    logging.info(
        "%s (teacher %s): val accuracy %.4f, macro-F1 %.4f",
        name,
        cfg.teacher,
        summary["val"]["accuracy"],
        summary["val"]["macro_f1"],
    )


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("step", choices=["logits", "student"])
    parser.add_argument("name", help="a key of distill.teachers (logits) or distill.students")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    args = parser.parse_args(argv)
    step = logits if args.step == "logits" else student
    stage = "teacher_logits" if args.step == "logits" else "distill"
    return run_stage(f"{stage}@{args.name}", lambda: step(args.name, args.prepared))


if __name__ == "__main__":
    sys.exit(main())
