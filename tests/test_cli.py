"""`finslm predict` through typer's CliRunner: one text, stdin lines, a file, and clear errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from finslm.cli import app
from finslm.labels import LABELS

runner = CliRunner()


def test_single_text_prints_label_and_probabilities(tiny_export):
    folder, _ = tiny_export
    result = runner.invoke(app, ["predict", "Net profit rose 12 percent.", "--model", str(folder)])
    assert result.exit_code == 0, result.output
    assert "Net profit" in result.output  # the table may wrap the text
    assert "onnx-int8" in result.output  # the export folder's default backend
    for label in LABELS:
        assert f"p({label})" in result.output


def test_a_text_over_the_models_max_tokens_is_flagged(tiny_export):
    long = "Orders rose. " * 100
    args = ["predict", "Sales fell.", long, "--model", str(tiny_export[0]), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert "truncated" not in records[0] and records[1]["truncated"] is True
    assert (
        "note: 1 text(s) longer than the model's" in result.stderr and "(line 2)" in result.stderr
    )


def test_stdin_lines_as_json(tiny_classifier):
    result = runner.invoke(
        app,
        ["predict", "-", "--model", str(tiny_classifier), "--json"],
        input="Sales fell.\n\nThe meeting is on 5 May.\n",
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    # One record per input line: the blank line 2 is reported as skipped (issue #26 item 7).
    assert [r["text"] for r in records] == ["Sales fell.", "", "The meeting is on 5 May."]
    assert [r["line"] for r in records] == [1, 2, 3]
    assert records[1]["skipped"] == "empty line" and "label" not in records[1]
    for r in (records[0], records[2]):
        assert r["label"] in LABELS and set(r["probabilities"]) == set(LABELS)
        assert abs(sum(r["probabilities"].values()) - 1) < 1e-4


def test_file_input_and_explicit_backend(tiny_export, tmp_path):
    folder, _ = tiny_export
    path = tmp_path / "texts.txt"
    path.write_text("Orders rose.\nOrders fell.\n", encoding="utf-8")
    args = ["predict", "--file", str(path), "--model", str(folder), "--backend", "onnx-fp32"]
    result = runner.invoke(app, [*args, "--json", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2


def test_bad_backend_names_the_choices(tiny_export):
    result = runner.invoke(
        app, ["predict", "x", "--model", str(tiny_export[0]), "--backend", "gpu"]
    )
    assert result.exit_code == 2
    assert "--backend 'gpu': unknown; choose auto, torch-fp32" in result.output


def test_backend_the_folder_cannot_run(tiny_classifier):
    result = runner.invoke(
        app, ["predict", "x", "--model", str(tiny_classifier), "--backend", "onnx-int8"]
    )
    assert result.exit_code == 2
    assert str(tiny_classifier) in result.output and "dvc repro export@" in result.output


def test_missing_model_folder_and_no_text(tmp_path):
    result = runner.invoke(app, ["predict", "x", "--model", str(tmp_path / "minilm")])
    assert result.exit_code == 2
    assert "no such folder" in result.output and "dvc repro train@minilm" in result.output
    result = runner.invoke(app, ["predict", "x", "--model", str(tmp_path)])
    assert result.exit_code == 2 and "not a finslm model folder" in result.output
    result = runner.invoke(app, ["predict", "--model", str(tmp_path)])
    assert result.exit_code == 2 and "no text given" in result.output


# --- issue #26: hostile input ---


def _json(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_lines_with_nothing_visible_are_skipped_like_blank_lines(tiny_tfidf):
    result = runner.invoke(
        app,
        ["predict", "-", "--model", str(tiny_tfidf), "--json"],
        input="Sales rose.\n\u200b\x00\n",
    )
    lines = _json(result)
    assert lines[0]["label"] in LABELS and lines[1]["skipped"] == "empty line"


def test_output_row_i_is_input_line_i(tiny_tfidf):
    # A form feed and U+0085 inside a line used to split it (str.splitlines); blank lines were
    # dropped, so output rows no longer lined up with input lines (item 7).
    text = "Sales\x0crose.\n\nOrders\u0085fell.\r\n   \nProfit rose.\rCosts fell.\n"
    result = runner.invoke(app, ["predict", "-", "--model", str(tiny_tfidf), "--json"], input=text)
    records = _json(result)
    assert [r["line"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert [r["text"] for r in records] == [
        "Sales\x0crose.", "", "Orders\u0085fell.", "   ", "Profit rose.", "Costs fell."
    ]  # fmt: skip
    assert [("skipped" in r) for r in records] == [False, True, False, True, False, False]


def test_table_output_numbers_lines_and_shows_skipped(tiny_tfidf, tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("Sales rose.\n\nOrders fell.\n", encoding="utf-8")
    result = runner.invoke(app, ["predict", "--file", str(path), "--model", str(tiny_tfidf)])
    assert result.exit_code == 0, result.output
    assert "line" in result.output and "skipped" in result.output


@pytest.mark.parametrize("source", ["stdin", "file"])
def test_non_utf8_input_is_one_line_naming_the_line(tiny_tfidf, tmp_path, source):
    # Item 4: latin-1 bytes on stdin were a UnicodeDecodeError traceback.
    raw = "Sales rose.\nUmsatz f\u00e4llt.\n".encode("latin-1")
    args = ["predict", "--model", str(tiny_tfidf), "--json"]
    if source == "stdin":
        result = runner.invoke(app, [*args, "-"], input=raw)
        name = "stdin"
    else:
        path = tmp_path / "t.txt"
        path.write_bytes(raw)
        result = runner.invoke(app, [*args, "--file", str(path)])
        name = f"--file {path}"
    assert result.exit_code == 2
    assert f"error: {name}, line 2: not UTF-8 (byte 0xe4)" in result.output
    assert "iconv" in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_non_utf8_argument_is_an_error(tiny_tfidf):
    bad = b"Umsatz f\xe4llt".decode("utf-8", "surrogateescape")  # what Python makes of argv
    result = runner.invoke(app, ["predict", bad, "--model", str(tiny_tfidf), "--json"])
    assert result.exit_code == 2 and "argument 1: not UTF-8" in result.output


def test_the_table_shows_the_start_of_a_long_text_and_json_all_of_it(tiny_tfidf):
    text = "Sales rose in every region. " * 200  # 5,600 characters
    result = runner.invoke(app, ["predict", text, "--model", str(tiny_tfidf)])
    assert result.exit_code == 0, result.output
    # The cell folds over lines of the 80-column test terminal: read the text column back.
    cells = [line.split("│")[2].strip() for line in result.output.splitlines() if "│" in line]
    assert "".join(cells).replace(" ", "").endswith("…(+5299characters)")
    assert len(result.output.splitlines()) < 40  # not 1,500 lines of one text
    result = runner.invoke(app, ["predict", text, "--model", str(tiny_tfidf), "--json"])
    assert json.loads(result.output)["text"] == text.strip()


def test_options_after_the_double_dash_are_refused_not_scored(tiny_tfidf):
    # After "--" click passes everything as a text: "--model" would be scored as a sentence
    # and the default model used instead of the one asked for.
    args = ["predict", "--json", "--", "-5% in sales", "--model", str(tiny_tfidf)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "argument 2 '--model' is an option" in result.output
    assert 'put the options before "--"' in result.output
    model = ["--model", str(tiny_tfidf), "--json"]
    result = runner.invoke(app, ["predict", *model, "--", "-5% in sales", "--modelling costs"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["text"] for line in result.output.splitlines()] == [
        "-5% in sales",
        "--modelling costs",
    ]


def test_model_file_is_not_called_a_missing_folder(tiny_tfidf):
    # Item 9: `--model models/x/model.joblib` said "no such folder".
    result = runner.invoke(app, ["predict", "x", "--model", str(tiny_tfidf / "model.joblib")])
    assert result.exit_code == 2
    assert "is a file, not a model folder" in result.output and str(tiny_tfidf) in result.output


def test_corrupt_model_is_one_line_not_a_traceback(tiny_tfidf, tmp_path):
    # Item 6, through the CLI: the library's ModelError becomes one error line.
    import shutil

    folder = tmp_path / "tfidf"
    shutil.copytree(tiny_tfidf, folder)
    (folder / "model.joblib").write_bytes((folder / "model.joblib").read_bytes()[:50])
    result = runner.invoke(app, ["predict", "x", "--model", str(folder)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "model.joblib" in lines[0] and "dvc repro train@tfidf" in lines[0]


def _split(path, rows):
    import pandas as pd

    pd.DataFrame(rows, columns=["text", "label"]).to_parquet(path)
    return path


def test_export_writes_any_model_folder_with_the_parity_gate(tiny_classifier, tmp_path):
    """`finslm export` exports a folder whatever its name (no export.models entry needed)."""
    import json

    from tests.conftest import invented_sentences

    val = _split(tmp_path / "val.parquet", invented_sentences(2))
    params = tmp_path / "params.yaml"
    params.write_text("export:\n  models: [something-else]\n", encoding="utf-8")
    out, metrics = tmp_path / "exported", tmp_path / "m" / "export.json"
    args = ["export", str(tiny_classifier), "--out", str(out), "--val", str(val)]
    result = runner.invoke(app, [*args, "--params", str(params), "--metrics", str(metrics)])
    assert result.exit_code == 0, result.output
    assert {"model.onnx", "model.opt.onnx", "model.int8.onnx"} <= {p.name for p in out.iterdir()}
    numbers = json.loads(metrics.read_text())
    assert numbers["onnx-fp32"]["agreement"] == 1.0
    assert numbers["onnx-int8"]["n"] == 12


def test_export_says_what_is_missing(tiny_classifier, tmp_path):
    result = runner.invoke(app, ["export", str(tmp_path / "nothing")])
    assert result.exit_code != 0 and "no such folder" in result.output
    val = tmp_path / "val.parquet"
    result = runner.invoke(app, ["export", str(tiny_classifier), "--val", str(val)])
    assert result.exit_code != 0 and "dvc repro prepare" in result.output


def test_export_names_the_kind_before_reading_any_data(
    tiny_tfidf, tiny_tagger_layout, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # no data/prepared here: the folder's kind must be said first
    result = runner.invoke(app, ["export", str(tiny_tfidf)])
    assert (
        result.exit_code != 0
        and "only a trained transformer's folder (models/<name>) exports to ONNX" in result.output
    )
    tagger = tiny_tagger_layout[0]
    result = runner.invoke(app, ["export", str(tagger)])
    assert result.exit_code != 0 and f"finslm ner export {tagger}" in result.output


def test_export_outside_a_checkout_uses_the_default_settings(
    tiny_classifier, tmp_path, monkeypatch
):
    from tests.conftest import invented_sentences

    monkeypatch.chdir(tmp_path)  # no params.yaml here
    _split(tmp_path / "val.parquet", invented_sentences(1))
    result = runner.invoke(app, ["export", str(tiny_classifier), "--val", "val.parquet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "exports" / tiny_classifier.name / "model.int8.onnx").is_file()
    result = runner.invoke(app, ["export", str(tiny_classifier), "--params", "other.yaml"])
    assert result.exit_code != 0 and "other.yaml: not found" in result.output


def test_fetch_outside_a_checkout_needs_only_the_source(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no params.yaml: the data.* defaults apply
    result = runner.invoke(app, ["fetch", "--out", "x.csv"])
    assert result.exit_code == 2 and "--source hub:<dataset id>: needed outside" in result.output
    result = runner.invoke(app, ["fetch", "--source", "local.csv", "--out", "x.csv"])
    assert result.exit_code == 2 and "'local.csv' is not a hub dataset" in result.output
    assert "params.yaml" not in result.output


def test_every_command_has_a_one_line_summary():
    """`finslm --help` lists each command by its docstring's first paragraph; a paragraph
    wrapped over several source lines shows its line breaks there, mid-sentence."""
    import typer.main

    def walk(command, name):
        for sub_name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, f"{name} {sub_name}")
        yield name, (command.help or "").strip().split("\n\n")[0]

    summaries = dict(walk(typer.main.get_command(app), "finslm"))
    assert "finslm ner predict" in summaries and "finslm models install" in summaries
    wrapped = {name: summary for name, summary in summaries.items() if "\n" in summary}
    assert not wrapped, f"first docstring paragraph over several lines: {wrapped}"
    assert all(summaries.values()), [name for name, s in summaries.items() if not s]


def test_cv_refuses_a_single_fold():
    """`finslm cv --folds 1` is a usage error that names the option the user typed (--folds),
    not an internal one."""
    from typer.testing import CliRunner

    from finslm.cli import app

    result = CliRunner().invoke(app, ["cv", "minilm", "--folds", "1"])
    assert result.exit_code == 2
    assert "--folds" in result.output


def test_an_option_with_equals_after_the_double_dash_is_refused(tmp_path):
    """`finslm predict -- "text" --model=x` is refused with the "put the options before --"
    advice instead of scoring "--model=x" as a sentence with the default model."""
    from typer.testing import CliRunner

    from finslm.cli import app

    args = ["predict", "--model", str(tmp_path / "none"), "--", "-5% in sales", "--model=x"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "argument 2 '--model=x' is an option" in result.output
