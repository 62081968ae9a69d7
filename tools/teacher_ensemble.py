"""An ensemble of teachers for distillation (issue #23): their cached train-split logits
averaged into one teacher file, and the ensemble scored on validation and test.

    python tools/teacher_ensemble.py --members mpnet mpnet43 mpnet44 --name mpnet-ens \\
        --out results/phrasebank-50agree/distill/ensemble/teachers.json

Each member is a trained model ``models/<m>`` whose logits ``stages/distill.py logits <m>``
cached in ``data/teacher/<m>.parquet``. The members' logits are averaged row by row (the
product of their softmaxes, renormalised: the same "mean logit" the ensemble's own
predictions use below) into ``data/teacher/<name>.parquet``, which a student names as its
``teacher`` (``distill.teachers.<name>`` must exist for the config check; its logits stage is
never run). Only train-split rows are averaged: members scored with augmented copies are
refused, because their perturbed texts differ.

The JSON holds every member's and the ensemble's validation and test metrics (PyTorch fp32),
how often the members agree, and how often every one of them is wrong. With
``--phrasebank-folder`` (the FinancialPhraseBank-v1.0 folder; the split must come from its
50Agree file) both are broken down by annotator-agreement tier, matched on the split's
``line`` column: where annotators disagreed, an "error" every teacher makes is as much the
label's as the model's. Test is reported, never used to choose.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from finslm.ablation import evaluate_model, summarise
from finslm.data import read_split
from finslm.evaluation import classification_metrics, metrics_by_agreement
from finslm.labels import LABELS
from finslm.train.teacher import HASH_COLUMN, LOGIT_COLUMNS, aligned_logits, augmented_logits


def average_logits(members: list[Path], train_df: pd.DataFrame) -> pd.DataFrame:
    """The members' train-split logits averaged, in a teacher-logits table."""
    for path in members:
        texts, _ = augmented_logits(path, train_df)
        if texts:
            raise SystemExit(f"{path}: has augmented copies; score the members without them")
    mean = np.mean([aligned_logits(path, train_df) for path in members], axis=0)
    table = pd.read_parquet(members[0]).iloc[: len(train_df)].copy()
    table[LOGIT_COLUMNS] = mean.astype(np.float32)
    return table[[c for c in table.columns if c == HASH_COLUMN or c in LOGIT_COLUMNS]]


def agreement_of(folder: Path, split: pd.DataFrame) -> np.ndarray:
    """The annotator-agreement tier of each row of ``split`` (a 50Agree-file split)."""
    from finslm.data.phrasebank import read_phrasebank_folder

    rows = read_phrasebank_folder(folder).rows
    tier = dict(zip(rows["line"].tolist(), rows["agreement"].tolist(), strict=True))
    missing = [line for line in split["line"] if line not in tier]
    if missing:
        raise SystemExit(f"{folder}: lines {missing[:5]} of the split are not in its 50Agree file")
    return np.array([tier[line] for line in split["line"]])


def errors_shared(labels: list[str], preds: dict[str, list[str]], tiers=None) -> dict:
    """How often the members agree and how often every one is wrong (per tier with ``tiers``)."""
    gold = np.asarray(labels)
    stacked = np.array(list(preds.values()))
    agree = (stacked == stacked[0]).all(axis=0)
    all_wrong = (stacked != gold).all(axis=0)
    any_right = (stacked == gold).any(axis=0)

    def block(keep: np.ndarray) -> dict:
        n = int(keep.sum())
        return {
            "n": n,
            "members_agree": round(float(agree[keep].mean()), 4) if n else None,
            "all_wrong": int(all_wrong[keep].sum()),
            "oracle_accuracy": round(float(any_right[keep].mean()), 4) if n else None,
        }

    out = {"all": block(np.ones(len(gold), bool))}
    if tiers is not None:
        for level in sorted(set(tiers.tolist())):
            out[f"agree_{round(level * 100)}"] = block(tiers == level)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", nargs="+", required=True, help="trained model names")
    parser.add_argument("--name", required=True, help="the ensemble teacher's name")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--teachers", type=Path, default=Path("data/teacher"))
    parser.add_argument("--phrasebank-folder", type=Path, help="agreement tiers from here")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if len(set(args.members)) < 2:
        parser.error("--members: at least two different models")

    train_df = read_split(args.prepared / "train.parquet")
    table = average_logits([args.teachers / f"{m}.parquet" for m in args.members], train_df)
    table.to_parquet(args.teachers / f"{args.name}.parquet", index=False)

    splits = {s: read_split(args.prepared / f"{s}.parquet") for s in ("val", "test")}
    tiers = {
        s: agreement_of(args.phrasebank_folder, df) if args.phrasebank_folder else None
        for s, df in splits.items()
    }
    members, log_probs = {}, {}
    for m in args.members:
        members[m], probs = evaluate_model(args.models / m, splits)
        log_probs[m] = {s: np.log(np.clip(p, 1e-12, 1.0)) for s, p in probs.items()}
        print(m, {s: members[m][s]["macro_f1"] for s in splits}, flush=True)
    ensemble, shared = {}, {}
    for split, df in splits.items():
        labels = df.label.tolist()
        mean = np.mean([log_probs[m][split] for m in args.members], axis=0)
        pred = [LABELS[i] for i in mean.argmax(axis=1)]
        ensemble[split] = classification_metrics(labels, pred)
        preds = {m: [LABELS[i] for i in log_probs[m][split].argmax(axis=1)] for m in members}
        shared[split] = errors_shared(labels, preds, tiers[split])
        if tiers[split] is not None:
            ensemble[split]["by_agreement"] = metrics_by_agreement(labels, pred, tiers[split])
            for m, p in preds.items():
                members[m][split]["by_agreement"] = metrics_by_agreement(labels, p, tiers[split])
    result = {
        "name": args.name,
        "members": members,
        "members_summary": summarise(members),
        "ensemble": ensemble,
        "shared_errors": shared,
        "teacher_file": str(args.teachers / f"{args.name}.parquet"),
    }
    print("ensemble", {s: ensemble[s]["macro_f1"] for s in splits}, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
