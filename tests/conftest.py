"""Shared fixtures: a tiny random BERT (fast, offline), the same BERT trained on invented
templates, small invented sentence sets; and the suite's guards (offline, seeded RNGs).

No test reads the licensed Financial PhraseBank's text into the repo; sentences here are invented.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

# Forced, not defaulted, before anything imports huggingface_hub (it reads these at import): a
# shell's HF_HUB_OFFLINE=0 must not let a test reach the hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tools.browser import find_chromium  # noqa: E402

# Real-data tests (tests/data/test_real_phrasebank.py) read the Financial PhraseBank from this
# folder. Set, they must pass (a missing folder fails); unset, they look beside the clone and skip
# when it is not there. On CI: FINSLM_REAL_DATA=../shared/data/FinancialPhraseBank-v1.0.
REAL_DATA_ENV = "FINSLM_REAL_DATA"


class HubCallError(RuntimeError):
    """Raised by every hub download function during the test suite."""


def _refuse_hub(*args, **kwargs):
    raise HubCallError(f"the test suite is offline: a hub call was made ({args!r}, {kwargs!r})")


def _block_hub() -> None:
    """Every hub download function raises, for the whole run (a test may patch in a fake).

    Done when this conftest is imported, before any test module is collected: transformers
    binds ``hf_hub_download`` and ``snapshot_download`` from huggingface_hub when it is first
    imported, so it gets these. (Were it imported already, its names are replaced too.)
    """
    import sys

    import huggingface_hub
    import huggingface_hub._snapshot_download
    import huggingface_hub.file_download

    huggingface_hub.hf_hub_download = _refuse_hub
    huggingface_hub.snapshot_download = _refuse_hub
    huggingface_hub.file_download.hf_hub_download = _refuse_hub
    huggingface_hub._snapshot_download.snapshot_download = _refuse_hub
    loaded = sys.modules.get("transformers.utils.hub")
    if loaded is not None:
        loaded.hf_hub_download = loaded.snapshot_download = _refuse_hub


_block_hub()


@pytest.fixture(autouse=True)
def _seeded_rngs():
    """Every test starts from the same global RNG state (Python, NumPy, torch), so a test's
    random draws do not depend on which tests ran before it or on ``-k``."""
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


# Browser checks of the HTML reports need Debian's chromium. A developer machine without it skips
# them; CI (CI=true; .ci/run installs chromium) runs them, so a missing browser fails there.
needs_chromium = pytest.mark.skipif(
    not os.environ.get("CI") and not find_chromium(),
    reason="no Chromium: apt-get install chromium (or set FINSLM_CHROMIUM); CI runs these",
)

TINY_BERT = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=128,
)


def make_tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    """A random 2-layer BERT (≈1M params, mostly the 30k-word embedding) with MiniLM's tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from finslm.models import resolve_checkpoint

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(resolve_checkpoint("packaged:all-MiniLM-L6-v2"))
    config = BertConfig(vocab_size=tokenizer.vocab_size, **TINY_BERT)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory, tiny_checkpoint) -> Path:
    """An untrained tiny classifier saved as a finslm model folder (for predictor/export tests)."""
    import torch

    from finslm.models import load_for_finetuning, write_meta

    out = tmp_path_factory.mktemp("models") / "tiny"
    torch.manual_seed(1)  # the new head's weights: the same whichever test asks first
    tokenizer, model = load_for_finetuning(str(tiny_checkpoint))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    write_meta(out, {"kind": "transformer", "checkpoint": str(tiny_checkpoint), "max_length": 64})
    return out


def load_stage(name: str):
    """Import ``stages/<name>.py`` under a private module name (stages/ is not a package), to
    call its ``main(argv)`` in-process."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "stages" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_stage_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


POS = [
    "Net profit rose {} percent on strong demand.",
    "The company raised its full-year outlook by {} percent.",
]
NEG = [
    "Operating loss widened by {} percent in the quarter.",
    "The firm cut {} jobs after orders fell.",
]
NEU = [
    "The annual meeting will be held on {} May.",
    "The company employs {} people in three countries.",
]


def invented_sentences(n_per_template: int = 10, start: int = 0) -> list[tuple[str, str]]:
    """(text, label) pairs from invented templates: learnable, distinct, licence-free.

    The i-th sentence of a template carries the number ``i * 3 + 2`` (i from ``start``): sets
    with different ``start`` share no sentence.
    """
    rows = []
    for label, templates in (("positive", POS), ("negative", NEG), ("neutral", NEU)):
        for template in templates:
            for i in range(start, start + n_per_template):
                rows.append((template.format(i * 3 + 2), label))
    return rows


# The trained tiny model: the tiny BERT with the default (mean-pooling) head, fine-tuned on the
# invented templates. Seeded and single-threaded, so the same weights every run; ~5 s on one core.
# Any test that uses it trains a transformer (once per session) and is marked slow.
TRAINED_TRAIN = invented_sentences(6)  # 36 sentences, numbers 2..17
TRAINED_VAL = invented_sentences(3, start=6)  # 18 sentences, numbers 20..26
HELD_OUT = invented_sentences(4, start=20)  # 24 sentences, numbers 62..71: for parity checks


def train_tiny(checkpoint: Path, out: Path, **overrides):
    """Train the tiny BERT on TRAINED_TRAIN (validated on TRAINED_VAL); return the summary."""
    import dataclasses

    import pandas as pd

    from finslm.config import TransformerConfig
    from finslm.train.transformer import train_transformer

    settings = dict(
        checkpoint=str(checkpoint),
        pooling="mean",
        epochs=4,
        batch_size=8,
        lr=1e-2,
        warmup_ratio=0.0,
        max_length=32,
        early_stopping_patience=4,
    )
    cfg = dataclasses.replace(TransformerConfig(), **{**settings, **overrides})
    frame = lambda rows: pd.DataFrame(rows, columns=["text", "label"])  # noqa: E731
    return train_transformer(cfg, frame(TRAINED_TRAIN), frame(TRAINED_VAL), out, seed=0, threads=1)


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory, tiny_checkpoint) -> tuple[Path, dict]:
    """(folder, training summary): the tiny BERT trained to >= 0.9 validation accuracy."""
    out = tmp_path_factory.mktemp("models") / "trained"
    summary = train_tiny(tiny_checkpoint, out)
    return out, summary


@pytest.fixture(scope="session")
def trained_export(tmp_path_factory, trained_tiny):
    """(folder, metrics): ``trained_tiny`` exported to fp32, optimised and INT8 ONNX graphs."""
    from finslm.config import ExportConfig
    from finslm.export import export_model

    out = tmp_path_factory.mktemp("exports") / "trained"
    texts = [text for text, _ in TRAINED_VAL]
    metrics = export_model(trained_tiny[0], out, texts, ExportConfig(), log=lambda _: None)
    return out, metrics


_SLOW_FIXTURES = {"trained_tiny", "trained_export", "trained_ner", "tiny_ner_export"}


@pytest.hookimpl(tryfirst=True)  # before -m "not slow" deselects
def pytest_collection_modifyitems(items):
    """A test that needs the trained tiny model trains a transformer: it is slow."""
    for item in items:
        if _SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


FIRMS = ["Velmont", "Corvik", "Ostren", "Tamber", "Selwyn", "Brakal"]
PEOPLE = ["Dagny", "Oswin", "Marla", "Torin", "Elspeth", "Caspar"]


def invented_ner(n: int, seed: int) -> pd.DataFrame:  # noqa: F821 (imported inside)
    """``n`` tagged sentences of two invented templates (firm + "Bank" is ORG, a name PER)."""
    import pandas as pd

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        firm, person = rng.choice(FIRMS), rng.choice(PEOPLE)
        if i % 2:
            tokens = [person, "joined", firm, "Bank", "."]
            tags = ["B-PER", "O", "B-ORG", "I-ORG", "O"]
        else:
            tokens = [firm, "Bank", "hired", person, "today", "."]
            tags = ["B-ORG", "I-ORG", "O", "B-PER", "O", "O"]
        rows.append({"tokens": tokens, "tags": tags, "source": "t", "line": i})
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def trained_ner(tmp_path_factory, tiny_checkpoint):
    """(folder, summary): the tiny BERT trained as a PER/ORG tagger on invented templates."""
    from finslm.config import NerModelConfig
    from finslm.ner.train import train_ner

    out = tmp_path_factory.mktemp("models") / "ner-tiny"
    cfg = NerModelConfig(
        checkpoint=str(tiny_checkpoint), epochs=8, batch_size=8, lr=5e-3, max_length=32,
        early_stopping_patience=8, word_shape=True,
    )  # fmt: skip
    summary = train_ner(
        cfg,
        ["PER", "ORG"],
        invented_ner(64, 0),
        invented_ner(16, 1),
        out,
        name="ner-tiny",
        threads=1,
    )
    return out, summary


@pytest.fixture(scope="session")
def tiny_ner_export(tmp_path_factory, trained_ner) -> Path:
    """``trained_ner`` exported (fp32, optimised, INT8); the INT8 gate loosened as for any
    32-wide random-init model (tests/ner/test_model.py says why)."""
    from finslm.config import ExportConfig, NerConfig
    from finslm.ner.export import export_ner

    gate = NerConfig(models={"ner-tiny": {}}, bench_model="ner-tiny",
                     int8_min_token_agreement=0.9, int8_max_f1_drop_pt=15.0)  # fmt: skip
    out = tmp_path_factory.mktemp("exports") / "ner-tiny"
    export_ner(trained_ner[0], out, invented_ner(16, 2), ExportConfig(), gate, log=lambda _: None)
    return out


@pytest.fixture(scope="session")
def tiny_tagger_layout(tmp_path_factory, tiny_checkpoint) -> tuple[Path, Path]:
    """(models/ner-minilm, exports/ner-minilm) of an untrained tiny PER/ORG/LOC tagger: for tests
    of the commands and interfaces, not of what a tagger learns (fast: no training)."""
    import torch

    from finslm.config import ExportConfig, NerConfig
    from finslm.models import write_meta
    from finslm.ner.export import export_ner
    from finslm.ner.tags import label_list
    from finslm.ner.train import load_token_classifier

    root = tmp_path_factory.mktemp("tagger")
    model_dir, export_dir = root / "models" / "ner-minilm", root / "exports" / "ner-minilm"
    labels = label_list(["PER", "ORG", "LOC"])
    torch.manual_seed(2)
    tokenizer, model = load_token_classifier(str(tiny_checkpoint), labels)
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    meta = {"kind": "ner-transformer", "task": "token-classification", "name": "ner-minilm"}
    write_meta(model_dir, {**meta, "labels": labels, "max_length": 32, "params": 1})
    gate = NerConfig(models={"ner-minilm": {}}, bench_model="ner-minilm",
                     int8_min_token_agreement=0.0, int8_max_f1_drop_pt=100.0)  # fmt: skip
    export_ner(model_dir, export_dir, invented_ner(8, 3), ExportConfig(), gate, log=lambda _: None)
    return model_dir, export_dir


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory, tiny_classifier):
    """(folder, metrics): ``tiny_classifier`` exported to fp32, optimised and INT8 ONNX graphs."""
    from finslm.config import ExportConfig
    from finslm.export import export_model

    out = tmp_path_factory.mktemp("exports") / "tiny"
    texts = [text for text, _ in invented_sentences(4)]
    metrics = export_model(tiny_classifier, out, texts, ExportConfig(), log=lambda _: None)
    return out, metrics


@pytest.fixture(scope="session")
def tiny_engine_export(tmp_path_factory, tiny_classifier, tiny_export) -> Path:
    """A copy of ``tiny_export`` with the other engines' files built into it (finslm.engines):
    the NNCF INT8 IR, calibrated on invented sentences none of the tests predict, and the
    CTranslate2 folder."""
    import shutil

    from finslm.engines_build import build_openvino_int8, convert_ct2

    out = tmp_path_factory.mktemp("exports") / "tiny"
    shutil.copytree(tiny_export[0], out, dirs_exist_ok=True)
    calibration = [text for text, _ in invented_sentences(4, start=40)]
    build_openvino_int8(out, calibration, log=lambda _: None)
    convert_ct2(tiny_classifier, out, log=lambda _: None)
    return out


@pytest.fixture(scope="session")
def tiny_tfidf(tmp_path_factory) -> Path:
    """The TF-IDF baseline fitted on invented sentences, saved as a finslm model folder."""
    import joblib

    from finslm.config import TfidfConfig
    from finslm.models import TFIDF_FILE, build_tfidf, write_meta

    out = tmp_path_factory.mktemp("models") / "tfidf"
    out.mkdir()
    rows = invented_sentences(5)
    pipeline = build_tfidf(TfidfConfig()).fit([t for t, _ in rows], [y for _, y in rows])
    joblib.dump(pipeline, out / TFIDF_FILE)
    write_meta(out, {"kind": "tfidf"})
    return out
