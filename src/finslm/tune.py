"""Hyper-parameter search with Optuna: resumable, and shared by workers on several machines.

    finslm tune tfidf --trials 60                 # TPE over tune.space.tfidf, val macro-F1
    finslm tune minilm --trials 20 --timeout 3600 # median pruner on per-epoch val macro-F1
    finslm tune minilm --cv 5                     # objective: the mean over 5 CV folds
    finslm tune minilm --storage postgresql://user@db/optuna --worker 1   # one of N machines

Each trial draws the keys of ``tune.space.<model>`` (params.yaml) with Optuna's TPE sampler,
holds ``tune.fixed.<model>``, and trains ``models.<model>`` so changed with the model's own
recipe (:func:`finslm.cv.fit`) on the train split; its value is the restored model's
validation macro-F1. A transformer reports validation macro-F1 after every epoch, and the
pruner (``tune.pruner``) stops a trial that is behind. With ``cv`` = K the value is the mean
over K stratified folds of train + validation, reported fold by fold. The test split is never
read: choose here, then measure the choice on test once (docs/tuning.md).

The study lives in an Optuna storage — a SQLite file ``<out>/<study>.db`` by default — so a
search that stops (Ctrl-C, a killed machine) continues where it was when run again:
``--trials N`` is the number of finished (complete or pruned) trials the *study* should hold,
and each run adds only what is missing. Workers pointed at one RDB storage (PostgreSQL or
MySQL for several machines) share the study: Optuna hands each a different trial, and TPE
with ``constant_liar`` steers them apart. With a heartbeat (``tune.heartbeat``) a trial whose
worker died is marked failed and its parameters are queued again.

At the end, ``<out>/<study>.json`` holds the best trial, every trial and the wall time, with
the ``dvc exp run -S …`` line that trains the best parameters; ``<out>/<study>-history.png``
and ``-importance.png`` are Optuna's optimisation-history and parameter-importance plots.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import tempfile
import time
import typing
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from finslm.config import (
    MODEL_KINDS,
    ConfigError,
    TuneConfig,
    load_tune_config,
    model_config,
    profile_note,
    read_params,
)

log = logging.getLogger(__name__)

OBJECTIVE = "macro_f1"


# --- the search space ---


def suggest(trial, space: Mapping[str, Any], hints: Mapping[str, Any]) -> dict[str, Any]:
    """One value per key of ``space``, drawn by ``trial`` with the key's distribution.

    ``hints`` are the model config's field types: an ``int`` field is drawn as an integer,
    a ``float`` one as a float; ``choices`` are categorical whatever the type.
    """
    values: dict[str, Any] = {}
    for name, spec in space.items():
        if "choices" in spec:
            values[name] = trial.suggest_categorical(name, list(spec["choices"]))
        elif hints[name] is int:
            values[name] = trial.suggest_int(
                name,
                spec["low"],
                spec["high"],
                step=spec.get("step") or 1,
                log=spec.get("log", False),
            )
        else:
            values[name] = trial.suggest_float(
                name,
                float(spec["low"]),
                float(spec["high"]),
                step=spec.get("step"),
                log=spec.get("log", False),
            )
    return values


# --- what one trial reports ---


class TrialReporter:
    """A DVCLive-shaped sink for :func:`finslm.train.callbacks.live_callback`: each epoch's
    validation macro-F1 is reported to the Optuna ``trial``, and the trial is stopped
    (``optuna.TrialPruned`` out of the Trainer loop) when the pruner says so."""

    def __init__(self, trial):
        self.trial = trial
        self.step = 0
        self.value: float | None = None

    def log_metric(self, name: str, value: float) -> None:
        if name == f"val/{OBJECTIVE}":
            self.value = float(value)

    def next_step(self) -> None:
        import optuna

        if self.value is None:
            return
        self.step += 1
        self.trial.report(self.value, self.step)
        self.value = None
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"epoch {self.step}: pruned")


@dataclasses.dataclass
class Objective:
    """``objective(trial)`` -> validation macro-F1 of ``models.<model>`` with the drawn values."""

    model: str
    base: dict[str, Any]  # models.<model> from params.yaml
    space: Mapping[str, Any]
    fixed: Mapping[str, Any]
    prepared: Path
    cv: int = 0
    cv_seed: int = 42
    seed: int = 42
    threads: int = 1

    def __post_init__(self):
        from finslm.data import read_split

        cls = MODEL_KINDS[self.base.get("kind")]
        self.hints = typing.get_type_hints(cls)
        # Train and validation only: the test split is not opened by a search.
        self.train = read_split(self.prepared / "train.parquet")
        self.val = read_split(self.prepared / "val.parquet")
        if self.cv:
            from finslm.cv import folds

            self.folds = folds(self.train, self.val, self.cv, self.cv_seed)

    def __call__(self, trial) -> float:
        import optuna

        from finslm.cv import fit

        values = suggest(trial, self.space, self.hints)
        cfg = model_config(self.model, {**self.base, **self.fixed, **values})
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="finslm-tune-") as tmp:
            if not self.cv:
                reporter = TrialReporter(trial)
                summary = fit(
                    cfg, self.train, self.val, Path(tmp) / "m", self.seed, self.threads, reporter
                )
                scores = [summary["val"]]
                trial.set_user_attr("epochs", summary["epochs"])
                trial.set_user_attr("best_epoch", summary["best_epoch"])
            else:
                scores = []
                for k, (train_df, held_df) in enumerate(self.folds):
                    summary = fit(
                        cfg, train_df, held_df, Path(tmp) / f"fold{k}", self.seed, self.threads
                    )
                    scores.append(summary["val"])
                    mean = sum(s[OBJECTIVE] for s in scores) / len(scores)
                    trial.report(mean, k + 1)
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"fold {k + 1}: pruned")
                trial.set_user_attr("folds", [round(s[OBJECTIVE], 4) for s in scores])
        trial.set_user_attr("seconds", round(time.perf_counter() - start, 1))
        accuracy = sum(s["accuracy"] for s in scores) / len(scores)
        trial.set_user_attr("accuracy", round(accuracy, 4))
        return sum(s[OBJECTIVE] for s in scores) / len(scores)


# --- storage, sampler, pruner ---


def storage_url(cfg: TuneConfig, out: Path, study: str, override: str | None = None) -> str:
    return override or cfg.storage or f"sqlite:///{out / f'{study}.db'}"


def open_storage(url: str, heartbeat: int = 0):
    """An Optuna storage for ``url``: ``journal:<file>`` or a SQLAlchemy URL (RDB).

    RDB storages get the heartbeat: a RUNNING trial silent for 2 x ``heartbeat`` s is failed
    (when any worker next starts a trial) and re-queued with the same parameters once.
    """
    try:
        return _open_storage(url, heartbeat)
    except OSError as exc:
        raise ConfigError(f"--storage {url}: cannot create its file ({exc})") from None
    except ImportError as exc:  # the database's driver (psycopg2, PyMySQL) is not installed
        raise ConfigError(
            f"--storage {url}: the database driver is not installed ({exc}); pip install the "
            "driver for it (postgresql: psycopg2-binary, mysql: PyMySQL)"
        ) from None
    except Exception as exc:  # sqlalchemy: an unknown dialect, a server that is not there
        if type(exc).__module__.startswith(("sqlalchemy", "optuna")):
            raise ConfigError(
                f"--storage {url}: {type(exc).__name__}: {str(exc).splitlines()[0]}; give "
                "journal:<file>, sqlite:///<file> or a reachable postgresql:// / mysql:// URL"
            ) from None
        raise


def _open_storage(url: str, heartbeat: int):
    import optuna

    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    engine: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # Several local workers on one file: wait for the write lock instead of failing.
        engine = {"connect_args": {"timeout": 60}}
    beat: dict[str, Any] = {}
    if heartbeat:
        beat = dict(
            heartbeat_interval=heartbeat,
            grace_period=2 * heartbeat,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=1
            ),
        )
    lock = Path(url.removeprefix("sqlite:///") + ".lock") if url.startswith("sqlite:///") else None
    for attempt in range(5):
        try:
            with _file_lock(lock):  # local workers create the schema one after the other
                return optuna.storages.RDBStorage(url, engine_kwargs=engine, **beat)
        except Exception as exc:  # sqlalchemy errors: two workers created the schema at once
            racing = "already exists" in str(exc) or "UNIQUE constraint" in str(exc)
            if not racing or attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))  # the other worker's tables are there now
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _file_lock(path: Path | None):
    """An exclusive POSIX lock on ``path`` (no-op for None or where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows: the retry in open_storage covers the race
        fcntl = None
    if path is None or fcntl is None:
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def make_pruner(cfg: TuneConfig, max_steps: int):
    import optuna

    if cfg.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=cfg.startup_trials, n_warmup_steps=cfg.warmup_steps
        )
    if cfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(max_steps, 1))
    return optuna.pruners.NopPruner()


def _redact(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``."""
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", url)


# --- the search ---


@dataclasses.dataclass
class TuneResult:
    study: str
    path: Path
    summary: dict[str, Any]


def finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


# Over 80 lines on purpose: the study's driver: storage, resume checks, the worker loop and the summary.
def run_tune(
    model: str,
    *,
    params_path: Path = Path("params.yaml"),
    prepared: Path = Path("data/prepared"),
    out: Path = Path("tune"),
    study_name: str | None = None,
    trials: int | None = None,
    timeout: float | None = None,
    cv: int | None = None,
    storage: str | None = None,
    worker: int = 0,
    threads: int = 1,
    progress: bool = True,
    plots: bool = True,
) -> TuneResult:
    """Run (or continue) the study of ``model`` until it holds ``trials`` finished trials or
    ``timeout`` s pass; write ``<out>/<study>.json`` and the plots; return them."""
    import optuna

    # Heartbeats, multivariate TPE and the plots are "experimental" in Optuna 5: no notices.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    cfg = load_tune_config(params_path)
    raw = read_params(params_path)
    if note := profile_note(raw):
        log.warning("%s: %s", params_path, note)
    models = raw.get("models") or {}
    if model not in models:
        raise ConfigError(
            f"models.{model}: no such model in {params_path}; have {', '.join(models)}"
        )
    space = cfg.space.get(model)
    if not space:
        kind = (models[model] or {}).get("kind", "transformer")
        example = (
            "C: {low: 0.01, high: 100.0, log: true}"
            if kind == "tfidf"
            else ("lr: {low: 1.0e-5, high: 3.0e-4, log: true}")
        )
        raise ConfigError(
            f"tune.space.{model}: no search space for {model!r} in {params_path}; declare one, "
            "e.g. tune: {space: {" + model + ": {" + example + "}}}"
        )
    trials = cfg.trials if trials is None else trials
    timeout = cfg.timeout if timeout is None else timeout
    cv = cfg.cv if cv is None else cv
    if trials < 1:
        raise ConfigError(f"--trials {trials}: need at least 1")
    if timeout < 0:
        raise ConfigError(f"--timeout {timeout:g}: seconds >= 0 (0 = no limit)")
    if cv == 1 or cv < 0:
        raise ConfigError(f"--cv {cv}: 0 (off) or at least 2 folds")
    for split in ("train", "val"):
        if not (prepared / f"{split}.parquet").exists():
            raise ConfigError(f"{prepared / f'{split}.parquet'}: missing; run `dvc repro prepare`")
    base = dict(models[model] or {})
    fixed = dict(cfg.fixed.get(model) or {})
    seed = int((raw.get("train") or {}).get("seed", 42))
    name = study_name or (f"{model}-cv{cv}" if cv else model)
    url = storage_url(cfg, out, name, storage)

    # What the trials mean: a study continued with another space or recipe would mix them.
    identity = {
        "model": model,
        "recipe": model_config(model, {**base, **fixed}).__class__.__name__,
        "base": base,
        "space": space,
        "fixed": fixed,
        "cv": cv,
        "train_seed": seed,
        "objective": f"val {OBJECTIVE}" + (f", mean over {cv} folds" if cv else ""),
    }
    identity = json.loads(json.dumps(identity))
    max_steps = cv or int(max(_bounds(space, "epochs", base.get("epochs", 1))))
    study = optuna.create_study(
        study_name=name,
        storage=open_storage(url, cfg.heartbeat),
        pruner=make_pruner(cfg, max_steps),
        direction="maximize",
        load_if_exists=True,
    )
    saved = study.user_attrs.get("finslm")
    if saved is None:
        study.set_user_attr("finslm", identity)
    elif saved != identity:
        changed = sorted(k for k in identity if saved.get(k) != identity[k])
        raise ConfigError(
            f"study {name!r} in {_redact(url)} was run with another {', '.join(changed)}; "
            "continue it with the same settings, or start another (--study NAME)"
        )
    # TPE, seeded: reproducible for one worker, different across workers and resumptions
    # (two workers drawing the same random start-up trials would duplicate each other's work).
    study.sampler = optuna.samplers.TPESampler(
        seed=cfg.seed + 1000 * worker + len(study.trials),
        n_startup_trials=cfg.startup_trials,
        constant_liar=True,
        multivariate=True,
    )
    remaining = trials - finished(study)
    objective = Objective(
        model, base, space, fixed, prepared, cv=cv, cv_seed=seed, seed=seed, threads=threads
    )
    start = time.perf_counter()
    if remaining > 0:
        log.info(
            "study %s (%s): %d finished, running up to %d more%s",
            name,
            _redact(url),
            trials - remaining,
            remaining,
            f" for at most {timeout:.0f} s" if timeout else "",
        )
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study.optimize(
            objective,
            n_trials=remaining,
            timeout=timeout or None,
            callbacks=[
                optuna.study.MaxTrialsCallback(
                    trials,
                    states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED),
                )
            ],
            catch=(ConfigError,),  # a drawn combination the recipe rejects: that trial fails
            show_progress_bar=progress,
            gc_after_trial=True,
        )
    else:
        log.info("study %s: already holds %d finished trials", name, trials - remaining)
    wall = time.perf_counter() - start
    summary = summarise_study(study, model, identity, _redact(url), wall, worker)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if plots:
        summary["plots"] = save_plots(study, out / name)
        path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return TuneResult(name, path, summary)


def _bounds(space: Mapping[str, Any], key: str, default: Any) -> list[Any]:
    spec = space.get(key)
    if spec is None:
        return [default]
    return list(spec["choices"]) if "choices" in spec else [spec["low"], spec["high"]]


def yaml_value(value: Any) -> str:
    """A value as ``dvc exp run -S`` and params.yaml read it (repr: the float exactly)."""
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


def dvc_line(model: str, params: Mapping[str, Any]) -> str:
    """``dvc exp run -S models.<model>.<key>=<value> …``: train@<model> with these values."""
    return "dvc exp run " + " ".join(
        f"-S models.{model}.{k}={yaml_value(v)}" for k, v in sorted(params.items())
    )


def summarise_study(study, model, identity, url, wall: float, worker: int) -> dict[str, Any]:
    """The study as JSON: best trial, every trial, counts by state, this worker's wall time."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    rows = [
        {
            "number": t.number,
            "state": t.state.name.lower(),
            "value": None if t.value is None else round(t.value, 4),
            "params": t.params,
            "steps": len(t.intermediate_values),
            "seconds": None
            if t.datetime_complete is None or t.datetime_start is None
            else round((t.datetime_complete - t.datetime_start).total_seconds(), 1),
            **(
                {"retry_of": t.system_attrs["failed_trial"]}
                if "failed_trial" in t.system_attrs
                else {}
            ),
        }
        for t in trials
    ]
    out: dict[str, Any] = {
        "study": study.study_name,
        "storage": url,
        **identity,
        "counts": counts,
        "wall_seconds": round(wall, 1),
        "worker": worker,
        "trials": rows,
    }
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        out["best"] = {
            "number": best.number,
            "value": round(best.value, 4),
            "params": best.params,
            "user_attrs": best.user_attrs,
        }
        out["dvc_exp_run"] = dvc_line(model, best.params)
    return out


def save_plots(study, stem: Path) -> dict[str, str]:
    """Optuna's history and parameter-importance plots (matplotlib) as ``<stem>-*.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as ovm

    saved: dict[str, str] = {}
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    plots = {"history": ovm.plot_optimization_history}
    if len(complete) >= 2:
        plots["importance"] = ovm.plot_param_importances
    for kind, draw in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "experimental" notices
                ax = draw(study)
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            fig.set_size_inches(8, 4.5)
            fig.tight_layout()
            path = stem.parent / f"{stem.name}-{kind}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            saved[kind] = str(path)
        except (ValueError, RuntimeError) as exc:  # e.g. no parameter varied yet
            log.warning("%s plot skipped: %s", kind, exc)
    return saved


# --- write the best values back ---


def write_back(params_path: Path, model: str, values: Mapping[str, Any]) -> list[str]:
    """Set ``models.<model>.<key>`` in params.yaml to ``values``, line by line so comments and
    layout stay; a key the model's block lacks is added at its end. Returns the changed keys."""
    lines = params_path.read_text(encoding="utf-8").splitlines(keepends=True)

    def indent(line: str) -> int:
        return len(line) - len(line.lstrip(" "))

    def find(start: int, stop: int, key: str, depth: int) -> int | None:
        for i in range(start, stop):
            line = lines[i]
            if line.strip() and indent(line) == depth and line.lstrip().startswith(f"{key}:"):
                return i
        return None

    def block_end(i: int) -> int:
        depth = indent(lines[i])
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or indent(lines[j]) > depth):
            j += 1
        return j

    top = find(0, len(lines), "models", 0)
    if top is None:
        raise ConfigError(f"{params_path}: no top-level models section")
    end = block_end(top)
    child = next(
        (indent(x) for x in lines[top + 1 : end] if x.strip() and not x.lstrip().startswith("#")), 2
    )
    head = find(top + 1, end, model, child)
    if head is None:
        raise ConfigError(f"{params_path}: no models.{model} block")
    changed = []
    for key, value in values.items():
        stop = block_end(head)
        depth = next(
            (
                indent(x)
                for x in lines[head + 1 : stop]
                if x.strip() and not x.lstrip().startswith("#")
            ),
            child + 2,
        )
        at = find(head + 1, stop, key, depth)
        text = yaml_value(value)
        if at is None:
            last = stop
            while last > head + 1 and not lines[last - 1].strip():
                last -= 1
            lines.insert(last, f"{' ' * depth}{key}: {text}   # finslm tune\n")
        else:
            line = lines[at]
            m = re.match(r"^(\s*[^:#]+:\s*)([^#\n]*?)(\s*#.*)?(\n?)$", line)
            lines[at] = f"{m.group(1)}{text}{m.group(3) or ''}{m.group(4)}"
        changed.append(key)
    params_path.write_text("".join(lines), encoding="utf-8")
    return changed
