"""`finslm serve` refuses bad options with one line before anything starts."""

from __future__ import annotations

from typer.testing import CliRunner

from finslm.cli import app

runner = CliRunner()


def test_unknown_engine(tiny_export):
    result = runner.invoke(app, ["serve", "--model", str(tiny_export[0]), "--engine", "gunicorn"])
    assert result.exit_code == 2
    assert "--engine 'gunicorn': unknown; choose uvicorn or ray" in result.output


def test_missing_model_folder_is_one_line(tmp_path):
    result = runner.invoke(app, ["serve", "--model", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1
    assert "nope" in result.output


def test_backend_the_folder_cannot_run(tiny_export):
    result = runner.invoke(app, ["serve", "--model", str(tiny_export[0]), "--backend", "sklearn"])
    assert result.exit_code == 2 and "cannot run on backend 'sklearn'" in result.output


def test_out_of_range_setting(tiny_export):
    result = runner.invoke(app, ["serve", "--model", str(tiny_export[0]), "--timeout", "0"])
    assert result.exit_code == 2
    assert "request_timeout_s=0.0: must be more than 0 s" in result.output
