"""The explain stage's core: explain a stratified validation sample, score faithfulness, analyse errors.

    >>> summary = run_explain(cfg, ExplainPaths.for_model("minilm"))   # what stages/explain.py does

Writes (paths from :class:`ExplainPaths`, i.e. from dvc.yaml via the stage's arguments):

- ``reports/explain/index.html``: the report (:mod:`finslm.explain.page`), and
  ``reports/explain/<method>.html``: every explained sentence coloured by one method;
- ``reports/explain/attributions.json``: per explained sentence, its words (with character
  spans) and, per method, one attribution per word, plus its faithfulness scores;
- ``metrics/explain.json``: per method ``{comprehensiveness, sufficiency, loo_spearman,
  seconds_per_sentence}`` (and ``random``, the floor), ``n_sentences``, ``seconds_total``;
- ``analysis/<model>.json``: the recommendations file (:mod:`finslm.explain.analysis`);
- ``plots/explain/{faithfulness,reliability}.png``.

Only the validation split is read. SHAP, LIME and the faithfulness measures run the configured
perturbation predictor (ONNX INT8 by default) in batches; IG and attention run PyTorch.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from finslm.config import ExplainConfig
from finslm.explain.analysis import (
    prediction_frame,
    recommendations,
    stratified_sample,
    validate_recommendations,
)
from finslm.explain.attributions import TORCH_METHODS, Explainer, MethodSettings, sentence_seed
from finslm.explain.faithfulness import (
    leave_one_out,
    mean_curves,
    most_faithful,
    random_attributions,
    rank_methods,
    sentence_faithfulness,
    summarise,
)
from finslm.explain.page import ReportData, method_pages, render_report
from finslm.explain.plots import faithfulness_plot, reliability_plot
from finslm.models import ModelError

log_ = logging.getLogger("finslm.explain")
WARMUP_TEXT = "Quarterly sales rose 5% on stronger demand."


@dataclass(frozen=True)
class ExplainPaths:
    model_dir: Path  # models/<m>: PyTorch weights (IG, attention; torch-fp32 backend)
    export_dir: Path  # exports/<m>: ONNX graphs (onnx-* backends)
    val: Path  # data/prepared/val.parquet
    report_dir: Path  # reports/explain
    metrics: Path  # metrics/explain.json
    analysis: Path  # analysis/<m>.json
    plots_dir: Path  # plots/explain

    @classmethod
    def for_model(cls, model: str, root: Path = Path(".")) -> ExplainPaths:
        """The layout dvc.yaml declares, under ``root``."""
        return cls(
            model_dir=root / "models" / model,
            export_dir=root / "exports" / model,
            val=root / "data/prepared/val.parquet",
            report_dir=root / "reports/explain",
            metrics=root / "metrics/explain.json",
            analysis=root / "analysis" / f"{model}.json",
            plots_dir=root / "plots/explain",
        )


def check_explainable(model_dir: Path) -> dict[str, Any]:
    """``model_dir``'s finslm.json when it is a trained sentence transformer (what every method
    needs: IG and attention take gradients and attention weights from PyTorch), else a
    ModelError saying what the folder is and what to pass instead."""
    from finslm.models import read_meta

    model_dir = Path(model_dir)
    meta = read_meta(model_dir)
    kind = meta.get("kind")
    if kind == "transformer":
        return meta
    if kind in ("ner-transformer", "ner-onnx") or meta.get("task") == "token-classification":
        source = meta.get("source") if kind == "ner-onnx" else str(model_dir)
        where = f" --model {source}" if source else ""
        raise ModelError(
            f"{model_dir}: a token classifier (kind {kind!r}); `finslm ner explain TEXT{where}` "
            "explains its entities"
        )
    if kind == "onnx":
        source = meta.get("source") or f"models/{meta.get('name') or '<name>'}"
        raise ModelError(
            f"{model_dir}: an ONNX export; explain needs the PyTorch folder it came from: "
            f"--model {source} (its ONNX graphs then run SHAP/LIME: --export {model_dir})"
        )
    raise ModelError(
        f"{model_dir}: a {kind!r} model; explain needs a transformer folder (models/<name>, "
        "e.g. models/minilm)"
    )


# Keys an export's finslm.json adds to (or rewrites in) its source model's; every other key is
# copied from the model, so a difference there means another model (finslm.export).
_EXPORT_KEYS = {"kind", "name", "source", "opset", "exporter", "int8_qat", "params", "max_length"}


def check_export(model_dir: Path, export_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """``export_dir``'s finslm.json when it holds ONNX graphs exported from ``model_dir`` (whose
    finslm.json is ``meta``), else a ModelError naming the difference.

    An export records its source model (``source``, ``name``) and copies the model's own
    finslm.json fields (labels, checkpoint, pooling, pruning, ...) and its config.json: any
    disagreement means the graphs are another model's, whose SHAP/LIME numbers would be shown
    under this model's name.
    """
    from finslm.models import META_FILE, read_meta

    model_dir, export_dir = Path(model_dir), Path(export_dir)
    fix = (
        f"pass {model_dir}'s own export (`finslm export {model_dir}` writes it to "
        f"exports/{model_dir.name})"
    )
    if not export_dir.is_dir():
        what = "is a file, not a folder" if export_dir.exists() else "no such folder"
        raise ModelError(f"{export_dir}: {what}; {fix}")
    if not (export_dir / META_FILE).is_file():
        raise ModelError(f"{export_dir}: not an export folder (no {META_FILE}); {fix}")
    export_meta = read_meta(export_dir)
    kind = export_meta.get("kind")
    if kind != "onnx":
        what = {
            "ner-onnx": "the export of a token classifier",
        }.get(kind, "a model folder, not an ONNX export")
        raise ModelError(f"{export_dir}: {what} (kind {kind!r}); {fix}")
    # The export names its model as finslm.export wrote it: the model's finslm.json name, else
    # its folder name. (Not the recorded path: a copied or re-checked-out project moves it.)
    name = meta.get("name") or model_dir.name
    exported = export_meta.get("name") or Path(str(export_meta.get("source") or "")).name
    if exported and exported != name:
        origin = export_meta.get("source") or exported
        raise ModelError(f"{export_dir}: exported from {origin}, not from {model_dir}; {fix}")
    keys = (set(meta) | set(export_meta)) - _EXPORT_KEYS
    for key in sorted(keys, key=lambda k: (k != "labels", k)):
        if meta.get(key) != export_meta.get(key):
            raise ModelError(
                f"{export_dir}: its {key} ({export_meta.get(key)!r}) differs from {model_dir}'s "
                f"({meta.get(key)!r}): exported from another model, or before {model_dir} was "
                f"retrained; {fix}"
            )
    lengths = [int(m.get("max_length", 128)) for m in (export_meta, meta)]
    if lengths[0] != lengths[1]:
        raise ModelError(
            f"{export_dir}: max_length {lengths[0]}, {model_dir} reads {lengths[1]} tokens: "
            f"exported from another model; {fix}"
        )
    if "params" in meta and "params" in export_meta and meta["params"] != export_meta["params"]:
        raise ModelError(
            f"{export_dir}: {export_meta['params']} parameters, {model_dir} has {meta['params']}: "
            f"exported from another model; {fix}"
        )
    configs = [export_dir / "config.json", model_dir / "config.json"]
    if all(c.is_file() for c in configs):
        try:
            differ = json.loads(configs[0].read_text("utf-8")) != json.loads(
                configs[1].read_text("utf-8")
            )
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            differ = False  # unreadable: loading the model or graph says so
        if differ:
            raise ModelError(
                f"{export_dir}: its config.json differs from {model_dir}'s (another "
                f"architecture or labels): exported from another model; {fix}"
            )
    return export_meta


def open_predictors(
    model_dir: Path,
    export_dir: Path | None,
    backend: str,
    fallback: str = "",
    threads: int = 0,
    need_torch: bool = True,
    export_given: bool = False,
) -> tuple[Any, Any, str, list[str]]:
    """(perturbation predictor, torch predictor or None, backend used, notes for the report).

    ``model_dir`` must be a transformer folder (:func:`check_explainable`). ``onnx-*``
    backends look in ``export_dir`` first, then in ``model_dir`` itself or its ``onnx/``
    subfolder; an export folder is used only when its finslm.json says it was exported from
    ``model_dir`` (:func:`check_export`). When neither has the graph and ``fallback`` is set,
    the fallback backend is used and a note says so; otherwise the ModelError (with its fix)
    propagates.

    ``export_given``: ``export_dir`` was named by the user (``--export``): it must be such an
    export (checked even for ``torch-fp32``), the graphs come from it alone, and nothing falls
    back.
    """
    from finslm.predict import ONNX_FILES, ONNX_SUBDIR, load_predictor

    model_dir = Path(model_dir)
    meta = check_explainable(model_dir)
    if export_given:
        if export_dir is None:
            raise ValueError("export_given needs an export_dir")
        try:
            check_export(model_dir, export_dir, meta)
        except ModelError as exc:
            raise ModelError(f"--export {exc}") from None
        fallback = ""
    notes: list[str] = []
    torch_model = None
    if need_torch or backend == "torch-fp32":
        torch_model = load_predictor(model_dir, "torch-fp32", threads=threads)

    def from_export(name: str):
        check_export(model_dir, export_dir, meta)
        return load_predictor(export_dir, name, threads=threads)

    def from_model(name: str):
        # Only the model's own folder: the exports/<m> a models/<m> would also find
        # (finslm.predict.find_export_file) is export_dir's to vouch for, above.
        filename = ONNX_FILES.get(name)
        if filename is None:
            return load_predictor(model_dir, name, threads=threads)
        for folder in (model_dir, model_dir / ONNX_SUBDIR):
            if (folder / filename).is_file():
                return load_predictor(model_dir, name, threads=threads, graph=folder / filename)
        raise ModelError(
            f"{model_dir}: no {filename} for backend {name!r} in it or its {ONNX_SUBDIR}/ "
            f"subfolder; run `dvc repro export@{meta.get('name') or model_dir.name}` (or "
            f"`finslm export {model_dir}`) and pass --export exports/<name>"
        )

    def open_backend(name: str):
        nonlocal torch_model
        if name == "torch-fp32":
            if torch_model is None:
                torch_model = load_predictor(model_dir, "torch-fp32", threads=threads)
            return torch_model
        if export_given:
            return from_export(name)  # its errors name the fix; no other folder is tried
        errors = []
        for attempt in ([from_export] if export_dir is not None else []) + [from_model]:
            try:
                return attempt(name)
            except ModelError as exc:
                errors.append(str(exc))
        raise ModelError("; ".join(errors))

    try:
        predictor, used = open_backend(backend), backend
    except ModelError as exc:
        if not fallback:
            raise
        note = (
            f"backend {backend} unavailable ({exc}); SHAP, LIME and the faithfulness measures "
            f"ran on {fallback} instead"
        )
        notes.append(note)
        predictor, used = open_backend(fallback), fallback
    return predictor, torch_model, used, notes


def _round(value: float, digits: int = 4) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), digits)


@dataclass
class SampleResult:
    records: list[dict[str, Any]]  # attributions.json entries, one per sentence
    rows: dict[str, list[dict[str, Any]]]  # per method (and "random"): faithfulness per sentence
    seconds: dict[str, list[float]]  # per method: attribution wall time per sentence
    deltas: list[float]  # IG completeness gaps
    seconds_total: float  # wall time of the loop (attributions and faithfulness)


def explain_sample(
    explainer: Explainer,
    sample,
    fractions: list[float],
    seed: int,
    progress: bool | None = None,
) -> SampleResult:
    """Explain each row of ``sample`` (its predicted class) and score every method's faithfulness.

    IG and attention run PyTorch, SHAP/LIME/faithfulness the perturbation predictor: when those
    are different engines, the PyTorch methods run in a second thread (one core each on a 2-core
    CPU; both libraries release the GIL while they compute). Not when the perturbation predictor
    is the PyTorch model itself: captum hooks its embedding layer while it runs.
    """
    from tqdm.auto import tqdm

    methods = list(explainer.methods)
    labels = list(explainer.labels)
    scored = [*methods, "random"]
    out = SampleResult([], {m: [] for m in scored}, {m: [] for m in scored}, [], 0.0)
    torch_methods = [m for m in methods if m in TORCH_METHODS]
    parallel = 0 < len(torch_methods) < len(methods)
    parallel = parallel and explainer.predictor is not explainer.torch_model
    main_methods = [m for m in methods if not (parallel and m in TORCH_METHODS)]
    started = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=1) if parallel else None
    try:
        no_proba = np.zeros(len(labels))
        futures = [
            pool.submit(explainer.explain, text, target, torch_methods, no_proba)
            for text, target in zip(sample["text"], sample["predicted"], strict=True)
        ] if pool else []  # fmt: skip
        rows = tqdm(
            sample.iterrows(),
            total=len(sample),
            desc="explain",
            disable=None if progress is None else not progress,
        )
        for i, (_, row) in enumerate(rows):
            e = explainer.explain(row["text"], target=row["predicted"], methods=main_methods)
            if futures:
                other = futures[i].result()
                e.attributions = {m: {**e.attributions, **other.attributions}[m] for m in methods}
                e.seconds.update(other.seconds)
                e.ig_delta = other.ig_delta
            if e.ig_delta is not None:
                out.deltas.append(e.ig_delta)
            tick = time.perf_counter()
            e.attributions["random"] = random_attributions(
                len(e.words), sentence_seed(seed, e.text)
            )
            e.seconds["random"] = time.perf_counter() - tick
            loo = leave_one_out(explainer.scorer, e.text, e.words, e.target)
            faith = {}
            for m in scored:
                faith[m] = sentence_faithfulness(
                    explainer.scorer, e.text, e.words, e.target, e.attributions[m], loo, fractions
                )
                out.rows[m].append(faith[m])
                out.seconds[m].append(e.seconds[m])
            record = e.to_record()
            record["attributions"].pop("random")
            record.update(
                label=row["label"],
                predicted=row["predicted"],  # the batch prediction the error analysis uses
                probabilities={lab: round(float(row[f"p_{lab}"]), 5) for lab in labels},
                stratum=row["stratum"],
                loo=[round(float(v), 5) for v in loo],
                faithfulness={
                    m: {k: _round(v) for k, v in f.items() if not k.endswith("_curve")}
                    for m, f in faith.items()
                },
            )
            out.records.append(record)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    out.seconds_total = time.perf_counter() - started
    return out


# Over 80 lines on purpose: the stage's steps in order, each writing one of its declared outputs.
def run_explain(
    cfg: ExplainConfig,
    paths: ExplainPaths,
    log: Callable[[str], None] = log_.info,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Run the whole stage; returns the metrics written to ``paths.metrics``."""
    from finslm.data import read_split

    started = time.perf_counter()
    if cfg.threads > 0:
        import torch

        torch.set_num_threads(cfg.threads)
    methods = list(cfg.methods)
    val = read_split(paths.val)  # first: a missing split fails before any model loads
    if val.empty:
        raise ModelError(f"{paths.val}: no validation sentences to explain")
    predictor, torch_model, backend, notes = open_predictors(
        paths.model_dir,
        paths.export_dir,
        cfg.backend,
        cfg.fallback_backend,
        cfg.threads,
        need_torch=bool(TORCH_METHODS.intersection(methods)),
    )
    for note in notes:
        log_.warning(note)
    labels = list(predictor.labels)
    proba = predictor.predict_proba(val["text"].astype(str).tolist(), batch_size=cfg.batch_size)
    frame = prediction_frame(val["text"], val["label"], proba, labels)
    sample = stratified_sample(frame, cfg.sample_size, cfg.seed)
    log(
        f"explaining {len(sample)} of {len(frame)} validation sentences with "
        f"{', '.join(methods)} (perturbations on {backend})"
    )

    settings = MethodSettings.from_config(cfg)
    explainer = Explainer(predictor, torch_model, settings, methods)
    explainer.explain(WARMUP_TEXT)  # imports, first-call allocations: not timed
    fractions = [float(k) for k in cfg.fractions]
    scored = [*methods, "random"]
    result = explain_sample(explainer, sample, fractions, cfg.seed, progress)
    rows, seconds, records, deltas = result.rows, result.seconds, result.records, result.deltas
    explain_seconds = result.seconds_total

    table = {m: summarise(rows[m]) for m in scored}
    best = most_faithful(table)
    ranks = rank_methods({m: table[m] for m in methods})
    metrics: dict[str, Any] = {
        m: {
            **{k: _round(v) for k, v in table[m].items()},
            "seconds_per_sentence": _round(float(np.mean(seconds[m])), 5),
        }
        for m in scored
    }
    metrics["n_sentences"] = len(records)
    metrics["seconds_total"] = round(explain_seconds, 2)
    log(
        "faithfulness: "
        + "; ".join(
            f"{m} comp {table[m]['comprehensiveness']:.3f} suff {table[m]['sufficiency']:.3f} "
            f"loo {table[m]['loo_spearman']:.3f} {np.mean(seconds[m]):.3f}s"
            for m in scored
        )
        + f" -> most faithful: {best}"
    )
    log(f"{len(records)} sentences in {explain_seconds:.1f} s (attributions and faithfulness)")

    rec = recommendations(
        frame,
        records,
        labels,
        model=cfg.model,
        backend=backend,
        token_method=best,
        target_accuracy=cfg.target_accuracy,
        n_bins=cfg.calibration_bins,
        top_tokens=cfg.top_tokens,
        min_token_errors=cfg.min_token_errors,
        max_examples=cfg.max_examples,
    )
    validate_recommendations(rec)

    curves = {m: mean_curves(rows[m]) for m in scored}
    faith_png = faithfulness_plot(curves, fractions, paths.plots_dir / "faithfulness.png")
    rel_png = reliability_plot(
        rec["calibration"],
        paths.plots_dir / "reliability.png",
        title=f"Reliability, {cfg.model} on validation — ECE {rec['calibration']['ece']:.3f}",
    )
    if backend == "onnx-int8":
        notes.append(
            "INT8 activations are quantised per batch, so a perturbed text's probability can "
            "shift slightly with its batch-mates: a small noise floor under SHAP, LIME and the "
            "faithfulness measures."
        )
    report = ReportData(
        model=cfg.model,
        backend=backend,
        methods=methods,
        labels=labels,
        records=records,
        faithfulness=metrics,
        ranks=ranks,
        most_faithful=best,
        fractions=fractions,
        recommendations=rec,
        images={"faithfulness": faith_png.read_bytes(), "reliability": rel_png.read_bytes()},
        seconds=time.perf_counter() - started,
        ig_delta=float(np.mean(deltas)) if deltas else None,
        notes=notes,
    )
    paths.report_dir.mkdir(parents=True, exist_ok=True)
    (paths.report_dir / "index.html").write_text(render_report(report), encoding="utf-8")
    for method, page in method_pages(report).items():
        (paths.report_dir / f"{method}.html").write_text(page, encoding="utf-8")
    _write_json(
        paths.report_dir / "attributions.json",
        {
            "model": cfg.model,
            "backend": backend,
            "split": "val",
            "methods": methods,
            "labels": labels,
            "fractions": fractions,
            "most_faithful": best,
            "sentences": records,
        },
    )
    _write_json(paths.analysis, rec)
    _write_json(paths.metrics, metrics)
    log(f"wrote {paths.report_dir / 'index.html'}, {paths.analysis}, {paths.metrics}")
    return metrics


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
