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
    result = runner.invoke(app, ["serve", "--model", str(tmp_path / "nope"), "--port", "0"])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1
    assert "nope" in result.output


def test_backend_the_folder_cannot_run(tiny_export):
    args = ["serve", "--model", str(tiny_export[0]), "--backend", "sklearn", "--port", "0"]
    result = runner.invoke(app, args)  # port 0: any free port, so the model's error is reached
    assert result.exit_code == 2 and "cannot run on backend 'sklearn'" in result.output


def test_bad_log_level_and_threads_are_refused_before_the_model_loads(tmp_path):
    missing = str(tmp_path / "never-read")  # the option is checked first: no model error
    result = runner.invoke(app, ["serve", "--model", missing, "--log-level", "loud"])
    assert result.exit_code == 2
    assert "--log-level 'loud': unknown; choose critical, error, warning" in result.output
    result = runner.invoke(app, ["serve", "--model", missing, "--threads", "-3"])
    assert result.exit_code == 2 and "greater than or equal to 0" in result.output


def test_out_of_range_setting(tiny_export):
    result = runner.invoke(app, ["serve", "--model", str(tiny_export[0]), "--timeout", "0"])
    assert result.exit_code == 2
    assert "--timeout 0.0: must be more than 0 s" in result.output  # the flag, not the field
    result = runner.invoke(app, ["serve", "--model", str(tiny_export[0]), "--body-timeout", "0"])
    assert result.exit_code == 2 and "--body-timeout 0.0: must be more than 0 s" in result.output
    args = ["serve", "--model", str(tiny_export[0]), "--max-queue", "4", "--max-texts", "8"]
    result = runner.invoke(app, args)  # a full request could never get in: refused at start
    assert (
        result.exit_code == 2 and "--max-queue 4: must be at least max_texts (8)" in result.output
    )


def test_a_busy_port_is_said_before_the_model_loads(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # tmp_path is no model folder either: the port is checked first, in milliseconds.
        result = runner.invoke(app, ["serve", "--model", str(tmp_path), "--port", str(port)])
    assert result.exit_code == 2
    assert f"127.0.0.1:{port} is in use (another server?); stop it or choose another --port" in (
        result.output
    )


def test_an_unknown_host_is_one_line(tiny_export):
    result = runner.invoke(
        app, ["serve", "--model", str(tiny_export[0]), "--host", "no-such-host.invalid"]
    )
    assert result.exit_code == 2 and "--host no-such-host.invalid: not a known address" in (
        result.output
    )


def test_exposing_the_server_without_a_key_warns():
    from finslm.serve.settings import ServeSettings

    for host in ("127.0.0.1", "localhost", "::1"):
        assert ServeSettings(host=host).exposure_warning() is None
    assert ServeSettings(host="0.0.0.0", api_key="k").exposure_warning() is None
    warning = ServeSettings(host="0.0.0.0", port=8000).exposure_warning()
    assert (
        warning.startswith("serving on 0.0.0.0:8000 with no API key")
        and "FINSLM_API_KEY" in warning
    )


def test_a_busy_port_is_said_before_ray_starts(tmp_path, monkeypatch):
    import socket

    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # a local Ray would bind this machine's port
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = ["serve", "--model", str(tmp_path), "--port", str(port), "--engine", "ray"]
        result = runner.invoke(app, args)
    assert result.exit_code == 2 and f"127.0.0.1:{port} is in use" in result.output


def test_ray_engine_checks_the_model_before_starting_ray(tmp_path, monkeypatch):
    import finslm.serve.ray_serve as ray_serve

    def never(*args, **kwargs):
        raise AssertionError("Ray started for a folder that is not a model")

    monkeypatch.setattr(ray_serve, "run_ray", never)
    args = ["serve", "--engine", "ray", "--port", "0", "--model", str(tmp_path / "none")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "none: no such folder" in result.output


def test_threads_come_from_finslm_threads_in_a_container(tmp_path):
    # The image's CMD has no --threads; FINSLM_THREADS sets it (here an invalid value, to see it read).
    args = ["serve", "--model", str(tmp_path / "none")]
    result = runner.invoke(app, args, env={"FINSLM_THREADS": "-1"})
    assert result.exit_code == 2 and "FINSLM_THREADS" in result.output
