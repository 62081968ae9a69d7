"""Which task a model folder serves, and opening it for that task.

Two model interfaces exist: the sentence classifier's :class:`finslm.predict.Predictor`
(``predict_proba(texts)``) and the token classifier's :class:`finslm.ner.predict.Tagger`
(``entities(texts)``). :func:`load_model` opens either by the folder's ``finslm.json`` kind,
so ``finslm predict``, bulk scoring, the server and the load test take both. Kept apart from
``finslm.predict`` so the sentiment stages do not depend on the NER modules.
"""

from __future__ import annotations

from pathlib import Path

from finslm.models import ModelError, read_meta

TOKEN_TASK = "token-classification"
NER_KINDS = ("ner-transformer", "ner-onnx")


def is_token_classifier(model_dir: str | Path) -> bool:
    """Whether ``model_dir`` holds a token classifier (``train_ner`` / ``export_ner``)."""
    try:
        return read_meta(Path(model_dir)).get("kind") in NER_KINDS
    except ModelError:
        return False  # not a model folder at all: the loader says so


def tags_entities(model) -> bool:
    """Whether an opened model is a token classifier (``entities(texts)``, ``/v1/entities``)."""
    return getattr(model, "task", None) == TOKEN_TASK


def load_model(
    model_dir: str | Path,
    backend: str = "auto",
    threads: int = 0,
    device: str = "cpu",
    decode: str | None = None,
):
    """A :class:`~finslm.predict.Predictor` (:func:`finslm.predict.load_predictor`), or for a
    token classifier's folder a :class:`~finslm.ner.predict.Tagger` (``decode``: viterbi or
    argmax, default the folder's ``finslm.json``; token classifiers only)."""
    if not is_token_classifier(model_dir):
        if decode is not None:
            raise ModelError(
                f"{model_dir}: --decode {decode} applies to token classifiers (ner) only; "
                "drop it for a sentence classifier"
            )
        from finslm.predict import load_predictor

        return load_predictor(model_dir, backend, threads=threads, device=device)
    if device != "cpu":
        raise ModelError(f"{model_dir}: token classifiers run on the CPU only (--device cpu)")
    from finslm.ner.predict import Tagger

    return Tagger(model_dir, backend, threads=threads, decode=decode)
