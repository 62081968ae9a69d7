"""Distillation as pipeline steps: a teacher's logits cached on the train split, and students
trained against them.

    python stages/distill.py logits mpnet            # teacher_logits@mpnet -> data/teacher/mpnet.parquet
    python stages/distill.py student minilm-distilled   # distill@minilm-distilled -> models/…

The logits file has one row per train-split sentence, in ``train.parquet``'s order: a
``text_sha1`` column (so a student refuses logits computed for other text) and one
``logit_<label>`` column per label. With ``augment_copies`` > 0 (augmented transfer text,
:mod:`finslm.train.augment`) perturbed copies of the train sentences follow, each with its
``augmented_text`` and the ``source_row`` it was made from; students learn those rows from the
teacher's logits alone. Only the train split is ever scored or perturbed: validation picks
the student's epoch and test judges it, so neither may shape its targets.
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
SOURCE_COLUMN = "source_row"
TEXT_COLUMN = "augmented_text"
LOGIT_COLUMNS = [f"logit_{label}" for label in LABELS]
HIDDEN_PREFIX = "hidden_"  # hidden_<layer>: the teacher's mean-pooled state (a float list)


def _hashes(texts: list[str]) -> list[str]:
    return [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts]


def score_train_split(model_dir: Path, train_df: pd.DataFrame, cfg: TeacherConfig) -> pd.DataFrame:
    """The teacher's logits on every train sentence, in row order, then on the perturbed
    copies ``cfg.augment_copies`` asks for (none by default)."""
    from tqdm.auto import tqdm

    from finslm.predict import load_predictor
    from finslm.train.augment import augment_texts, embedding_neighbours, words_of

    teacher = load_predictor(model_dir, "torch-fp32", threads=cfg.threads)
    texts = train_df.text.tolist()
    copies: list[tuple[int, str]] = []
    if cfg.augment_copies:
        neighbours = embedding_neighbours(
            teacher.model, teacher.tokenizer, words_of(texts), k=cfg.swap_neighbours
        )
        copies = augment_texts(
            texts, neighbours, cfg.augment_copies, cfg.word_dropout, cfg.word_swap, cfg.augment_seed
        )
    every = texts + [text for _, text in copies]
    # Batches of similar length (then back to row order): input-order batches of PhraseBank
    # sentences are about half padding.
    order = np.argsort([len(text) for text in every], kind="stable")
    logits = np.zeros((len(every), len(LABELS)), np.float32)
    layers = list(cfg.hidden_layers)
    hidden = np.zeros((len(every), len(layers), teacher.model.config.hidden_size), np.float32)
    for i in tqdm(range(0, len(every), cfg.batch_size), desc="teacher logits", disable=None):
        rows = order[i : i + cfg.batch_size]
        batch = [every[r] for r in rows]
        if layers:
            logits[rows], hidden[rows] = teacher.logits_and_hidden(batch, layers)
        else:
            logits[rows] = teacher.logits(batch)
    table = pd.DataFrame(logits, columns=LOGIT_COLUMNS)
    table.insert(0, HASH_COLUMN, _hashes(every))
    table.insert(1, SOURCE_COLUMN, list(range(len(texts))) + [row for row, _ in copies])
    table.insert(2, TEXT_COLUMN, [""] * len(texts) + [text for _, text in copies])
    for j, layer in enumerate(layers):
        table[f"{HIDDEN_PREFIX}{layer}"] = list(hidden[:, j])
    return table


def _read_logits(path: Path, train_df: pd.DataFrame) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no teacher logits; run `dvc repro teacher_logits@{path.stem}`")
    table = pd.read_parquet(path)
    missing = [c for c in [HASH_COLUMN, *LOGIT_COLUMNS] if c not in table.columns]
    if missing:
        raise ModelError(f"{path}: columns {missing} missing; rerun teacher_logits@{path.stem}")
    n = len(train_df)
    if table[HASH_COLUMN].iloc[:n].tolist() != _hashes(train_df.text.tolist()):
        raise ModelError(
            f"{path}: logits for other sentences than the train split ({len(table)} rows vs "
            f"{len(train_df)}); rerun `dvc repro teacher_logits@{path.stem}`"
        )
    return table


def aligned_logits(path: Path, train_df: pd.DataFrame) -> np.ndarray:
    """(n, len(LABELS)) float32 logits for ``train_df``'s rows; ModelError if ``path`` was
    computed for other text (a stale cache: the split changed after the teacher scored it)."""
    table = _read_logits(path, train_df)
    return table[LOGIT_COLUMNS].iloc[: len(train_df)].to_numpy(dtype=np.float32)


def augmented_logits(path: Path, train_df: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """The perturbed copies in ``path`` (texts, (m, len(LABELS)) logits); none when the
    teacher was scored without ``augment_copies``."""
    table = _read_logits(path, train_df).iloc[len(train_df) :]
    if table.empty:
        return [], np.zeros((0, len(LABELS)), np.float32)
    if TEXT_COLUMN not in table.columns or (table[TEXT_COLUMN] == "").any():
        raise ModelError(f"{path}: rows past the train split without their text; rerun it")
    return table[TEXT_COLUMN].tolist(), table[LOGIT_COLUMNS].to_numpy(dtype=np.float32)


def hidden_targets(path: Path, train_df: pd.DataFrame, layers: list[int]) -> np.ndarray:
    """(rows, len(layers), hidden) float32: the teacher's pooled states for every row of
    ``path`` (train split, then augmented copies); ModelError if a layer was not cached."""
    table = _read_logits(path, train_df)
    missing = [layer for layer in layers if f"{HIDDEN_PREFIX}{layer}" not in table.columns]
    if missing:
        cached = [
            c.removeprefix(HIDDEN_PREFIX) for c in table.columns if c.startswith(HIDDEN_PREFIX)
        ]
        raise ModelError(
            f"{path}: teacher layer(s) {missing} not cached (cached: {', '.join(cached) or 'none'}); "
            f"set distill.teachers.{Path(path).stem}.hidden_layers and rerun "
            f"`dvc repro teacher_logits@{Path(path).stem}`"
        )
    columns = [np.stack(table[f"{HIDDEN_PREFIX}{layer}"].to_numpy()) for layer in layers]
    return np.stack(columns, axis=1).astype(np.float32)


def fit_student(
    cfg: StudentConfig,
    train_df: pd.DataFrame,
    val_df: pd.DataFrame,
    logits: np.ndarray,
    out_dir: Path,
    live=None,
    augmented: tuple[list[str], np.ndarray] | None = None,
    hidden: np.ndarray | None = None,
) -> dict[str, Any]:
    """Train ``cfg.checkpoint`` against ``logits`` (and the labels), and against the teacher's
    logits on ``augmented`` (texts, logits) when given; save it as a finslm model folder in
    ``out_dir``; return the summary (validation metrics of the restored epoch). ``hidden``:
    the teacher's pooled states (:func:`hidden_targets`) for ``cfg.hidden_weight`` > 0; rows
    past the train split and ``augmented`` are ignored."""
    from finslm.models import load_for_finetuning, save_classifier
    from finslm.train.determinism import set_determinism
    from finslm.train.distill import distill

    start = time.perf_counter()
    # Seed before loading: the new head's initial weights are drawn here, not in distill().
    set_determinism(cfg.seed, cfg.threads)
    tokenizer, student = load_for_finetuning(cfg.checkpoint, pooling=cfg.pooling)
    extra_texts, extra_logits = augmented if augmented is not None else ([], None)
    if hidden is not None:
        hidden = hidden[: len(train_df) + len(extra_texts)]
    summary = distill(
        student, tokenizer, train_df, val_df, logits, cfg.max_length, cfg, live,
        extra_texts=extra_texts, extra_logits=extra_logits, teacher_hidden=hidden,
    )  # fmt: skip
    save_classifier(
        student,
        tokenizer,
        Path(out_dir),
        cfg,
        teacher=cfg.teacher,
        alpha=cfg.alpha,
        temperature=cfg.temperature,
        augmented_rows=len(extra_texts),
        **({"hidden_weight": cfg.hidden_weight, "hidden_layers": cfg.hidden_layers}
           if cfg.hidden_weight > 0 else {}),
    )  # fmt: skip
    return {
        **summary,
        "teacher": cfg.teacher,
        "augmented_rows": len(extra_texts),
        "seconds_total": time.perf_counter() - start,
    }
