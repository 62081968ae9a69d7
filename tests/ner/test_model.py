"""A tiny random BERT learns invented templates; export parity; spans with character offsets."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from finslm.config import ExportConfig, NerConfig, NerModelConfig
from finslm.models import ModelError
from finslm.ner.predict import Tagger

from ..conftest import invented_ner as invented


@pytest.fixture(scope="module")
def trained(trained_ner):
    return trained_ner


@pytest.mark.slow
def test_tiny_bert_learns_invented_templates(trained):
    out, summary = trained
    assert summary["val"]["entity_micro_f1"] > 0.9
    assert summary["class_weights"][0] < 1  # O, the most frequent label, weighs least
    tagger = Tagger(out)
    assert tagger.encoder.word_shape  # trained with word_shape: finslm.json says so
    assert tagger.decode == "viterbi" and Tagger(out, decode="argmax").decode == "argmax"
    with pytest.raises(ModelError, match="decode 'beam': choose one of viterbi, argmax"):
        Tagger(out, decode="beam")
    ((tags, probs),) = tagger.tag_words([["Tamber", "Bank", "hired", "Marla", "today", "."]])
    assert tags == ["B-ORG", "I-ORG", "O", "B-PER", "O", "O"]
    text = "Tamber Bank hired Marla today."
    (ents,) = tagger.entities([text])
    assert [(e["type"], e["start"], e["end"]) for e in ents] == [("ORG", 0, 11), ("PER", 18, 23)]
    assert [e["text"] for e in ents] == ["Tamber Bank", "Marla"]
    assert all(0 < e["score"] <= 1 for e in ents)


@pytest.mark.slow
def test_io_labelled_model_returns_iob2_spans(tmp_path, tiny_checkpoint):
    from finslm.ner.train import train_ner

    cfg = NerModelConfig(
        checkpoint=str(tiny_checkpoint), epochs=8, batch_size=8, lr=5e-3, max_length=32,
        early_stopping_patience=8, tag_scheme="io",
    )  # fmt: skip
    out = tmp_path / "ner-io"
    summary = train_ner(
        cfg, ["PER", "ORG"], invented(64, 0), invented(16, 1), out, name="ner-io", threads=1
    )
    assert summary["val"]["entity_micro_f1"] > 0.9  # IO gold scored as IOB2 entities
    assert len(summary["class_weights"]) == 3  # O, I-PER, I-ORG
    tagger = Tagger(out)
    assert tagger.labels == ["O", "I-PER", "I-ORG"]
    ((tags, _),) = tagger.tag_words([["Tamber", "Bank", "hired", "Marla", "today", "."]])
    assert tags == ["B-ORG", "I-ORG", "O", "B-PER", "O", "O"]
    (ents,) = tagger.entities(["Tamber Bank hired Marla today."])
    assert [e["text"] for e in ents] == ["Tamber Bank", "Marla"]
    from finslm.ner.explain import explain_entity  # attributes the model's own I-ORG labels

    result = explain_entity(tagger, "Tamber Bank hired Marla today.", index=0, steps=4)
    assert result["entity"]["text"] == "Tamber Bank" and len(result["words"]) == 6


@pytest.mark.slow
def test_refit_trains_again_on_train_and_validation(tmp_path, tiny_checkpoint):
    import torch
    from safetensors.torch import load_file

    from finslm.models import read_meta
    from finslm.ner.train import train_ner

    def fit(refit: bool):
        cfg = NerModelConfig(
            checkpoint=str(tiny_checkpoint), epochs=3, batch_size=8, lr=5e-3, max_length=32,
            early_stopping_patience=3, refit=refit,
        )  # fmt: skip
        out = tmp_path / f"refit-{refit}"
        summary = train_ner(
            cfg, ["PER", "ORG"], invented(48, 0), invented(16, 1), out, name="n", threads=1
        )
        return out, summary

    plain_dir, plain = fit(False)
    refit_dir, refit = fit(True)
    assert plain["refit"] is None and read_meta(plain_dir)["refit_epochs"] is None
    # Selection is the same run (same seed); the saved model is trained again on 48 + 16 rows
    # for the restored epoch count.
    f1 = "entity_micro_f1"
    assert refit["val"][f1] == plain["val"][f1] and refit["best_epoch"] == plain["best_epoch"]
    assert refit["refit"]["epochs"] == refit["best_epoch"] and refit["refit"]["sentences"] == 64
    assert refit["train_sentences"] == plain["train_sentences"] == 48  # the selection run's
    assert read_meta(refit_dir)["refit_epochs"] == refit["best_epoch"]
    a = load_file(str(plain_dir / "model.safetensors"))
    b = load_file(str(refit_dir / "model.safetensors"))
    assert any(not torch.equal(a[k], b[k]) for k in a)  # not the selection run's weights
    ((tags, _),) = Tagger(refit_dir).tag_words([["Tamber", "Bank", "hired", "Marla", "."]])
    assert tags == ["B-ORG", "I-ORG", "O", "B-PER", "O"]


@pytest.mark.slow
def test_export_parity_on_the_tiny_model(trained, tmp_path):
    from finslm.export import ParityError
    from finslm.ner.export import export_ner

    out, _ = trained
    # A 32-wide random-init model quantises far worse than MiniLM: the INT8 gate is loosened
    # here; the fp32 graphs keep the real gate.
    gate = NerConfig(models={"ner-tiny": {}}, bench_model="ner-tiny",
                     int8_min_token_agreement=0.9, int8_max_f1_drop_pt=15.0)  # fmt: skip
    metrics = export_ner(
        out, tmp_path / "ner-tiny", invented(16, 2), ExportConfig(), gate, log=lambda _: None
    )
    assert metrics["onnx-fp32"]["token_agreement"] == 1.0
    assert metrics["onnx-fp32"]["max_abs_logit_diff"] < 1e-3
    assert metrics["onnx-opt"]["fused"].get("Attention") or metrics["onnx-opt"]["fused"].get(
        "MultiHeadAttention"
    )
    assert metrics["onnx-int8"]["size_mb"] < metrics["onnx-fp32"]["size_mb"]
    strict = NerConfig(
        models={"ner-tiny": {}}, bench_model="ner-tiny", int8_min_token_agreement=1.0
    )
    if metrics["onnx-int8"]["token_agreement"] < 1.0:
        with pytest.raises(ParityError, match="onnx-int8: token agreement") as err:
            export_ner(
                out, tmp_path / "again", invented(16, 2), ExportConfig(), strict, log=lambda _: None
            )
        assert err.value.metrics["onnx-int8"]["token_agreement"] < 1.0
    int8 = Tagger(tmp_path / "ner-tiny", "onnx-int8")
    assert int8.entities(["Tamber Bank hired Marla today."])[0][0]["type"] == "ORG"
    with pytest.raises(ModelError, match="choose one of"):
        Tagger(tmp_path / "ner-tiny", "torch-fp32")


@pytest.mark.slow
def test_int8_keep_tool_scores_keep_sets_on_validation_only(trained, tmp_path):
    from finslm.ner.export import export_ner
    from tools.ner_int8_keep import main

    out, _ = trained
    gate = NerConfig(models={"ner-tiny": {}}, bench_model="ner-tiny",
                     int8_min_token_agreement=0.0, int8_max_f1_drop_pt=100.0)  # fmt: skip
    export = tmp_path / "exports" / "ner-tiny"
    export_ner(out, export, invented(16, 2), ExportConfig(), gate, log=lambda _: None)
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    invented(16, 3).to_parquet(prepared / "val.parquet")  # no test split: the tool never reads it
    result_file = tmp_path / "keep.json"
    main(["--model", str(out), "--export", str(export), "--prepared", str(prepared),
          "--keep", "none", "--keep", "0,1", "--each-layer", "--out", str(result_file)])  # fmt: skip
    result = json.loads(result_file.read_text())
    assert result["split"] == "val" and result["sentences"] == 16
    keeps = [a["keep_fp32"] for a in result["attempts"]]
    assert keeps == [[], [0, 1], [0], [1]]  # the tiny model has two layers
    kept = {tuple(a["keep_fp32"]): a["nodes_kept"] for a in result["attempts"]}
    assert kept[()] == 0 and kept[(0, 1)] == kept[(0,)] + kept[(1,)] > 0
    size = {tuple(a["keep_fp32"]): a["size_mb"] for a in result["attempts"]}
    assert size[(0, 1)] > size[(0,)] > size[()]  # the kept layers stay fp32 in the graph
    for a in result["attempts"]:
        assert 0 <= a["token_agreement"] <= 1 and abs(a["delta_pt"]) <= 100
    with pytest.raises(SystemExit, match="model.opt.onnx: not found"):
        main(["--model", str(out), "--export", str(tmp_path), "--prepared", str(prepared)])


def test_a_sentiment_folder_is_not_a_tagger(tiny_classifier):
    with pytest.raises(ModelError, match="not a token classifier"):
        Tagger(tiny_classifier)


@pytest.mark.parametrize("backend", ["torch-fp32", "onnx-int8"])
def test_a_tagger_whose_labels_disagree_with_its_network_is_refused(
    tiny_tagger_layout, tmp_path, backend
):
    import shutil

    source = tiny_tagger_layout[0 if backend == "torch-fp32" else 1]
    folder = shutil.copytree(source, tmp_path / "m")
    meta = json.loads((folder / "finslm.json").read_text())
    meta["labels"] = meta["labels"][:3]  # O, B-PER, I-PER of 7
    (folder / "finslm.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"3 labels \(O, B-PER, I-PER\) for a model with 7"):
        Tagger(folder, backend)


@pytest.mark.slow
def test_ner_soup_is_a_tagger_scored_on_validation(trained, tiny_classifier, tmp_path):
    from typer.testing import CliRunner

    from finslm.cli import app

    out, summary = trained
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    invented(16, 1).to_parquet(prepared / "val.parquet")  # the split the model was trained with
    soup = tmp_path / "ner-soup"
    args = ["ner", "soup", str(soup), str(out), str(out), "--prepared", str(prepared)]
    result = CliRunner().invoke(app, [*args, "--method", "uniform"])
    assert result.exit_code == 0, result.output
    assert f"val entity micro-F1 {summary['val']['entity_micro_f1']:.4f}" in result.output
    tagger = Tagger(soup)  # two copies of one model average to that model
    assert tagger.meta["soup"]["method"] == "uniform" and tagger.encoder.word_shape
    assert tagger.tag_words([["Tamber", "Bank", "hired", "Marla", "today", "."]])[0][0] == [
        "B-ORG", "I-ORG", "O", "B-PER", "O", "O",
    ]  # fmt: skip
    bad = CliRunner().invoke(app, ["ner", "soup", str(tmp_path / "x"), str(tiny_classifier),
                                   "--prepared", str(prepared)])  # fmt: skip
    assert bad.exit_code != 0 and "not a token classifier" in bad.output


@pytest.mark.slow
def test_ner_predict_cli_spans_and_decode_option(trained):
    from typer.testing import CliRunner

    from finslm.cli import app

    out, _ = trained
    text = "Tamber Bank hired Marla today."
    for decode in ("viterbi", "argmax"):
        result = CliRunner().invoke(
            app, ["ner", "predict", text, "--model", str(out), "--decode", decode]
        )
        assert result.exit_code == 0, result.output
        spans = json.loads(result.output.strip().splitlines()[-1])["entities"]
        assert [(e["type"], e["start"], e["end"]) for e in spans] == [
            ("ORG", 0, 11), ("PER", 18, 23),
        ]  # fmt: skip
    bad = CliRunner().invoke(app, ["ner", "predict", text, "--model", str(out), "--decode", "beam"])
    assert bad.exit_code != 0 and "decode 'beam': choose one of viterbi, argmax" in bad.output
    # The same lines as `finslm predict --task ner`: numbered, stdin and --file, blanks skipped.
    args = ["--model", str(out), "--decode", "argmax"]
    ner = CliRunner().invoke(app, ["ner", "predict", "-", *args], input=f"{text}\n\n")
    both = CliRunner().invoke(app, ["predict", "--task", "ner", "-", *args], input=f"{text}\n\n")
    assert ner.exit_code == 0 and both.exit_code == 0, ner.output + both.output
    assert ner.output == both.output
    lines = [json.loads(line) for line in ner.output.strip().splitlines()]
    assert lines[0]["line"] == 1 and lines[1] == {"line": 2, "text": "", "skipped": "empty line"}


@pytest.mark.slow
def test_predict_task_ner_reads_stdin_and_the_server_answers_the_same(trained, tmp_path):
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from finslm.cli import app
    from finslm.serve import ServeSettings, create_app
    from finslm.serve.server import load

    out, _ = trained
    texts = ["Tamber Bank hired Marla today.", "Dagny joined Corvik Bank ."]
    result = CliRunner().invoke(
        app, ["predict", "-", "--model", str(out)], input=f"{texts[0]}\n\n{texts[1]}\n"
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.strip().splitlines()]
    assert lines[1] == {"line": 2, "text": "", "skipped": "empty line"}
    assert [(e["type"], e["text"]) for e in lines[0]["entities"]] == [
        ("ORG", "Tamber Bank"), ("PER", "Marla"),
    ]  # fmt: skip
    tagger = load(out, threads=1)
    # A long text (over max_length 32 sub-tokens) keeps its entities to the end.
    long = " ".join([texts[1]] * 12)
    with TestClient(create_app(tagger, ServeSettings(max_batch=1))) as client:
        r = client.post("/v1/entities", json={"texts": [*texts, long]})
    assert r.status_code == 200, r.text
    served = [res["entities"] for res in r.json()["results"]]
    assert served[:2] == [lines[0]["entities"], lines[2]["entities"]]
    assert [e["text"] for e in served[2]] == ["Dagny", "Corvik Bank"] * 12


@pytest.mark.slow
def test_integrated_gradients_for_one_entity(trained):
    from finslm.ner.explain import explain_entity

    out, _ = trained
    result = explain_entity(Tagger(out), "Tamber Bank hired Marla today.", index=1, steps=8)
    assert result["entity"] == {"text": "Marla", "type": "PER", "start": 18, "end": 23}
    words = [w["word"] for w in result["words"]]
    assert words == ["Tamber", "Bank", "hired", "Marla", "today", "."]
    assert sum(abs(w["attribution"]) for w in result["words"]) == pytest.approx(1, abs=1e-3)


def _tags_with_entities_at(*starts):
    """A stand-in for Tagger.tag_words: B-ORG at each word index in ``starts``, O elsewhere."""

    def tag_words(self, words, *args, **kwargs):
        out = []
        for tokens in words:
            tags = ["O"] * len(tokens)
            for i in starts:
                if i < len(tags):
                    tags[i] = "B-ORG"
            out.append((tags, None))
        return out

    return tag_words


LONG_TEXT = "Velmont Bank hired Dagny today . " * 12  # 72 words, far past 32 sub-tokens


def test_an_entity_past_the_models_window_is_a_clear_error(tiny_tagger_layout, monkeypatch):
    """Audit #3b: not captum's TypeError; and a long text says it was cut, not 0.0s silently."""
    from finslm.ner.explain import UnreadEntity, explain_entity

    monkeypatch.setattr(Tagger, "tag_words", _tags_with_entities_at(0, 60))
    tagger = Tagger(tiny_tagger_layout[0], "torch-fp32")  # max_length 32
    with pytest.raises(UnreadEntity, match="entity 1 .* lies past the model's first 32 tokens"):
        explain_entity(tagger, LONG_TEXT, index=1, steps=2)
    result = explain_entity(tagger, LONG_TEXT, index=0, steps=2)
    assert result["truncated"] is True and 0 < result["words_read"] < 32
    assert len(result["words"]) == 72
    assert all(w["attribution"] == 0 for w in result["words"][result["words_read"] :])
    short = explain_entity(tagger, "Velmont Bank hired Dagny today .", index=0, steps=2)
    assert short["truncated"] is False and short["words_read"] == 6


def test_ner_explain_cli_refuses_bad_steps_and_unread_entities(tiny_tagger_layout, monkeypatch):
    """Audit #3a/#3b/#9: one `error:` line (or typer's usage error), never a traceback."""
    from typer.testing import CliRunner

    from finslm.cli import app

    runner = CliRunner()
    monkeypatch.setattr(Tagger, "tag_words", _tags_with_entities_at(0, 60))
    model, export = (str(p) for p in tiny_tagger_layout)
    for steps in ("0", "-3", "1"):
        result = runner.invoke(app, ["ner", "explain", "Acme Corp.", "-m", model, "--steps", steps])
        assert result.exit_code == 2 and "Invalid value for '--steps'" in result.output, steps
    result = runner.invoke(app, ["ner", "explain", LONG_TEXT, "-m", model, "--entity", "1"])
    assert result.exit_code == 2, result.output
    assert "error: entity 1 (ORG 'Velmont', word 61 of 72) lies past the model's first 32" in (
        result.output
    )
    assert "explain a shorter excerpt" in result.output
    result = runner.invoke(app, ["ner", "explain", LONG_TEXT, "-m", model, "--entity", "9"])
    assert result.exit_code == 2
    assert "entity 9: the text has 2 predicted entities; choose 0 to 1" in result.output
    result = runner.invoke(app, ["ner", "explain", LONG_TEXT, "-m", model, "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert "note: the text is longer than the model reads in one pass (32 tokens)" in (
        result.stderr
    )
    assert json.loads(result.stdout)["truncated"] is True
    result = runner.invoke(app, ["ner", "explain", "Acme Corp.", "-m", export])
    assert result.exit_code == 2
    want = f"an ONNX export; ner explain needs the PyTorch folder it came from: --model {model}"
    assert want in result.output


@pytest.mark.slow
def test_evaluate_stage_explains_entities_for_the_report(trained, tmp_path):
    from finslm.ner.prepare import write_splits
    from finslm.ner.report import _explanations
    from stages.evaluate_ner import main

    out, _ = trained
    prepared = tmp_path / "prepared"
    splits = {"train": invented(8, 2), "val": invented(8, 3), "test": invented(12, 4)}
    write_splits(splits, pd.DataFrame(), prepared)
    params = tmp_path / "params.yaml"
    params.write_text(
        "ner:\n  explain_entities: 3\n  ig_steps: 4\n  models: {ner-tiny: {}}\n  bench_model: ner-tiny\n"
    )
    args = [out.name, "--prepared", str(prepared), "--models", str(out.parent)]
    args += ["--out", str(tmp_path / "eval"), "--params", str(params)]
    assert main([*args, "--explain-out", str(tmp_path / "explain")]) == 0
    explained = tmp_path / "explain" / f"{out.name}.json"
    found = json.loads(explained.read_text())["explanations"]
    assert len(found) == 3  # the first three test sentences, each with an entity
    first = " ".join(splits["test"].tokens[0])
    assert found[0]["text"] == first and found[0]["entity"]["text"] in first
    html = _explanations(explained)
    assert html.count("<li>") == 3 and "text-decoration:underline" in html
    # INT8 graphs have no gradients: asking for explanations there is a clear error.
    with pytest.raises(ModelError, match="--explain-out needs --backend torch-fp32"):
        main([*args, "--backend", "onnx-int8", "--explain-out", str(tmp_path / "x")])


@pytest.mark.slow
def test_ner_benchmark_rows_and_side_by_side_rss(trained, tmp_path):
    from finslm.ner.bench import markdown_table, run_ner_benchmark
    from finslm.ner.export import export_ner

    out, _ = trained
    gate = NerConfig(models={"ner-tiny": {}}, bench_model="ner-tiny",
                     int8_min_token_agreement=0.0, int8_max_f1_drop_pt=100.0)  # fmt: skip
    export_ner(out, tmp_path / "x", invented(16, 2), ExportConfig(), gate, log=lambda _: None)
    test = invented(12, 3)
    result = run_ner_benchmark(
        {"torch": (out, "torch-fp32"), "int8": (tmp_path / "x", "onnx-int8")},
        test, reference="torch",
        latency_sentences=6, repeats=1, warmup=1, batch_size=4, log=lambda _: None,
    )  # fmt: skip
    rows = result["variants"]
    assert set(rows) == {"torch", "int8"}
    assert rows["torch"]["entity_micro_f1"] > 0.9  # the trained tagger, on unseen templates
    # RSS probes ran side by side; each figure is its own process's: torch's is the larger.
    assert 10 < rows["int8"]["rss_mb"] < rows["torch"]["rss_mb"] < 3000
    assert rows["int8"]["size_mb"] < rows["torch"]["size_mb"]
    assert result["env"]["bucketed"] and rows["int8"]["throughput_bs4"] > 0
    for row in rows.values():  # the first pass at new lengths, timed apart from the steady state
        assert 0 < row["first_pass_p95_ms"] <= row["first_pass_max_ms"]
    table = markdown_table(result)
    assert (
        "sent/s (batch 4)" in table
        and "12 test sentences in batches of 4, length-bucketed" in table
    )
