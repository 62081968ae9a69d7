"""Document context (FLERT): neighbours of the same document and split, encoded and not labelled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finslm.ner.align import IGNORE, encode_dataset
from finslm.ner.context import NO_CONTEXT, document_context, join


def _doc_frame() -> pd.DataFrame:
    rows = [  # out of file order, two documents, a sentence cut into two windows (line 5)
        ("a.txt", "1", 9, ["d1", "last"]),
        ("a.txt", "1", 1, ["d1", "first", "sentence"]),
        ("a.txt", "2", 1, ["other", "document"]),
        ("a.txt", "1", 5, ["window", "one"]),
        ("a.txt", "1", 5, ["window", "two"]),
        ("b.txt", "1", 1, ["another", "file"]),
    ]
    return pd.DataFrame(
        [
            {"source": s, "document": d, "line": n, "tokens": t, "tags": ["O"] * len(t)}
            for s, d, n, t in rows
        ]  # fmt: skip
    )


def test_context_comes_from_the_same_document_in_file_order():
    ctx = document_context(_doc_frame(), 3)
    assert ctx[1] == ([], ["window", "one", "window"])  # the document's first sentence
    assert ctx[3] == (["d1", "first", "sentence"][-3:], ["window", "two", "d1"])
    assert ctx[4] == (["sentence", "window", "one"], ["d1", "last"])  # windows keep their order
    assert ctx[0] == (["one", "window", "two"], [])  # the last sentence: nothing after
    assert ctx[2] == NO_CONTEXT and ctx[5] == NO_CONTEXT  # alone in its document / its file


def test_no_context_when_off_or_without_document_columns():
    frame = _doc_frame()
    assert document_context(frame, 0) == [NO_CONTEXT] * len(frame)
    bare = frame[["tokens", "tags"]]
    assert document_context(bare, 8) == [NO_CONTEXT] * len(frame)


def test_join_keeps_the_nearest_share_of_each_side():
    ctx = (["l1", "l2", "l3", "l4"], ["r1", "r2", "r3", "r4"])
    assert join(["s"], ctx) == (["l1", "l2", "l3", "l4", "s", "r1", "r2", "r3", "r4"], 4)
    assert join(["s"], ctx, 0.5) == (["l3", "l4", "s", "r1", "r2"], 2)
    assert join(["s"], ctx, 0.0) == (["s"], 0)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from finslm.models import resolve_checkpoint

    return AutoTokenizer.from_pretrained(resolve_checkpoint("packaged:all-MiniLM-L6-v2"))


def test_context_words_are_encoded_but_never_labelled(tokenizer):
    ids = {"O": 0, "B-ORG": 1, "I-ORG": 2}
    words, tags = [["Acme", "Bank", "paid"]], [["B-ORG", "I-ORG", "O"]]
    ctx = [(["the", "company"], ["on", "time"])]
    plain = encode_dataset(tokenizer, words, tags, ids, 64)[0]
    wide = encode_dataset(tokenizer, words, tags, ids, 64, contexts=ctx)[0]
    assert len(wide["input_ids"]) == len(plain["input_ids"]) + 4  # four one-piece words more
    assert [x for x in wide["labels"] if x != IGNORE] == [1, 2, 0]  # the sentence's words only
    assert wide["input_ids"][3:6] == plain["input_ids"][1:4]  # the sentence after 2 context words


def test_context_is_halved_until_the_sentence_fits(tokenizer):
    ids = {"O": 0}
    sentence = ["word"] * 10
    ctx = [(["left"] * 20, ["right"] * 20)]
    # 16 sub-tokens: CLS + SEP + 10 sentence words leave room for 4 context words, so the
    # context goes 20 -> 10 -> 5 -> 0 words a side; the sentence is labelled whole.
    (row,) = encode_dataset(tokenizer, [sentence], [["O"] * 10], ids, 16, contexts=ctx)
    assert [x for x in row["labels"] if x != IGNORE] == [0] * 10
    assert len(row["input_ids"]) == 12


def test_a_tagger_reads_the_sentence_out_of_its_context(tiny_tagger_layout):
    from finslm.ner.predict import Tagger

    model_dir, export_dir = tiny_tagger_layout
    words = [["Acme", "Bank", "paid", "Jane", "Doe"], ["The", "lender", "agreed"]]
    ctx = [(["before", "it"], ["and", "after"]), NO_CONTEXT]
    for folder, backend in ((model_dir, "torch-fp32"), (export_dir, "onnx-fp32")):
        tagger = Tagger(folder, backend)
        plain = tagger.word_logits(words)
        wide = tagger.word_logits(words, contexts=ctx)
        assert [w.shape for w in wide] == [w.shape for w in plain]  # one row per sentence word
        assert np.allclose(wide[1], plain[1], atol=1e-5)  # no context: unchanged
        assert not np.allclose(wide[0], plain[0], atol=1e-5)  # the context reached the encoder
        # Far more context than max_length (32) holds: halved, then dropped: as plain.
        huge = [(["x"] * 200, ["y"] * 200), NO_CONTEXT]
        assert np.allclose(tagger.word_logits(words, contexts=huge)[0], plain[0], atol=1e-5)
        with pytest.raises(ValueError, match="1 contexts for 2 sentences"):
            tagger.word_logits(words, contexts=ctx[:1])


def _in_documents(frame: pd.DataFrame, per_doc: int) -> pd.DataFrame:
    return frame.assign(document=[str(i // per_doc) for i in range(len(frame))])


@pytest.mark.slow
def test_a_model_trained_with_context_is_scored_and_exported_with_it(tmp_path, tiny_checkpoint):
    from finslm.config import ExportConfig, NerConfig, NerModelConfig
    from finslm.models import read_meta
    from finslm.ner.evaluate_run import score
    from finslm.ner.export import export_ner
    from finslm.ner.predict import Tagger
    from finslm.ner.train import train_ner

    from ..conftest import invented_ner

    cfg = NerModelConfig(
        checkpoint=str(tiny_checkpoint), epochs=6, batch_size=8, lr=5e-3, max_length=48,
        early_stopping_patience=6, context_words=6, mention_swap_copies=1, mention_swap_p=1.0,
    )  # fmt: skip
    train, val = _in_documents(invented_ner(48, 0), 4), _in_documents(invented_ner(16, 1), 4)
    out = tmp_path / "ner-ctx"
    summary = train_ner(cfg, ["PER", "ORG"], train, val, out, name="ner-ctx", threads=1)
    assert read_meta(out)["context_words"] == 6
    assert summary["train_sentences"] > 48  # mention copies, each with its original's context
    assert summary["val"]["entity_micro_f1"] > 0.8
    tagger = Tagger(out)
    test = _in_documents(invented_ner(12, 3), 3)
    scored = score(tagger, test, ["PER", "ORG"])
    assert scored["entity_micro_f1"] > 0.8 and scored["sentences"] == 12
    gate = NerConfig(models={"ner-ctx": {}}, bench_model="ner-ctx",
                     int8_min_token_agreement=0.0, int8_max_f1_drop_pt=100.0)  # fmt: skip
    metrics = export_ner(out, tmp_path / "x", val, ExportConfig(), gate, log=lambda _: None)
    fp32 = metrics["onnx-fp32"]
    assert fp32["token_agreement"] == 1.0 and fp32["max_abs_logit_diff"] < 1e-3
    assert fp32["entity_micro_f1_torch"] == pytest.approx(summary["val"]["entity_micro_f1"])
    assert Tagger(tmp_path / "x", "onnx-fp32").context_words == 6  # the export's finslm.json


def test_a_sentence_with_context_is_scored_on_its_own_words_not_its_neighbours():
    """With document context, each sentence word's scores come from that word's position in the
    encoded input, not from the context words placed before it."""
    from finslm.ner.predict import Tagger

    class OneSubTokenPerWord(Tagger):
        def __init__(self):  # no model: a capitalised word scores B-ORG, others O
            self.labels = ["O", "B-ORG", "I-ORG"]
            self.decode = "argmax"

        def sub_logits(self, words):
            width = max(len(s) for s in words) + 2
            logits = np.zeros((len(words), width, 3), dtype=np.float32)
            ids = []
            for r, sentence in enumerate(words):
                for w, word in enumerate(sentence):
                    logits[r, 1 + w, 1 if word[:1].isupper() else 0] = 5.0
                ids.append(
                    [None, *range(len(sentence)), None] + [None] * (width - len(sentence) - 2)
                )
            return logits, ids

    tagger = OneSubTokenPerWord()
    words = [["profit", "rose"]]
    ctx = [(["Acme", "Corp"], ["later"])]  # left context is capitalised, the sentence is not
    (scores,) = tagger.word_logits(words, contexts=ctx)
    assert scores.argmax(-1).tolist() == [0, 0]
