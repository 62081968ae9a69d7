"""End-to-end serving: a real server process, the slim install, Ray Serve, the container.

All slow (a process start, a fresh venv, a Ray instance, an image build); all on 127.0.0.1.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from finslm.serve.loadtest import free_port

from ..conftest import invented_sentences

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [t for t, _ in invented_sentences(2)] + ["Short.", "Umsatz stieg um 5 % – café."]


def _post(url: str, body: dict, timeout: float = 30) -> tuple[int, dict]:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _wait_ready(url: str, proc: subprocess.Popen | None = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} not ready after {timeout} s")


def _labels(url: str, texts: list[str]) -> list[str]:
    status, body = _post(f"{url}/v1/classify", {"texts": texts})
    assert status == 200, body
    return [r["label"] for r in body["results"]]


def _start(python: str, model: Path, port: int, *extra: str, env=None) -> subprocess.Popen:
    cmd = [python, "-m", "finslm.cli", "serve", "--model", str(model), "--port", str(port)]
    return subprocess.Popen(
        [*cmd, "--log-level", "warning", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_server_process_answers_like_the_predictor_and_stops_on_sigterm(tiny_export, served_fp32):
    folder, _ = tiny_export
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # fp32 (onnx-opt): batch-invariant, so concurrent (batched) answers equal one-by-one ones.
    args = ["--backend", "onnx-opt", "--max-batch", "8", "--threads", "1"]
    proc = _start(sys.executable, folder, port, *args)
    try:
        _wait_ready(url, proc)
        one_by_one = [_labels(url, [t])[0] for t in TEXTS]
        assert one_by_one == served_fp32.predict(TEXTS, batch_size=1)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda t: _labels(url, [t])[0], TEXTS))
        assert answers == one_by_one
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once drained
    finally:
        if proc.poll() is None:
            proc.kill()


def test_slim_install_serves_without_torch(
    tmp_path, tiny_export, served_predictor, tiny_ner_export
):
    """serve/requirements.txt + `pip install --no-deps .` in a fresh venv: no torch, serves
    the sentiment export and the token classifier's export alike."""
    folder, _ = tiny_export
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "-r", str(ROOT / "serve" / "requirements.txt")], check=True)
    subprocess.run([*pip, "--no-deps", str(ROOT)], check=True)
    python = str(venv / "bin" / "python")
    for heavy in ("torch", "transformers", "dvc", "shap", "lime", "captum", "onnx"):
        probe = subprocess.run([python, "-c", f"import {heavy}"], capture_output=True)
        assert probe.returncode != 0, f"{heavy} is importable in the slim install"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = _start(python, folder, port, "--max-batch", "1", env={**env, "FINSLM_API_KEY": "k"})
    try:
        _wait_ready(url, proc)
        assert _post(f"{url}/v1/classify", {"texts": ["x"]})[0] == 401
        req = urllib.request.Request(
            f"{url}/v1/classify",
            json.dumps({"texts": TEXTS}).encode(),
            {"Content-Type": "application/json", "Authorization": "Bearer k"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            labels = [x["label"] for x in json.loads(r.read())["results"]]
        # The whole list is one request: compare with the same predictor at the same batching
        # (--max-batch 1: one text per model call).
        assert labels == served_predictor.predict(TEXTS, batch_size=1)
        status, body = _post(f"{url}/v1/explain", {"text": "Sales fell."})
        assert status in (401, 501)  # 401: no key; with a key it would be 501 (no lime here)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    _slim_serves_entities(python, tiny_ner_export, env)


def _slim_serves_entities(python: str, folder: Path, env: dict) -> None:
    """The NER export in the slim venv: /v1/entities answers what the Tagger answers."""
    from finslm.ner.predict import Tagger

    texts = ["Tamber Bank hired Marla today.", "Dagny joined Corvik Bank .", "nothing"]
    expected = [Tagger(folder, "onnx-int8", threads=1).entities([t], 1)[0] for t in texts]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start(python, folder, port, "--max-batch", "1", "--threads", "1", env=env)
    try:
        _wait_ready(url, proc)
        status, body = _post(f"{url}/v1/entities", {"texts": texts})
        assert status == 200, body
        assert [r["entities"] for r in body["results"]] == expected
        assert _post(f"{url}/v1/classify", {"texts": ["x"]})[0] == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_ray_serve_two_replicas_match_the_plain_server(tiny_export, served_fp32, tiny_ner_export):
    ray = pytest.importorskip("ray", reason="pip install 'finslm[ray]'")
    from fastapi.testclient import TestClient
    from ray import serve

    from finslm.serve import ServeSettings, create_app
    from finslm.serve.ray_serve import APP_NAME, build_app

    folder, _ = tiny_export
    settings = ServeSettings(max_batch=4, max_wait_ms=5)
    with TestClient(create_app(served_fp32, settings)) as plain:
        expected = [
            plain.post("/v1/classify", json={"texts": [t]}).json()["results"][0]["label"]
            for t in TEXTS
        ]
    port = free_port()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        # fp32 (onnx-opt): Ray batches concurrent requests, which must not change answers.
        app = build_app(folder, "onnx-opt", settings, replicas=2, threads=1, num_cpus=0.5)
        serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url)
        status = serve.status().applications[APP_NAME].deployments["FinslmClassifier"]
        assert status.replica_states.get("RUNNING") == 2
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda t: _labels(url, [t])[0], TEXTS))
        assert got == expected
        code, body = _post(f"{url}/v1/classify", {"texts": []})
        assert code == 422 and body["error"]["field"] == "texts"
        # The same deployment serves a token classifier's export on /v1/entities.
        from finslm.ner.predict import Tagger

        texts = ["Tamber Bank hired Marla today.", "Dagny joined Corvik Bank ."]
        tagger = Tagger(tiny_ner_export, "onnx-opt", threads=1)
        expected = [tagger.entities([t], 1)[0] for t in texts]
        ner = build_app(tiny_ner_export, "onnx-opt", settings, replicas=1, threads=1, num_cpus=0.5)
        serve.run(ner, name=APP_NAME, route_prefix="/", blocking=False)
        _wait_ready(url)
        deadline = time.monotonic() + 60
        while _post(f"{url}/v1/entities", {"texts": texts[:1]})[0] != 200:
            assert time.monotonic() < deadline, "the NER app never answered /v1/entities"
            time.sleep(0.5)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda t: _post(f"{url}/v1/entities", {"texts": [t]}), texts))
        assert [body["results"][0]["entities"] for _, body in got] == expected
    finally:
        serve.shutdown()
        ray.shutdown()


def _container_engine() -> str | None:
    for engine in ("podman", "docker"):
        if shutil.which(engine):
            ok = subprocess.run([engine, "info"], capture_output=True, timeout=60).returncode == 0
            if ok:
                return engine
    return None


def _build_image(engine: str, base: str, tmp_path: Path, model: Path) -> str:
    """Build the Dockerfile from a context of what .dockerignore lets through + ``model``."""
    ctx = tmp_path / "ctx"
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, ctx / name)
    shutil.copytree(ROOT / "serve", ctx / "serve")
    shutil.copytree(ROOT / "src", ctx / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(model, ctx / "exports" / "tiny")
    tag = "localhost/finslm-serve-test:latest"
    cmd = [engine, "build", "--network=host", "-t", tag, "--build-arg", f"BASE_IMAGE={base}"]
    if engine == "podman":
        # chroot: builds where the OCI runtime cannot start (sandboxes); docker format: OCI
        # images drop HEALTHCHECK.
        cmd += ["--isolation", "chroot", "--format", "docker"]
    ca = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    if ca and Path(ca).is_file():  # a TLS-intercepting proxy: pip inside the build needs its CA
        cmd += ["--secret", f"id=pip_ca,src={ca}"]
    subprocess.run([*cmd, "--build-arg", "MODEL=exports/tiny", str(ctx)], check=True)
    return tag


def test_container_builds_runs_and_reports_healthy(
    tmp_path, tiny_export, served_predictor, tiny_ner_export
):
    """Build the image, then run it: in the engine when it can start containers here, else
    (a sandbox without setrlimit/cgroups for OCI runtimes) its filesystem under chroot as the
    image's non-root user, with the image's CMD and HEALTHCHECK commands.

    Needs podman or docker and a Python 3.11 base image: FINSLM_BASE_IMAGE, default
    python:3.11-slim-bookworm (docs/serving.md shows how to make one from Debian packages).
    """
    # CI (.ci/run) provides both, so there a missing one fails instead of skipping.
    missing = pytest.fail if os.environ.get("CI") else pytest.skip
    engine = _container_engine()
    if engine is None:
        missing("no working container engine (podman/docker)")
    base = os.environ.get("FINSLM_BASE_IMAGE", "python:3.11-slim-bookworm")
    if subprocess.run([engine, "image", "inspect", base], capture_output=True).returncode != 0:
        missing(f"base image {base} is not present: bash serve/base-image.sh, FINSLM_BASE_IMAGE")
    tag = _build_image(engine, base, tmp_path, tiny_export[0])
    size = subprocess.run(
        [engine, "image", "inspect", tag, "--format", "{{.Size}}"], capture_output=True, text=True
    ).stdout.strip()
    print(f"image size: {int(size) / 1e6:.0f} MB")
    info = json.loads(
        subprocess.run(
            [engine, "image", "inspect", tag], capture_output=True, text=True, check=True
        ).stdout
    )[0]
    config = info["Config"]
    # docker keeps HEALTHCHECK under Config, podman beside it.
    health = config.get("Healthcheck") or info.get("Healthcheck") or {}
    assert config["User"] == "finslm"
    assert "/readyz" in " ".join(health.get("Test", []))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    name = f"finslm-serve-test-{port}"
    run = subprocess.run(
        [engine, "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000", tag],
        capture_output=True,
        text=True,
    )
    # The tagger's export, mounted over /model as docs/serving.md shows (readable by uid 10001).
    ner = tmp_path / "ner-export"
    shutil.copytree(tiny_ner_export, ner)
    for path in [ner, *ner.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    ner_texts = ["Tamber Bank hired Marla today.", "Dagny joined Corvik Bank ."]
    try:
        if run.returncode == 0:
            _wait_ready(url)
            labels = [_labels(url, [t])[0] for t in TEXTS]  # one at a time: batch 1 each
            uid = subprocess.run([engine, "exec", name, "id", "-u"], capture_output=True, text=True)
            no_torch = subprocess.run([engine, "exec", name, "python3", "-c", "import torch"])
            healthy = subprocess.run([engine, "healthcheck", "run", name]).returncode == 0
            stop = subprocess.run([engine, "stop", "-t", "20", name], capture_output=True)
            assert stop.returncode == 0
            mount = ["-v", f"{ner}:/model:ro", "-p", f"127.0.0.1:{port}:8000"]
            started = subprocess.run([engine, "run", "-d", "--name", f"{name}-ner", *mount, tag])
            assert started.returncode == 0
            _wait_ready(url)
            entities = _post(f"{url}/v1/entities", {"texts": ner_texts})
        else:
            if engine != "podman" or os.geteuid() != 0:
                pytest.skip(f"{engine} cannot start containers here: {run.stderr.strip()}")
            labels, uid, no_torch, healthy = _run_under_chroot(tag, config, health, port)
            entities = _run_under_chroot(tag, config, health, port, model=ner, texts=ner_texts)
        assert labels == served_predictor.predict(TEXTS, batch_size=1)
        assert uid.stdout.strip() not in ("", "0")
        assert no_torch.returncode != 0
        assert healthy
        from finslm.ner.predict import Tagger

        tagger = Tagger(tiny_ner_export, "onnx-int8", threads=1)
        assert entities[0] == 200, entities
        spans = lambda found: [[(e["type"], e["start"], e["end"]) for e in f] for f in found]  # noqa: E731
        expected = tagger.entities(ner_texts, 2)
        assert spans(r["entities"] for r in entities[1]["results"]) == spans(expected)
    finally:
        subprocess.run([engine, "rm", "-f", name, f"{name}-ner"], capture_output=True)


def _run_under_chroot(
    tag: str, config: dict, health: dict, port: int, model: Path | None = None, texts=()
):
    """The image's CMD in its own filesystem (podman image mount + chroot, as its user).

    ``model``: bind-mounted over the image's /model (as ``-v model:/model`` would), and the
    answer of ``POST /v1/entities`` for ``texts`` returned instead of the sentiment checks.
    """
    root = subprocess.run(
        ["podman", "image", "mount", tag], capture_output=True, text=True, check=True
    ).stdout.strip()
    user = "10001:10001"
    env = ["/usr/bin/env", "-i", *config["Env"]]
    cmd = [c if c != "8000" else str(port) for c in config["Cmd"]]
    cmd = [c if c != "0.0.0.0" else "127.0.0.1" for c in cmd]  # loopback only, outside a netns
    subprocess.run(["mount", "--bind", "/proc", f"{root}/proc"], check=True)
    if model is not None:
        subprocess.run(["mount", "--bind", "-o", "ro", str(model), f"{root}/model"], check=True)
    proc = subprocess.Popen(["chroot", f"--userspec={user}", root, *env, *cmd])
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, proc)
        if model is not None:
            answer = _post(f"{url}/v1/entities", {"texts": list(texts)})
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) in (0, -signal.SIGTERM)
            return answer
        labels = [_labels(url, [t])[0] for t in TEXTS]  # one at a time: batch 1 each
        in_image = ["chroot", f"--userspec={user}", root, *env]
        uid = subprocess.run([*in_image, "id", "-u"], capture_output=True, text=True)
        no_torch = subprocess.run([*in_image, "python3", "-c", "import torch"])
        check = [c.replace(":8000/", f":{port}/") for c in health["Test"][1:]]
        healthy = subprocess.run([*in_image, *check]).returncode == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once drained
        return labels, uid, no_torch, healthy
    finally:
        if proc.poll() is None:
            proc.kill()
        if model is not None:
            subprocess.run(["umount", f"{root}/model"])
        subprocess.run(["umount", f"{root}/proc"])
        subprocess.run(["podman", "image", "unmount", tag], capture_output=True)
