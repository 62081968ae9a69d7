"""The TF-IDF + logistic-regression baseline (train@tfidf)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from finslm.config import TfidfConfig
from finslm.evaluation import classification_metrics
from finslm.models import TFIDF_FILE, build_tfidf, write_meta


def train_tfidf(
    cfg: TfidfConfig, train_df: pd.DataFrame, val_df: pd.DataFrame, out_dir: Path
) -> dict[str, Any]:
    """Fit the TF-IDF + logistic-regression baseline and save it (joblib, our own artifact)."""
    import joblib

    pipeline = build_tfidf(cfg)
    start = time.perf_counter()
    pipeline.fit(train_df.text.tolist(), train_df.label.tolist())
    seconds = time.perf_counter() - start
    out_dir.mkdir(parents=True, exist_ok=True)
    # scikit-learn caches id(stop_words), a memory address, on the vectorizer; it only guards a
    # warning (read with getattr). Dropped so the same data gives a byte-identical model.joblib.
    vars(pipeline.steps[0][1]).pop("_stop_words_id", None)
    joblib.dump(pipeline, out_dir / TFIDF_FILE)
    clf = pipeline.named_steps["clf"]
    n_params = int(clf.coef_.size + clf.intercept_.size)
    write_meta(out_dir, {"kind": "tfidf", "params": n_params})
    pred = pipeline.predict(val_df.text.tolist())
    return {
        "val": classification_metrics(val_df.label.tolist(), list(pred)),
        "epochs": 1,
        "best_epoch": 1,
        "seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds, 1),
        "params": n_params,
    }
