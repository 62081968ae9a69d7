"""finslm tune: the search space validated, trials run and resumed, workers sharing one study,
the best parameters printed as a dvc line and written back, and the test split never read."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from finslm.cli import app
from finslm.config import ConfigError, load_params, load_tune_config
from finslm.tune import TrialReporter, dvc_line, run_tune, write_back
from tests.test_cv import make_workspace

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
TFIDF_SPACE = {"C": {"low": 0.01, "high": 100.0, "log": True}, "ngram_max": {"low": 1, "high": 2}}
MINILM_SPACE = {
    "lr": {"low": 1e-4, "high": 1e-3, "log": True},
    "epochs": {"low": 1, "high": 2},
    "pooling": {"choices": ["cls", "mean"]},
}


@pytest.fixture
def workspace(tmp_path, tiny_checkpoint):
    """train/val splits and no test.parquet (see test_cv.make_workspace), a tune section."""
    make_workspace(tmp_path, tiny_checkpoint)
    set_tune(tmp_path, space={"tfidf": TFIDF_SPACE, "minilm": MINILM_SPACE})
    return tmp_path


def set_tune(root: Path, **tune) -> None:
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["tune"] = {"startup_trials": 1, "heartbeat": 0, **params.get("tune", {}), **tune}
    path.write_text(yaml.safe_dump(params))


def _cli(root: Path, *args):
    common = [
        "--params",
        root / "params.yaml",
        "--prepared",
        root / "prepared",
        "--out",
        root / "tune",
    ]
    return runner.invoke(app, [*map(str, args), *map(str, common), "--no-progress"])


def _worker(root: Path, *args) -> subprocess.Popen:
    """``finslm tune`` in its own process (as on another machine), logging to a file."""
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}", "OMP_NUM_THREADS": "1"}
    common = [
        "--params",
        root / "params.yaml",
        "--prepared",
        root / "prepared",
        "--out",
        root / "tune",
    ]
    cmd = [sys.executable, "-m", "finslm.cli", "tune", *map(str, args), *map(str, common)]
    log = open(root / f"worker-{time.monotonic_ns()}.log", "w")  # noqa: SIM115 (closed by the OS)
    return subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)


def _study(url: str, name: str):
    import optuna

    return optuna.load_study(study_name=name, storage=url)


# --- the search space in params.yaml ---


def test_repo_params_tune_section_is_valid():
    cfg = load_params(REPO / "params.yaml").tune
    assert {"minilm", "tfidf"} <= set(cfg.space)
    assert load_tune_config(REPO / "params.yaml").space["tfidf"]["C"]["log"] is True


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"tfidf": {"Cee": {"low": 1, "high": 2}}}, r"tune\.space\.tfidf\.Cee: not a setting of models\.tfidf"),
        ({"tfidf": {"C": {"low": 2.0, "high": 1.0}}}, r"tune\.space\.tfidf\.C: .*must be low < high"),
        ({"tfidf": {"C": {"low": 0.0, "high": 1.0, "log": True}}}, r"low > 0 on a log scale"),
        ({"tfidf": {"C": {"low": 0.1, "high": 1.0, "lg": True}}}, r"unknown: \['lg'\]"),
        ({"tfidf": {"C": {"low": "a", "high": 1.0}}}, r"numbers low and high"),
        ({"tfidf": {"C": {"choices": []}}}, r"a non-empty list of choices"),
        ({"tfidf": {"ngram_max": {"low": 1.0, "high": 2.5}}}, r"an integer setting"),
        ({"tfidf": {"class_weight": {"low": 0, "high": 1}}}, r"give \{choices: \[\.\.\.\]\}"),
        ({"tfidf": {"C": {"low": -1.0, "high": 1.0}}}, r"tune\.space\.tfidf\.C: models\.tfidf\.C: got -1\.0"),
        ({"minilm": {"pooling": {"choices": ["cls", "max"]}}}, r"models\.minilm\.pooling: got 'max'"),
        ({"bert": {"lr": {"low": 1e-5, "high": 1e-4}}}, r"tune\.space\.bert: no model 'bert'"),
        ({"tfidf": {}}, r"tune\.space\.tfidf: got \{\}; must be a non-empty mapping"),
        # tune.fixed: its own key is blamed (not the first range it is laid under), and a
        # setting both searched and fixed is refused (the fixed value would be ignored).
        ({"tfidf": TFIDF_SPACE, "fixed": {"tfidf": {"Cc": 1.0}}}, r"^\S+:\d+: tune\.fixed\.tfidf\.Cc: not a setting"),
        ({"tfidf": TFIDF_SPACE, "fixed": {"tfidf": {"max_iter": 0}}}, r"tune\.fixed\.tfidf\.max_iter: models\.tfidf\.max_iter: got 0"),
        ({"tfidf": TFIDF_SPACE, "fixed": {"tfidf": {"C": 1.0}}}, r"tune\.fixed\.tfidf\.C: also searched in tune\.space\.tfidf"),
    ],
)  # fmt: skip
def test_bad_search_space_fails_naming_the_entry(workspace, space, message):
    space = dict(space)
    fixed = space.pop("fixed", {})
    set_tune(workspace, space=space, fixed=fixed)
    with pytest.raises(ConfigError, match=message):
        load_tune_config(workspace / "params.yaml")
    with pytest.raises(ConfigError, match=message):  # and the whole-file check says the same
        load_params(workspace / "params.yaml")


def test_bad_tune_settings_and_missing_space(workspace):
    for bad, message in (({"trials": 0}, "tune.trials"), ({"cv": 1}, "tune.cv"),
                         ({"pruner": "asha"}, "tune.pruner")):  # fmt: skip
        set_tune(workspace, **bad)
        with pytest.raises(ConfigError, match=message):
            load_tune_config(workspace / "params.yaml")
        set_tune(workspace, trials=20, cv=0, pruner="median")
    set_tune(workspace, space={"tfidf": TFIDF_SPACE})
    result = _cli(workspace, "tune", "minilm", "--trials", 1)
    assert result.exit_code == 2 and "tune.space.minilm: no search space" in result.output
    set_tune(workspace, space={"minilm": MINILM_SPACE})
    result = _cli(workspace, "tune", "tfidf", "--trials", 1)  # its example is a TF-IDF setting
    assert result.exit_code == 2 and "{tfidf: {C: {low: 0.01" in result.output
    set_tune(workspace, space={"tfidf": TFIDF_SPACE})
    result = _cli(workspace, "tune", "tfidf", "--timeout", -5)
    assert result.exit_code == 2 and "--timeout -5: seconds >= 0" in result.output


# --- one worker ---


def test_tune_tfidf_trials_resume_dvc_line_plots_and_write_back(workspace):
    assert not (workspace / "prepared" / "test.parquet").exists()  # a read would fail
    result = _cli(workspace, "tune", "tfidf", "--trials", 2)
    assert result.exit_code == 0, result.output
    url = f"sqlite:///{workspace / 'tune' / 'tfidf.db'}"
    assert len(_study(url, "tfidf").trials) == 2
    saved = json.loads((workspace / "tune" / "tfidf.json").read_text())
    assert saved["counts"] == {"complete": 2}
    best = saved["best"]
    # The study maximises validation macro-F1: the best trial is the highest one.
    values = [t.value for t in _study(url, "tfidf").trials if t.value is not None]
    assert best["value"] == pytest.approx(max(values))
    line = dvc_line("tfidf", best["params"])
    assert line in result.output and line == saved["dvc_exp_run"]
    assert f"-S models.tfidf.C={best['params']['C']!r}" in line  # the exact float
    assert set(saved["plots"]) == {"history", "importance"}
    assert all(Path(p).stat().st_size > 1000 for p in saved["plots"].values())

    # --trials is the study's total: a rerun adds only the missing trial, then nothing.
    assert _cli(workspace, "tune", "tfidf", "--trials", 3).exit_code == 0
    assert _cli(workspace, "tune", "tfidf", "--trials", 3).exit_code == 0
    trials = _study(url, "tfidf").trials
    assert [t.number for t in trials] == [0, 1, 2]

    # Same study, another space: refused rather than mixed.
    set_tune(workspace, space={"tfidf": {"C": {"low": 1.0, "high": 2.0}}})
    refused = _cli(workspace, "tune", "tfidf", "--trials", 4)
    assert refused.exit_code == 2 and "another space" in refused.output

    # --write-params: the best values land in models.tfidf, the file stays valid.
    set_tune(workspace, space={"tfidf": TFIDF_SPACE})
    written = _cli(workspace, "tune", "tfidf", "--trials", 3, "--write-params")
    assert written.exit_code == 0, written.output
    best = json.loads((workspace / "tune" / "tfidf.json").read_text())["best"]["params"]
    model = load_params(workspace / "params.yaml").models["tfidf"]
    assert (model.C, model.ngram_max) == (best["C"], best["ngram_max"])


def test_write_back_keeps_comments_and_adds_missing_keys(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(
        "data:\n  seed: 42\n\nmodels:\n  minilm:\n    kind: transformer\n"
        "    lr: 1.0e-4   # peak\n    epochs: 6\n  tfidf:\n    kind: tfidf\n    C: 10.0\n\n"
        "train:\n  seed: 42\n"
    )
    changed = write_back(path, "minilm", {"lr": 3.5e-05, "pooling": "mean", "class_weights": True})
    assert changed == ["lr", "pooling", "class_weights"]
    text = path.read_text()
    assert "    lr: 3.5e-05   # peak\n" in text and "    epochs: 6\n" in text
    params = load_params(path)
    assert params.models["minilm"].pooling == "mean" and params.models["minilm"].class_weights
    assert params.models["tfidf"].C == 10.0 and params.train.seed == 42
    # A key the model lacks is added to its own block, not found in the next model's.
    path.write_text(
        "models:\n  a:\n    kind: transformer\n  b:\n    kind: transformer\n    epochs: 6\n"
    )
    assert write_back(path, "a", {"epochs": 3}) == ["epochs"]
    params = load_params(path)
    assert (params.models["a"].epochs, params.models["b"].epochs) == (3, 6)


def test_trial_reporter_reports_each_epoch_and_prunes():
    import optuna

    class FakeTrial:
        def __init__(self):
            self.reports = []

        def report(self, value, step):
            self.reports.append((step, value))

        def should_prune(self):
            return len(self.reports) >= 2

    trial = FakeTrial()
    reporter = TrialReporter(trial)
    reporter.log_metric("val/loss", 0.9)
    reporter.log_metric("val/macro_f1", 0.5)
    reporter.next_step()
    reporter.next_step()  # an evaluation without macro-F1 reports nothing
    reporter.log_metric("val/macro_f1", 0.6)
    with pytest.raises(optuna.TrialPruned, match="epoch 2"):
        reporter.next_step()
    assert trial.reports == [(1, 0.5), (2, 0.6)]


@pytest.mark.slow
def test_tune_transformer_two_trials_with_pruner_and_cv(workspace):
    result = _cli(workspace, "tune", "minilm", "--trials", 2)
    assert result.exit_code == 0, result.output
    saved = json.loads((workspace / "tune" / "minilm.json").read_text())
    assert sum(saved["counts"].values()) == 2
    assert saved["fixed"] == {} and "dvc exp run -S models.minilm." in result.output
    # Each trial reported its epochs to the pruner.
    assert all(1 <= t["steps"] <= 2 for t in saved["trials"])
    # --cv: the objective is the folds' mean, reported fold by fold; a study of its own.
    cv = run_tune(
        "minilm",
        params_path=workspace / "params.yaml",
        prepared=workspace / "prepared",
        out=workspace / "tune",
        trials=1,
        cv=2,
        progress=False,
        plots=False,
    )
    assert cv.study == "minilm-cv2"
    (trial,) = cv.summary["trials"]
    assert trial["steps"] == 2 and len(cv.summary["best"]["user_attrs"]["folds"]) == 2
    assert trial["value"] == pytest.approx(
        sum(cv.summary["best"]["user_attrs"]["folds"]) / 2, abs=1e-3
    )


# --- several workers, and a killed one ---


@pytest.mark.slow  # two worker processes
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_workers_share_one_study_without_duplicates(workspace, kind):
    url = (
        f"sqlite:///{workspace / 'shared.db'}"
        if kind == "sqlite"
        else f"journal:{workspace / 'shared.log'}"
    )
    workers = [
        _worker(workspace, "tfidf", "--trials", 8, "--storage", url, "--study", "s",
                "--worker", w, "--no-progress")
        for w in (0, 1)
    ]  # fmt: skip
    codes = [w.wait(timeout=600) for w in workers]
    logs = "\n".join(p.read_text() for p in workspace.glob("worker-*.log"))
    assert codes == [0, 0], logs
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = (
        url
        if kind == "sqlite"
        else JournalStorage(JournalFileBackend(str(workspace / "shared.log")))
    )
    trials = _study(storage, "s").trials
    states = {t.state.name for t in trials}
    assert states == {"COMPLETE"}
    # The study completes: 8 trials, plus at most one started by the other worker meanwhile.
    assert 8 <= len(trials) <= 9
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(trials)))  # no trial number twice
    draws = [(round(t.params["C"], 12), t.params["ngram_max"]) for t in trials]
    assert len(set(draws)) == len(draws)  # no parameter set drawn twice
    assert len({t.user_attrs.get("seconds") is not None for t in trials}) == 1


@pytest.mark.slow
def test_study_killed_mid_trial_resumes_and_finishes(workspace):
    """SIGKILL a worker while a trial runs; the next run fails that trial (heartbeat), retries
    its parameters and finishes the study."""
    from optuna.trial import TrialState

    set_tune(workspace, heartbeat=1)
    url = f"sqlite:///{workspace / 'tune' / 'minilm.db'}"
    args = ("minilm", "--trials", 3, "--no-progress")
    worker = _worker(workspace, *args)
    deadline = time.monotonic() + 300
    running = None
    while running is None and time.monotonic() < deadline:
        assert worker.poll() is None, "the worker ended before a trial could be interrupted"
        time.sleep(0.3)
        try:
            trials = _study(url, "minilm").trials
        except Exception:  # the study is not created yet
            continue
        running = next((t for t in trials if t.state == TrialState.RUNNING), None)
    assert running is not None
    time.sleep(1.0)  # mid-trial: the model is loading or training
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=60)
    killed = _study(url, "minilm").trials[running.number]
    assert killed.state == TrialState.RUNNING  # the dead worker left it so
    assert set(killed.params) == set(MINILM_SPACE)  # drawn before it died
    time.sleep(3)  # > 2 x heartbeat: stale

    resumed = _worker(workspace, *args)
    assert resumed.wait(timeout=600) == 0, "\n".join(
        p.read_text() for p in workspace.glob("worker-*.log")
    )
    trials = _study(url, "minilm").trials
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(done) == 3
    assert trials[running.number].state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == running.number]
    assert len(retries) == 1 and retries[0].params == killed.params  # the same draw again
    assert [t.number for t in trials] == list(range(len(trials)))
    saved = json.loads((workspace / "tune" / "minilm.json").read_text())
    assert saved["counts"]["fail"] == 1 and "dvc_exp_run" in saved


def test_suggest_keeps_bounds_and_log_scale():
    import optuna
    from optuna.distributions import FloatDistribution, IntDistribution

    from finslm.tune import suggest

    trial = optuna.create_study().ask()
    space = {"lr": {"low": 1e-5, "high": 1e-3, "log": True}, "epochs": {"low": 1, "high": 4}}
    suggest(trial, space, {"lr": float, "epochs": int})
    assert trial.distributions["lr"] == FloatDistribution(1e-5, 1e-3, log=True)
    assert trial.distributions["epochs"] == IntDistribution(1, 4)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("bogus://x", "NoSuchModuleError"),
        # No driver installed: which to install; with one: the server that is not there.
        ("postgresql://u@127.0.0.1:1/db", "(psycopg2-binary|OperationalError)"),
        ("sqlite:////proc/nope/x.db", "cannot create its file"),
        ("journal:/proc/nope/x.log", "cannot create its file"),
    ],
)
def test_a_storage_that_cannot_open_is_one_config_error(url, words):
    from finslm.tune import open_storage

    with pytest.raises(ConfigError, match=rf"--storage {re.escape(url)}: .*{words}"):
        open_storage(url)


def test_write_back_edits_models_not_the_quick_overlay(tmp_path):
    """With `quick:` above `models:` in params.yaml, tune's write-back edits the model's own
    block, not quick.models.<m>."""
    from finslm.tune import write_back

    path = tmp_path / "params.yaml"
    path.write_text(
        "quick:\n  models:\n    m:\n      lr: 0.1\n"
        "models:\n  m:\n    kind: transformer\n    lr: 0.2\n"
    )
    assert write_back(path, "m", {"lr": 0.5}) == ["lr"]
    text = path.read_text()
    assert "      lr: 0.1\n" in text and "    lr: 0.5\n" in text and "0.2" not in text


def test_storage_password_is_redacted():
    """An Optuna storage URL's password never reaches the summary or the log."""
    from finslm.tune import _redact

    assert _redact("postgresql://user:secret@db:5432/optuna") == (
        "postgresql://user:***@db:5432/optuna"
    )
    assert _redact("sqlite:///metrics/tune/m.db") == "sqlite:///metrics/tune/m.db"
