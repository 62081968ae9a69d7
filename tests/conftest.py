"""Shared fixtures: a tiny random BERT (fast, offline) and small invented sentence sets.

No test reads the licensed Financial PhraseBank's text into the repo; sentences here are invented.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.browser import find_chromium

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

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
    from finslm.models import load_for_finetuning, write_meta

    out = tmp_path_factory.mktemp("models") / "tiny"
    tokenizer, model = load_for_finetuning(str(tiny_checkpoint))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    write_meta(out, {"kind": "transformer", "checkpoint": str(tiny_checkpoint), "max_length": 64})
    return out


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


def invented_sentences(n_per_template: int = 10) -> list[tuple[str, str]]:
    """(text, label) pairs from invented templates: learnable, distinct, licence-free."""
    rows = []
    for label, templates in (("positive", POS), ("negative", NEG), ("neutral", NEU)):
        for template in templates:
            for i in range(n_per_template):
                rows.append((template.format(i * 3 + 2), label))
    return rows


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
