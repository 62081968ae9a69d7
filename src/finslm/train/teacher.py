"""Distillation as pipeline steps: a teacher's logits cached on the train split, and students
trained against them.

    python stages/distill.py logits mpnet            # teacher_logits@mpnet -> data/teacher/mpnet.parquet
    python stages/distill.py student minilm-distilled   # distill@minilm-distilled -> models/…

The logits file has one row per train-split sentence, in ``train.parquet``'s order: a
``text_sha1`` column (so a student refuses logits computed for other text) and one
``logit_<label>`` column per label. Only the train split is ever scored: validation picks the
student's epoch and test judges it, so neither may shape its targets.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from finslm.config import StudentConfig, TeacherConfig
from finslm.labels import LABELS
from finslm.models import ModelError

HASH_COLUMN = "text_sha1"
LOGIT_COLUMNS = [f"logit_{label}" for label in LABELS]


def _hashes(texts: list[str]) -> list[str]:
    return [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts]


def score_train_split(model_dir: Path, train_df: pd.DataFrame, cfg: TeacherConfig) -> pd.DataFrame:
    """The teacher's logits on every train sentence: (n, 1 + len(LABELS)), in row order."""
    from finslm.predict import load_predictor

    teacher = load_predictor(model_dir, "torch-fp32", threads=cfg.threads)
    texts = train_df.text.tolist()
    chunks = [
        teacher.logits(texts[i : i + cfg.batch_size]) for i in range(0, len(texts), cfg.batch_size)
    ]
    logits = np.concatenate(chunks) if chunks else np.zeros((0, len(LABELS)), np.float32)
    table = pd.DataFrame(logits.astype(np.float32), columns=LOGIT_COLUMNS)
    table.insert(0, HASH_COLUMN, _hashes(texts))
    return table


def aligned_logits(path: Path, train_df: pd.DataFrame) -> np.ndarray:
    """(n, len(LABELS)) float32 logits for ``train_df``'s rows; ModelError if ``path`` was
    computed for other text (a stale cache: the split changed after the teacher scored it)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no teacher logits; run `dvc repro teacher_logits@{path.stem}`")
    table = pd.read_parquet(path)
    missing = [c for c in [HASH_COLUMN, *LOGIT_COLUMNS] if c not in table.columns]
    if missing:
        raise ModelError(f"{path}: columns {missing} missing; rerun teacher_logits@{path.stem}")
    if table[HASH_COLUMN].tolist() != _hashes(train_df.text.tolist()):
        raise ModelError(
            f"{path}: logits for other sentences than the train split ({len(table)} rows vs "
            f"{len(train_df)}); rerun `dvc repro teacher_logits@{path.stem}`"
        )
    return table[LOGIT_COLUMNS].to_numpy(dtype=np.float32)


def fit_student(
    cfg: StudentConfig,
    train_df: pd.DataFrame,
    val_df: pd.DataFrame,
    logits: np.ndarray,
    out_dir: Path,
    live=None,
) -> dict[str, Any]:
    """Train ``cfg.checkpoint`` against ``logits`` (and the labels); save it as a finslm model
    folder in ``out_dir``; return the summary (validation metrics of the restored epoch)."""
    from finslm.models import load_for_finetuning, save_classifier
    from finslm.train.distill import distill

    start = time.perf_counter()
    tokenizer, student = load_for_finetuning(cfg.checkpoint, pooling=cfg.pooling)
    summary = distill(student, tokenizer, train_df, val_df, logits, cfg.max_length, cfg, live)
    save_classifier(
        student,
        tokenizer,
        Path(out_dir),
        cfg,
        teacher=cfg.teacher,
        alpha=cfg.alpha,
        temperature=cfg.temperature,
    )
    return {**summary, "teacher": cfg.teacher, "seconds_total": time.perf_counter() - start}
