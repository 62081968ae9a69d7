"""The cores of the ``mine`` and ``finetune`` stages (``stages/finetune.py``).

``mine`` (train split only; nothing else is read):

- ``analysis/<m>-mining.csv``: one row per training sentence: ``line`` (source line), text, label,
  fold, OOF prediction and probabilities, cartography confidence/variability, the flags;
- ``metrics/finetune-mining.json``: counts per flag and region, OOF accuracy/macro-F1, seconds.

``finetune`` (train + analysis for training, val for selection, test for the report only):

- ``models/<m>-targeted/``: the targeted model of the first seed, a finslm transformer folder;
- ``analysis/<m>-focus.csv``: per training sentence (by ``line``), the target flags, score,
  ``hard`` and the weighted phase's loss weight;
- ``metrics/finetune.json``: base vs control vs targeted on val and test, mean and std over
  ``finetune.seeds`` plus one row per seed, the budget and the focus-pool counts;
- ``metrics/eval/<m>-targeted.json``: the saved model's val/test metrics in the evaluate
  stage's format (there is no ``evaluate@<m>-targeted``: evaluate runs per trained model).

    >>> paths = FinetunePaths.for_model("minilm")
    >>> run_mine(cfg, model_cfg, paths); run_finetune(cfg, model_cfg, paths)
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from finslm.data import DataError, read_split
from finslm.finetune.arms import Setup, build_arms, evaluate_split, summarise, train_arm
from finslm.finetune.guard import assert_no_leak, protected_keys, text_key
from finslm.finetune.loop import EvalSet, TokenCache, load_trained, save_model
from finslm.finetune.mining import FLAGS, mine, mining_counts, transformer_fold_fitter
from finslm.finetune.selection import load_targets, select, selection_counts
from finslm.models import read_meta

log = logging.getLogger("finslm.finetune")
SEED_NOTE = (
    "Per seed, base/control/targeted share the base model models/{m} (trained once by "
    "train@{m}) and the mining (finetune.mining_seed); the seed drives the continued training "
    "only: easy samples drawn into the focus pool, augmentation draws, batch order, dropout. "
    "Selection is on validation macro-F1; test is read only for this report."
)


@dataclass(frozen=True)
class FinetunePaths:
    base_dir: Path  # models/<m>: the trained model both arms continue from
    out_dir: Path  # models/<m>-targeted
    analysis: Path  # analysis/<m>.json (explain stage)
    mining: Path  # analysis/<m>-mining.csv
    focus: Path  # analysis/<m>-focus.csv
    train: Path
    val: Path
    test: Path
    mining_metrics: Path  # metrics/finetune-mining.json
    metrics: Path  # metrics/finetune.json
    eval_metrics: Path  # metrics/eval/<m>-targeted.json (the evaluate stage's format)

    @classmethod
    def for_model(cls, model: str, root: Path = Path(".")) -> FinetunePaths:
        """The layout dvc.yaml declares, under ``root``."""
        prepared = root / "data/prepared"
        return cls(
            base_dir=root / "models" / model,
            out_dir=root / "models" / f"{model}-targeted",
            analysis=root / "analysis" / f"{model}.json",
            mining=root / "analysis" / f"{model}-mining.csv",
            focus=root / "analysis" / f"{model}-focus.csv",
            train=prepared / "train.parquet",
            val=prepared / "val.parquet",
            test=prepared / "test.parquet",
            mining_metrics=root / "metrics/finetune-mining.json",
            metrics=root / "metrics/finetune.json",
            eval_metrics=root / "metrics/eval" / f"{model}-targeted.json",
        )


def _write_json(data: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def run_mine(cfg, model_cfg, paths: FinetunePaths, root: Path = Path(".")) -> dict[str, Any]:
    """Out-of-fold predictions and cartography for the train split; writes the mining file."""
    start = time.perf_counter()
    train = read_split(paths.train)
    fitter = transformer_fold_fitter(model_cfg, epochs=cfg.mine_epochs, root=root)
    if cfg.threads > 0:
        import torch

        torch.set_num_threads(cfg.threads)
    frame = mine(
        train["text"].astype(str).tolist(),
        train["label"].astype(str).tolist(),
        fitter,
        folds=cfg.folds,
        seed=cfg.mining_seed,
        low_confidence=cfg.low_confidence,
        ambiguous_share=cfg.ambiguous_share,
        hard_to_learn_share=cfg.hard_to_learn_share,
    )
    frame.insert(0, "line", train["line"].to_numpy())
    paths.mining.parent.mkdir(parents=True, exist_ok=True)
    frame.round(6).to_csv(paths.mining, index=False)
    metrics = {
        "model": cfg.model,
        "checkpoint": model_cfg.checkpoint,
        "folds": cfg.folds,
        "epochs": cfg.mine_epochs,
        "seed": cfg.mining_seed,
        **mining_counts(frame),
        "seconds": round(time.perf_counter() - start, 1),
    }
    _write_json(metrics, paths.mining_metrics)
    log.info("mining: %s", json.dumps(metrics["flags"]))
    return metrics


def read_mining(path: Path, train: pd.DataFrame) -> pd.DataFrame:
    """The mining file, checked against the current train split (same sentences, same order)."""
    if not Path(path).is_file():
        raise DataError(f"{path}: not found; run `dvc repro mine` first")
    frame = pd.read_csv(path, dtype={"text": str, "label": str}, keep_default_na=False)
    stale = len(frame) != len(train) or any(
        text_key(a) != text_key(b) or la != lb
        for a, b, la, lb in zip(
            frame["text"], train["text"], frame["label"], train["label"], strict=True
        )
    )
    if stale:
        raise DataError(f"{path}: does not match the train split (stale?); rerun `dvc repro mine`")
    for column in frame.columns:
        if column in FLAGS:
            frame[column] = frame[column].astype(str).eq("True")
        elif column.startswith(("oof_p_", "carto_")):
            frame[column] = pd.to_numeric(frame[column])
    frame["text"] = train["text"].astype(str).to_numpy()  # exactly the split's text
    return frame


def evaluate_saved(model_dir: Path, val: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    """What ``stages/evaluate.py`` writes for a model, for the saved targeted folder: it is
    opened with the repo's own loader, as every consumer opens it."""
    from finslm.evaluation import evaluate_predictor
    from finslm.predict import load_predictor

    predictor = load_predictor(model_dir)
    return {
        name: evaluate_predictor(predictor, df["text"].tolist(), df["label"].tolist())[0]
        for name, df in (("val", val), ("test", test))
    }


# Over 80 lines on purpose: the stage's steps in order, each writing one of its declared outputs.
def run_finetune(cfg, model_cfg, paths: FinetunePaths) -> dict[str, Any]:
    """Targeted and control runs for every seed; writes the model, focus file and metrics."""
    start = time.perf_counter()
    train = read_split(paths.train)
    val = read_split(paths.val)
    # Test texts are read now for the leakage guard; test labels are used only in the report.
    test = read_split(paths.test)
    targets = load_targets(paths.analysis, cfg.model)
    selected = select(read_mining(paths.mining, train), targets, cfg)
    focus_columns = ["line", "label", "oof_pred", "target_class", "target_confusion", "candidate"]
    paths.focus.parent.mkdir(parents=True, exist_ok=True)
    selected[[*focus_columns, "score", "hard", "weight"]].round(6).to_csv(paths.focus, index=False)

    protected = protected_keys({"val": val["text"], "test": test["text"]})
    from transformers import AutoTokenizer

    from finslm.train.heads import register

    register()  # the base model's config may be finslm's mean-pooling head: let Auto* know it
    tokenizer = AutoTokenizer.from_pretrained(paths.base_dir)
    setup = Setup(
        cfg=cfg,
        model_cfg=model_cfg,
        load_base=lambda: load_trained(paths.base_dir),
        cache=TokenCache(tokenizer, model_cfg.max_length),
        selected=selected,
        val=EvalSet(val["text"].astype(str).tolist(), val["label"].astype(str).tolist()),
        protected=protected,
        model_name=cfg.model,
    )
    base_meta = {
        k: v for k, v in read_meta(paths.base_dir).items() if k not in {"labels", "params"}
    }
    # Every arm of every seed is built and guarded before anything trains: a leak fails the
    # stage in seconds (train_arm checks again right before training).
    arms = {seed: build_arms(setup, seed) for seed in cfg.seeds}
    for seed, (targeted, control, _) in arms.items():
        for arm in (targeted, control):
            assert_no_leak(arm.texts, protected, what=f"{cfg.model}-{arm.name} (seed {seed})")
    if paths.out_dir.exists():
        shutil.rmtree(paths.out_dir)
    rows: dict[str, Any] = {}
    for i, seed in enumerate(cfg.seeds):
        targeted, control, info = arms.pop(seed)
        plan = info.pop("_plan")
        row: dict[str, Any] = dict(info)
        for arm in (targeted, control):
            tok, model, result = train_arm(setup, arm, plan, seed)
            val_metrics = evaluate_split(model, setup.cache, val)
            if arm.name == "targeted" and i == 0:
                meta = {**base_meta, "base_model": cfg.model, "recipe": "targeted", "seed": seed}
                save_model(model, tok, paths.out_dir, meta)
            row[arm.name] = {
                "val": val_metrics,
                "test": evaluate_split(model, setup.cache, test),  # report only
                "training": result.summary(),
            }
            log.info(
                "seed %d %s: val macro-F1 %.4f (best at step %s of %d)",
                seed,
                arm.name,
                val_metrics["macro_f1"],
                result.summary()["best_step"],
                result.steps,
            )
            del model
        rows[str(seed)] = row
    _, base_model = load_trained(paths.base_dir)
    base = {
        s: evaluate_split(base_model, setup.cache, f) for s, f in (("val", val), ("test", test))
    }
    counts = selection_counts(
        selected, rows[str(cfg.seeds[0])]["focus_pool"]["easy"], cfg.focus_flags
    )
    metrics = {
        "model": cfg.model,
        "targeted_model": paths.out_dir.name,
        "targeted_model_seed": cfg.seeds[0],
        "seeds": list(cfg.seeds),
        "varies_with_seed": SEED_NOTE.format(m=cfg.model),
        "summary": summarise(rows, base),
        "base": base,
        "per_seed": rows,
        "selection": counts,
        "targets": targets.describe(),
        "budget": rows[str(cfg.seeds[0])]["plan"],
        "seconds": round(time.perf_counter() - start, 1),
    }
    _write_json(metrics, paths.metrics)
    _write_json(evaluate_saved(paths.out_dir, val, test), paths.eval_metrics)
    s = metrics["summary"]["test"]
    log.info(
        "test macro-F1 over %d seed(s): base %.4f, control %.4f ± %.4f, targeted %.4f ± %.4f",
        len(cfg.seeds),
        s["base"]["macro_f1"]["mean"],
        s["control"]["macro_f1"]["mean"],
        s["control"]["macro_f1"]["std"],
        s["targeted"]["macro_f1"]["mean"],
        s["targeted"]["macro_f1"]["std"],
    )
    return metrics
