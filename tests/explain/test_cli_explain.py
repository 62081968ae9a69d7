"""`finslm explain` through typer's CliRunner: terminal output, the HTML page, clear errors."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from finslm.cli import app

from .test_page import Page

runner = CliRunner()
TEXT = "Operating profit rose to EUR 13 mn from EUR 8 mn."


def test_explain_prints_each_method(tiny_classifier, tmp_path):
    out = tmp_path / "why.html"
    result = runner.invoke(
        app,
        ["explain", TEXT, "--model", str(tiny_classifier), "-M", "shap", "-M", "ig",
         "--html", str(out), "--threads", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "SHAP (partition)" in result.output and "Integrated Gradients" in result.output
    assert "\nLIME" not in result.output
    assert "SHAP/LIME on torch-fp32" in result.output  # no export next to this model
    assert TEXT in result.output
    page = out.read_text(encoding="utf-8")
    parsed = Page(page)
    assert parsed.errors == [] and parsed.stack == []  # every tag closed, in order
    assert "Integrated Gradients" in page and "Operating" in parsed.all_text


def test_explain_notes_a_text_longer_than_the_model_reads(tiny_classifier):
    long = "Orders rose. " * 40  # over the tiny model's max tokens
    args = ["explain", long, "--model", str(tiny_classifier), "-M", "lime", "--threads", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "note: the text is longer than the model's max tokens" in result.stderr
    short = runner.invoke(app, ["explain", TEXT, "--model", str(tiny_classifier), "-M", "lime"])
    assert short.exit_code == 0 and "note:" not in short.stderr


def test_explain_uses_the_onnx_export_when_given(tiny_classifier, tiny_export):
    folder, _ = tiny_export
    result = runner.invoke(
        app,
        ["explain", TEXT, "--model", str(tiny_classifier), "--export", str(folder),
         "-M", "lime", "--target", "negative"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "SHAP/LIME on onnx-int8" in result.output
    assert "explaining p(negative)" in result.output


def test_explain_errors_name_the_fix(tiny_classifier, tmp_path):
    cases = [
        (["-M", "gradcam"], "--method 'gradcam': unknown; choose shap, lime, ig, attention"),
        (["--backend", "gpu"], "--backend 'gpu': unknown"),
        (["--target", "bullish"], "--target 'bullish': unknown"),
        (["--backend", "onnx-int8", "--export", str(tmp_path)], "not an export folder"),
        # Refused before the explanation is computed, not after.
        (["--html", str(tmp_path)], f"--html {tmp_path}: is a folder; name the page to write"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, ["explain", TEXT, "--model", str(tiny_classifier), *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output, (extra, result.output)
    result = runner.invoke(app, ["explain", TEXT, "--model", str(tmp_path / "none")])
    assert result.exit_code == 2 and "not a finslm model folder" in result.output


def _foreign_export(export, tmp_path, **meta):
    """A copy of ``export`` whose finslm.json is changed by ``meta`` (as another model's)."""
    folder = tmp_path / "exports" / "tiny"
    shutil.copytree(export, folder)
    data = json.loads((folder / "finslm.json").read_text())
    (folder / "finslm.json").write_text(json.dumps({**data, **meta}))
    return folder


def test_an_explicit_export_is_used_or_refused_never_skipped(
    tiny_classifier, tiny_export, tiny_tfidf, tiny_tagger_layout, tmp_path
):
    """Audit #2: a --export that cannot be opened, or was exported from another model (a pruned
    copy, say), is an error, not a silent fallback or another model's numbers under this name."""
    pruned = _foreign_export(
        tiny_export[0], tmp_path / "a", name="tiny-pruned", source="models/tiny-pruned"
    )
    retrained = _foreign_export(tiny_export[0], tmp_path / "b", checkpoint="somewhere/else")
    cases = [
        (tmp_path / "missing", "no such folder"),
        (tiny_tfidf, "a model folder, not an ONNX export (kind 'tfidf')"),
        (tiny_classifier, "a model folder, not an ONNX export (kind 'transformer')"),
        (tiny_tagger_layout[1], "the export of a token classifier (kind 'ner-onnx')"),
        (pruned, f"exported from models/tiny-pruned, not from {tiny_classifier}"),
        (retrained, "its checkpoint ('somewhere/else') differs from"),
    ]
    for backend in ("auto", "onnx-int8", "torch-fp32"):
        for export, message in cases:
            args = ["explain", TEXT, "--model", str(tiny_classifier), "-M", "lime"]
            result = runner.invoke(app, [*args, "--backend", backend, "--export", str(export)])
            assert result.exit_code == 2, (backend, export, result.output)
            assert f"error: --export {export}: {message}" in result.output, result.output
            assert f"finslm export {tiny_classifier}" in result.output  # the fix
            assert result.output.count("error:") == 1 and "Traceback" not in result.output


def test_the_default_export_of_another_model_is_not_used(tiny_classifier, tiny_export, tmp_path):
    """exports/<m> beside models/<m> but made from another model: SHAP/LIME run on PyTorch,
    and stderr says why."""
    model = tmp_path / "models" / "tiny"
    shutil.copytree(tiny_classifier, model)
    _foreign_export(tiny_export[0], tmp_path, name="other", source="models/other")
    result = runner.invoke(app, ["explain", TEXT, "--model", str(model), "-M", "lime"])
    assert result.exit_code == 0, result.output
    assert "SHAP/LIME on torch-fp32" in result.output
    assert "note: backend onnx-int8 unavailable" in result.stderr
    assert "exported from models/other, not from" in result.stderr
    shutil.rmtree(tmp_path / "exports")  # no export at all: PyTorch, nothing to note
    result = runner.invoke(app, ["explain", TEXT, "--model", str(model), "-M", "lime"])
    assert result.exit_code == 0 and "note:" not in result.stderr


def test_other_model_folders_name_the_command_that_explains_them(
    tiny_classifier, tiny_export, tiny_tfidf, tiny_tagger_layout
):
    """Audit #9: not "use " with an empty list, "use sklearn" or the ONNX backends."""
    ner_model, ner_export = tiny_tagger_layout
    cases = [
        (ner_model, f"a token classifier (kind 'ner-transformer'); `finslm ner explain TEXT "
                    f"--model {ner_model}`"),
        (ner_export, f"`finslm ner explain TEXT --model {ner_model}`"),
        (tiny_tfidf, "a 'tfidf' model; explain needs a transformer folder (models/<name>"),
        (tiny_export[0], f"an ONNX export; explain needs the PyTorch folder it came from: "
                         f"--model {tiny_classifier} (its ONNX graphs then run SHAP/LIME: "
                         f"--export {tiny_export[0]})"),
    ]  # fmt: skip
    for model, message in cases:
        for method in ("lime", "attention"):
            result = runner.invoke(app, ["explain", TEXT, "--model", str(model), "-M", method])
            assert result.exit_code == 2, (model, result.output)
            assert message in result.output, result.output
            assert "cannot run on backend" not in result.output
