"""The Predictor contract, for every backend, on the tiny model and the invented sentences."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from finslm.labels import LABELS
from finslm.models import ModelError
from finslm.predict import BACKENDS, Encoder, batch_plan, load_predictor

from .conftest import HELD_OUT, invented_sentences

TEXTS = [t for t, _ in invented_sentences(2)] + [
    "Short.",
    "A much longer sentence about quarterly revenue, margins, guidance and the outlook "
    "for the next fiscal year, repeated. " * 6,  # longer than max_length (64): truncated
    "Umsatz stieg um 5 % – café, naïve, 株式.",
]
# Largest |Δprobability| allowed between batch sizes 1 and 32 for one text. fp32 engines only
# differ by float rounding; dynamic INT8 scales activations per batch, so padding shifts it a bit.
BATCH_ATOL = {"onnx-int8": 2e-2, "openvino-int8": 2e-2, "ct2-int8": 2e-2}


@pytest.fixture(scope="module")
def folders(tiny_classifier, tiny_export, tiny_tfidf, tiny_engine_export):
    export_dir, _ = tiny_export
    return {
        "torch-fp32": tiny_classifier,
        "onnx-fp32": export_dir,
        "onnx-opt": export_dir,
        "onnx-int8": export_dir,
        "sklearn": tiny_tfidf,
        "openvino-fp32": tiny_engine_export,
        "openvino-int8": tiny_engine_export,
        "ct2-int8": tiny_engine_export,
    }


@pytest.fixture(scope="module")
def predictors(folders):
    return {b: load_predictor(folder, b, threads=1) for b, folder in folders.items()}


def test_every_registered_backend_is_covered(folders):
    assert set(folders) == set(BACKENDS)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_contract(predictors, backend):
    p = predictors[backend]
    assert p.backend == backend
    assert p.labels == LABELS
    proba = p.predict_proba(TEXTS)
    assert proba.shape == (len(TEXTS), len(LABELS))
    assert np.isfinite(proba).all() and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert p.predict(TEXTS) == [LABELS[i] for i in proba.argmax(axis=1)]
    # Empty input: an empty (0, n_labels) array, not an error.
    assert p.predict_proba([]).shape == (0, len(LABELS))
    assert p.predict([]) == []
    # Batching invariance: batch size changes padding, not answers.
    one_by_one = p.predict_proba(TEXTS, batch_size=1)
    np.testing.assert_allclose(one_by_one, proba, atol=BATCH_ATOL.get(backend, 1e-5))
    # What the benchmark needs from every backend.
    assert p.name.endswith(f"/{backend}")
    assert all(f.is_file() for f in p.files())
    assert p.num_parameters() > 0
    assert p.metadata()["backend"] == backend


def test_onnx_backends_match_torch(predictors):
    torch_proba = predictors["torch-fp32"].predict_proba(TEXTS)
    for backend, atol in (("onnx-fp32", 1e-5), ("onnx-opt", 1e-5), ("onnx-int8", 1e-2)):
        np.testing.assert_allclose(predictors[backend].predict_proba(TEXTS), torch_proba, atol=atol)


def test_every_backend_gives_the_trained_models_labels(trained_tiny, trained_export):
    """On held-out sentences the trained tiny model is right (>= 0.9); the fp32 graphs give its
    labels and probabilities; INT8 gives the same label for >= 95% of them."""
    texts = [t for t, _ in HELD_OUT]
    gold = np.array([y for _, y in HELD_OUT])
    reference = load_predictor(trained_tiny[0], "torch-fp32", threads=1)
    want = reference.predict_proba(texts)
    labels = np.array(reference.predict(texts))
    assert np.mean(labels == gold) >= 0.9
    for backend in ("onnx-fp32", "onnx-opt"):
        p = load_predictor(trained_export[0], backend, threads=1)
        assert p.predict(texts) == labels.tolist(), backend
        np.testing.assert_allclose(p.predict_proba(texts), want, atol=1e-4)
    int8 = load_predictor(trained_export[0], "onnx-int8", threads=1)
    assert np.mean(np.array(int8.predict(texts)) == labels) >= 0.95
    assert np.mean(np.array(int8.predict(texts)) == gold) >= 0.9


def test_export_folder_names_its_source_model(predictors, tiny_classifier):
    # The export folder's finslm.json carries the model name, so metrics keys line up.
    assert predictors["onnx-int8"].name == f"{tiny_classifier.name}/onnx-int8"
    assert predictors["torch-fp32"].name == f"{tiny_classifier.name}/torch-fp32"


def test_auto_backend_per_kind(folders):
    assert load_predictor(folders["torch-fp32"]).backend == "torch-fp32"
    assert load_predictor(folders["onnx-int8"]).backend == "onnx-int8"
    assert load_predictor(folders["sklearn"]).backend == "sklearn"


def test_encoder_matches_hugging_face_tokenizer(tiny_classifier):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(tiny_classifier)
    ours = Encoder(tiny_classifier, max_length=64)
    for batch in (TEXTS, TEXTS[:1], TEXTS[-2:]):
        want = hf(batch, padding=True, truncation=True, max_length=64, return_tensors="np")
        got = ours(batch)
        assert set(got) == set(want)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    assert ours(TEXTS)["input_ids"].shape[1] == 64  # the long text is truncated


def test_encoder_pads_to_a_multiple(tiny_classifier):
    """``pad_to_multiple_of`` rounds the padded length up (batch 1 included) and masks the extra
    positions; the real tokens and the lengths are those of plain padding."""
    plain = Encoder(tiny_classifier, max_length=64)
    rounded = Encoder(tiny_classifier, max_length=64, pad_to_multiple_of=16)
    for batch in (TEXTS[:1], TEXTS[:3]):
        want, got = plain(batch), rounded(batch)
        width = want["input_ids"].shape[1]
        assert width % 16 and got["input_ids"].shape[1] == -(-width // 16) * 16
        for key in want:
            np.testing.assert_array_equal(got[key][:, :width], want[key])
        assert not got["attention_mask"][:, width:].any()
        np.testing.assert_array_equal(rounded.lengths(batch), plain.lengths(batch))


def test_onnx_subfolder_of_a_transformer_folder(tmp_path, tiny_classifier, tiny_export):
    """A transformer folder with an onnx/ subfolder (the export kept beside the weights) works."""
    model = tmp_path / "withonnx"
    shutil.copytree(tiny_classifier, model)
    (model / "onnx").mkdir()
    shutil.copy2(tiny_export[0] / "model.onnx", model / "onnx" / "model.onnx")
    p = load_predictor(model, "onnx-fp32")
    assert p.name == "withonnx/onnx-fp32"
    assert p.predict_proba(TEXTS[:3]).shape == (3, 3)


def test_models_folder_finds_its_export_in_exports(tmp_path, tiny_classifier, tiny_export):
    """models/<name> with a graph backend opens exports/<name>, the export stage's folder."""
    model = tmp_path / "models" / "mini"
    shutil.copytree(tiny_classifier, model)
    with pytest.raises(ModelError, match=r"exports/mini.*dvc repro export@"):
        load_predictor(model, "onnx-int8")
    shutil.copytree(tiny_export[0], tmp_path / "exports" / "mini")
    p = load_predictor(model, "onnx-int8", threads=1)
    assert p.graph_path == tmp_path / "exports" / "mini" / "model.int8.onnx"
    direct = load_predictor(tmp_path / "exports" / "mini", "onnx-int8", threads=1)
    np.testing.assert_allclose(p.predict_proba(TEXTS[:3]), direct.predict_proba(TEXTS[:3]))


def test_errors_name_the_folder_and_the_fix(folders, tiny_classifier):
    with pytest.raises(ModelError, match="unknown; choose one of torch-fp32"):
        load_predictor(tiny_classifier, "onnx-int4")
    with pytest.raises(ModelError, match="cannot run on backend 'sklearn'; use torch-fp32"):
        load_predictor(tiny_classifier, "sklearn")
    with pytest.raises(ModelError, match="use sklearn"):
        load_predictor(folders["sklearn"], "onnx-int8")
    # A trained folder without an export: the message says how to make one.
    with pytest.raises(ModelError, match=r"no model.int8.onnx.*dvc repro export@"):
        load_predictor(tiny_classifier, "onnx-int8")
    with pytest.raises(ModelError, match="device 'tpu': unknown"):
        load_predictor(folders["onnx-int8"], "onnx-int8", device="tpu")
    with pytest.raises(ModelError, match=r"nowhere: no such folder; run `dvc repro train@"):
        load_predictor(tiny_classifier.parent / "nowhere", "onnx-int8")
    with pytest.raises(ModelError, match="not a finslm model folder .no finslm.json"):
        load_predictor(tiny_classifier.parent, "onnx-int8")  # a folder, but no model in it


def test_cuda_only_when_available(folders, monkeypatch):
    import onnxruntime as ort

    import finslm.predict as predict

    p = load_predictor(folders["onnx-int8"], "onnx-int8", device="auto")
    assert p.providers[-1] == "CPUExecutionProvider"
    if not predict._cuda_driver_present():  # this machine: the GPU build must still pick CPU
        assert p.providers == ["CPUExecutionProvider"]
        with pytest.raises(ModelError, match="no NVIDIA driver was found"):
            load_predictor(folders["onnx-int8"], "onnx-int8", device="cuda")
    # The CPU-only build (what non-x86_64 platforms install): asking for CUDA says how to fix it.
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert load_predictor(folders["onnx-int8"], "onnx-int8", device="auto").providers == [
        "CPUExecutionProvider"
    ]
    with pytest.raises(ModelError, match=r"CPU-only build.*pip install onnxruntime-gpu"):
        load_predictor(folders["onnx-int8"], "onnx-int8", device="cuda")


# --- issue #26 item 6: a damaged model folder is one ModelError line, not a traceback ----------


def _truncate(path, keep: int = 100) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _copy(src, dst):
    shutil.copytree(src, dst, symlinks=False)
    return dst


@pytest.mark.parametrize(
    ("which", "filename", "backend", "fix"),
    [
        ("sklearn", "model.joblib", "sklearn", "train@"),
        ("torch-fp32", "model.safetensors", "torch-fp32", "train@"),
        ("onnx-int8", "model.int8.onnx", "onnx-int8", "export@"),
        ("onnx-fp32", "model.onnx", "onnx-fp32", "export@"),
    ],
)
def test_truncated_files_are_a_model_error(folders, tmp_path, which, filename, backend, fix):
    folder = _copy(folders[which], tmp_path / "m")
    _truncate(folder / filename)
    with pytest.raises(ModelError) as info:
        load_predictor(folder, backend)
    message = str(info.value)
    assert str(folder) in message and "damaged or incomplete" in message
    assert f"`dvc repro {fix}" in message and "\n" not in message


@pytest.mark.parametrize("content", ['{"kind": "tfidf", ', "[1, 2]", "\xff\xfe garbage"])
def test_broken_meta_is_a_model_error(folders, tmp_path, content):
    folder = _copy(folders["sklearn"], tmp_path / "m")
    (folder / "finslm.json").write_bytes(content.encode("latin-1"))
    with pytest.raises(ModelError, match=r"finslm.json: .*dvc (repro|checkout)"):
        load_predictor(folder)


@pytest.mark.parametrize("which", ["torch-fp32", "onnx-int8"])
@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"labels": ["down", "up"]},
            r"finslm.json: 2 labels \(down, up\) for a model with 3 outputs",
        ),
        ({"max_length": 4096}, r"finslm.json: max_length 4096 is past the model's \d+ positions"),
    ],
)
def test_meta_that_disagrees_with_the_network_is_refused(folders, tmp_path, which, patch, message):
    # Mislabelled columns, or an engine failure on the first long text, otherwise.
    folder = _copy(folders[which], tmp_path / "m")
    meta = json.loads((folder / "finslm.json").read_text())
    (folder / "finslm.json").write_text(json.dumps({**meta, **patch}))
    with pytest.raises(ModelError, match=message):
        load_predictor(folder, which)


def test_a_folder_without_its_tokenizer_is_refused(folders, tmp_path):
    # AutoTokenizer would build one of special tokens alone: every word [UNK], wrong answers.
    folder = _copy(folders["onnx-int8"], tmp_path / "m")
    (folder / "tokenizer.json").unlink()
    with pytest.raises(
        ModelError, match=r"m: no tokenizer.json \(nor vocab.txt.*lacks its tokenizer"
    ):
        load_predictor(folder, "onnx-int8")


def _shuffled_lengths(n: int = 40) -> list[str]:
    """``n`` texts of shuffled lengths (1 to ``n`` words, some past max_length)."""
    words = ["profit", "revenue", "margin", "outlook", "guidance", "demand", "costs", "shares"]
    texts = [" ".join(words[j % len(words)] for j in range(k * 2 + 1)) for k in range(n)]
    order = np.random.default_rng(3).permutation(n)
    return [texts[i] for i in order]


@pytest.mark.parametrize("backend", ["torch-fp32", "onnx-fp32", "onnx-opt", "sklearn"])
def test_length_bucketing_keeps_order_and_probabilities(predictors, backend):
    p, texts = predictors[backend], _shuffled_lengths()
    lengths = p.lengths(texts)
    assert len(set(lengths.tolist())) > 10 and not np.all(np.diff(lengths) >= 0)  # shuffled
    bucketed = p.predict_proba(texts, batch_size=8)  # bucket=True is the default
    plain = p.predict_proba(texts, batch_size=8, bucket=False)
    one_by_one = np.concatenate([p.predict_proba([t], batch_size=1) for t in texts])
    np.testing.assert_allclose(bucketed, plain, atol=1e-6)
    np.testing.assert_allclose(bucketed, one_by_one, atol=1e-6)  # row i is text i


def test_bucketed_batches_run_in_length_order(predictors):
    p, texts = predictors["onnx-fp32"], _shuffled_lengths()
    seen: list[int] = []
    run = p._predict_batch
    p._predict_batch = lambda batch: seen.append(len(batch)) or run(batch)
    try:
        p.predict_proba(texts, batch_size=8)
    finally:
        del p._predict_batch
    assert seen == [8] * 5
    plan = batch_plan(len(texts), 8, p.lengths(texts))
    longest = [int(p.lengths(texts)[idx].max()) for idx in plan]
    assert longest == sorted(longest)
    assert sorted(np.concatenate(plan).tolist()) == list(range(len(texts)))


def test_encoder_lengths_count_tokens_after_truncation(predictors):
    p = predictors["onnx-fp32"]
    texts = ["Short.", TEXTS[-2]]
    lengths = p.lengths(texts)
    assert lengths[1] == p.max_length  # truncated
    assert p.truncated(texts).tolist() == [False, True] and p.max_tokens == p.max_length
    assert predictors["torch-fp32"].truncated(texts).tolist() == [False, True]
    assert lengths[0] == p.encoder([texts[0]])["input_ids"].shape[1]
    assert [list(b) for b in batch_plan(5, 2)] == [[0, 1], [2, 3], [4]]


@pytest.fixture(scope="module")
def onnx_fp32(tiny_export):
    return load_predictor(tiny_export[0], "onnx-fp32", threads=1)


def _spy(p):
    seen = []
    run = p._predict_batch
    p._predict_batch = lambda batch: seen.append(list(batch)) or run(batch)
    return seen


def test_predict_honours_batch_size_and_bucket_flag(onnx_fp32):
    texts = ["profit " * (k % 7 + 1) for k in range(10)]
    seen = _spy(onnx_fp32)
    try:
        onnx_fp32.predict(texts, batch_size=3)
        assert [len(b) for b in seen] == [3, 3, 3, 1]
        seen.clear()
        onnx_fp32.predict_proba(texts, batch_size=3, bucket=False)
        # input order without bucketing (each text normalised: the trailing space goes)
        assert [t for b in seen for t in b] == [t.strip() for t in texts]
        seen.clear()
        onnx_fp32.predict_proba(texts, batch_size=3)  # bucketed: batches run in length order
        lengths = [
            len(onnx_fp32.encoder.lengths(b)) and int(onnx_fp32.encoder.lengths(b).max())
            for b in seen
        ]
        assert lengths == sorted(lengths) and [t for b in seen for t in b] != [
            t.strip() for t in texts
        ]
    finally:
        del onnx_fp32._predict_batch


def test_truncated_is_exact_near_the_byte_threshold(onnx_fp32):
    m = onnx_fp32.max_length
    # Each "!" is its own token: m-1 of them + [CLS], [SEP] overflow; m-3 fit.
    assert onnx_fp32.truncated(["!" * (m - 1), "!" * (m - 3)]).tolist() == [True, False]
    # Many bytes, few tokens: long enough to be tokenised, too short to overflow.
    assert onnx_fp32.truncated(["profitability " * 8]).tolist() == [False]


def test_tfidf_trained_on_two_labels_gives_the_third_probability_zero(tmp_path):
    # Data with two of the three labels: every consumer still gets (n, 3) in LABELS order.
    import pandas as pd

    from finslm.config import TfidfConfig
    from finslm.labels import LABELS
    from finslm.predict import load_predictor
    from finslm.train.tfidf import train_tfidf
    from tests.conftest import invented_sentences

    rows = [(t, y) for t, y in invented_sentences(6) if y != "neutral"]
    frame = pd.DataFrame(rows, columns=["text", "label"])
    train_tfidf(TfidfConfig(), frame, frame, tmp_path / "tfidf")
    proba = load_predictor(tmp_path / "tfidf").predict_proba([t for t, _ in rows[:4]])
    assert proba.shape == (4, len(LABELS))
    assert (proba[:, LABELS.index("neutral")] == 0).all()
    assert proba.sum(axis=1) == pytest.approx(1.0)


@pytest.mark.parametrize("backend", ["sklearn", "onnx-int8"])
def test_inputs_are_normalised_as_training_text_is(tiny_tfidf, tiny_export, backend):
    """Full-width letters, a ligature, a zero-width space, a non-breaking space, and mojibake
    score as the cleaned text prepare would have trained on (no train/serve skew)."""
    folder = tiny_tfidf if backend == "sklearn" else tiny_export[0]
    predictor = load_predictor(folder, backend)
    clean = "Café profits rose sharply in the final quarter"
    messy = [
        "  Ｃafé\u00a0proﬁts rose\u200b sharply in the ﬁnal quarter ",
        clean.replace("é", "Ã©"),  # UTF-8 read as latin-1
    ]
    assert clean not in messy
    np.testing.assert_allclose(
        predictor.predict_proba(messy), predictor.predict_proba([clean, clean]), atol=1e-6
    )


def test_max_length_one_past_the_positions_is_refused(tmp_path):
    """max_length equal to the position embeddings loads; one past them is refused."""
    from finslm.models import ModelError
    from finslm.predict import check_config

    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 128}))
    check_config(tmp_path, {"labels": ["a", "b", "c"], "max_length": 128})
    with pytest.raises(ModelError, match="max_length 129 is past the model's 128 positions"):
        check_config(tmp_path, {"labels": ["a", "b", "c"], "max_length": 129})
