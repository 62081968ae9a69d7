"""`finslm explain` through typer's CliRunner: terminal output, the HTML page, clear errors."""

from __future__ import annotations

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
        (["--backend", "onnx-int8", "--export", str(tmp_path)], "model.int8.onnx"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, ["explain", TEXT, "--model", str(tiny_classifier), *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output, (extra, result.output)
    result = runner.invoke(app, ["explain", TEXT, "--model", str(tmp_path / "none")])
    assert result.exit_code == 2 and "not a finslm model folder" in result.output
