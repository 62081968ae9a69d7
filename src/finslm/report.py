"""The project report: one self-contained page, ``reports/index.html``, from the pipeline's outputs.

    python stages/report.py        # what `dvc repro report` runs
    >>> html = render_page(ReportInputs())          # every path relative to the repo root

Sections: the data report (counts, rejects by reason, split sizes, class balance), the benchmark
table with the accuracy-vs-latency frontier, one block per model (test confusion matrix and
training curves), and the explanations (faithfulness, a few explained validation sentences, a
link to ``reports/explain/index.html``). Inline CSS, plots as SVG data URIs, no JavaScript, no
external resources: the file opens anywhere, offline.

Every input is optional. A missing or unreadable file gives a box naming the file and the stage
that writes it, in place of its section, and :func:`render_page` still returns a page; the
stage prints what was missing.

The page quotes a few validation sentences (the explanation samples), so it follows the rule of
``reports/explain/``: a cached DVC output, git-ignored, never committed.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from finslm.explain.attributions import METHOD_TITLES
from finslm.explain.page import CSS as EXPLAIN_CSS
from finslm.explain.page import LEGEND, sentence_block
from finslm.labels import LABELS
from finslm.pages import esc, fmt

SAMPLES = 4  # explained sentences shown on the page (errors first); the rest are in explain/
FAITHFULNESS = ("comprehensiveness", "sufficiency", "loo_spearman")

CSS = (
    EXPLAIN_CSS
    + """
.missing { margin:8px 0; padding:10px 14px; background:#fff7e0; border:1px solid #f1d98a;
           border-radius:8px; font-size:14px; }
.model { border-top:1px solid var(--line); padding-top:8px; margin-top:14px; }
.model:first-of-type { border-top:none; margin-top:0; }
table.cm td.num { min-width:64px; }
table.cm th.corner { font-weight:400; color:var(--muted); font-size:12px; }
.bar { display:flex; height:12px; width:220px; border-radius:3px; overflow:hidden; }
.bar span { display:block; height:100%; }
.muted { color:var(--muted); }
td code { white-space:nowrap; }
"""
)

# Colours of the class-balance bars (negative, neutral, positive; others grey).
CLASS_COLOURS = {"negative": "#d6456b", "neutral": "#9aa3b2", "positive": "#2f9e5b"}


class Missing(Exception):
    """An input a section needs is absent or unreadable; the message says which and what to run."""


@dataclass(frozen=True)
class ReportInputs:
    """Where the page reads from (relative to the repo root, as in ``dvc.yaml``)."""

    params: Path = Path("params.yaml")
    data: Path = Path("metrics/data.json")
    benchmark: Path = Path("metrics/benchmark.json")
    confusion: Path = Path("plots/confusion")  # <model>/test.csv
    train: Path = Path("plots/train")  # <model>/ DVCLive folder (plots/metrics/**/*.tsv)
    explain: Path = Path("metrics/explain.json")
    attributions: Path = Path("reports/explain/attributions.json")

    @property
    def explain_page(self) -> Path:
        return self.attributions.parent / "index.html"


@dataclass
class Section:
    id: str
    title: str
    body: str
    missing: list[str]


def _missing_box(message: str) -> str:
    return f'<div class="missing"><strong>Missing:</strong> {esc(message)}</div>'


def _read_json(path: Path, stage: str) -> Any:
    if not path.is_file():
        raise Missing(f"{path} does not exist (written by `dvc repro {stage}`)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Missing(f"{path} is unreadable ({exc}); rerun `dvc repro {stage}`") from exc


def _svg_uri(fig) -> str:
    """A matplotlib figure as an SVG data URI (text kept as text, no timestamp: reproducible)."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue().encode()).decode()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "finslm", "font.size": 9})
    return plt


# Params: which models the pipeline trains (to say which outputs are missing).


def _ner_models(params_path: Path) -> set[str]:
    """Names under params ``ner.models`` (empty when absent or unreadable)."""
    try:
        raw = yaml.safe_load(params_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return set()
    ner = raw.get("ner") if isinstance(raw, Mapping) else None
    models = ner.get("models") if isinstance(ner, Mapping) else None
    return {str(name) for name in models} if isinstance(models, Mapping) else set()


def expected_models(params_path: Path) -> dict[str, str]:
    """``{model: kind}`` from params ``models`` ({} when params.yaml is absent or unreadable)."""
    try:
        raw = yaml.safe_load(params_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    models = raw.get("models") or {}
    if not isinstance(models, Mapping):
        return {}
    return {
        str(name): str((cfg or {}).get("kind", "transformer")) if isinstance(cfg, Mapping) else "?"
        for name, cfg in models.items()
    }


# Data.


def data_section(path: Path) -> str:
    d = _read_json(path, "prepare")
    dropped = d.get("dropped", {})
    repaired = d.get("repaired", {})
    cards = [
        ("rows read", d["rows_in"]),
        ("rows kept", d["rows_out"]),
        ("rejected", sum(dropped.values())),
        ("repaired", sum(repaired.values())),
    ]
    card_html = "".join(
        f'<div class="card"><div class="v">{v:,}</div><div class="k">{esc(k)}</div></div>'
        for k, v in cards
    )
    rejects = "".join(
        f'<tr class="{"" if n else "ref"}"><td>{esc(reason.replace("_", " "))}</td>'
        f'<td class="num">{n:,}</td></tr>'
        for reason, n in dropped.items()
    )
    repairs = "".join(
        f'<tr class="{"" if n else "ref"}"><td>{esc(kind)}</td><td class="num">{n:,}</td></tr>'
        for kind, n in repaired.items()
    )
    splits = d.get("splits", {})
    balance = d.get("labels", {})
    labels = list(LABELS) + sorted(
        {lab for counts in balance.values() for lab in counts} - set(LABELS)
    )
    head = "".join(f'<th class="num">{esc(lab)}</th>' for lab in labels)
    rows = []
    total = sum(splits.values()) or 1
    for split, n in splits.items():
        counts = balance.get(split, {})
        size = sum(counts.values()) or 1
        cells = "".join(
            f'<td class="num">{counts.get(lab, 0):,} '
            f'<span class="muted">({counts.get(lab, 0) / size:.0%})</span></td>'
            for lab in labels
        )
        bar = "".join(
            f'<span style="width:{100 * counts.get(lab, 0) / size:.1f}%;'
            f'background:{CLASS_COLOURS.get(lab, "#c7ccd6")}" title="{esc(lab)}"></span>'
            for lab in labels
        )
        rows.append(
            f'<tr><td>{esc(split)}</td><td class="num">{n:,} '
            f'<span class="muted">({n / total:.0%})</span></td>{cells}'
            f'<td><div class="bar">{bar}</div></td></tr>'
        )
    return (
        f'<div class="cards">{card_html}</div><div class="row">'
        "<div><h3>Splits and class balance</h3><table><thead><tr><th>split</th>"
        f'<th class="num">sentences</th>{head}<th>balance</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
        '<div><h3>Rejected, by reason</h3><table><thead><tr><th>reason</th><th class="num">'
        f"rows</th></tr></thead><tbody>{rejects}</tbody></table></div>"
        '<div><h3>Repaired</h3><table><thead><tr><th>repair</th><th class="num">rows</th>'
        f"</tr></thead><tbody>{repairs}</tbody></table></div></div>"
        f'<p class="note">From <code>{esc(path)}</code>. Rejected rows, with their source line, '
        "are in <code>data/prepared/rejects.csv</code>.</p>"
    )


# Benchmark.


def _inline_md(text: str) -> str:
    """Markdown inline code (`x`) to <code>; everything else escaped."""
    parts = text.split("`")
    return "".join(esc(p) if i % 2 == 0 else f"<code>{esc(p)}</code>" for i, p in enumerate(parts))


def markdown_table_html(markdown: str) -> str:
    """:func:`finslm.bench.markdown_table`'s output (a pipe table, then notes) as HTML."""
    lines = markdown.strip().splitlines()
    table = [line for line in lines if line.startswith("|")]
    notes = [line for line in lines if line.strip() and not line.startswith("|")]
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table]
    header, body = cells[0], cells[2:]
    num = [i > 0 for i in range(len(header))]
    th = "".join(
        f'<th class="{"num" if n else ""}">{_inline_md(h)}</th>'
        for h, n in zip(header, num, strict=True)
    )
    rows = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"num" if n else ""}">{_inline_md(c)}</td>'
            for c, n in zip(r, num, strict=True)
        )
        + "</tr>"
        for r in body
    )
    note_html = "".join(f'<p class="note">{_inline_md(n)}</p>' for n in notes)
    return (
        f'<div style="overflow-x:auto"><table><thead><tr>{th}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div>{note_html}"
    )


def pareto_front(xs: Sequence[float], ys: Sequence[float]) -> list[int]:
    """Indices, by increasing x, of the points no other point beats on both (lower x, higher y)."""
    front, best = [], -math.inf
    for i in sorted(range(len(xs)), key=lambda i: (xs[i], -ys[i])):
        if ys[i] > best:
            front.append(i)
            best = ys[i]
    return front


def frontier_svg(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """Accuracy vs batch-1 p50 latency (log x), with the Pareto frontier; an SVG data URI."""
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    names = list(rows)
    xs = [max(float(rows[n]["p50_ms"]), 1e-3) for n in names]
    ys = [float(rows[n]["accuracy"]) for n in names]
    front = pareto_front(xs, ys)
    fig, ax = plt.subplots(figsize=(8.0, 4.0))
    ax.step([xs[i] for i in front], [ys[i] for i in front], where="post", linestyle="--",
            color="#3454d1", alpha=0.5, label="frontier")  # fmt: skip
    # One marker per variant, named in the legend: labels beside the points collide when two
    # variants are close (an INT8 graph and its fine-tuned copy), and a label can sit by the
    # wrong point. Frontier points are ringed.
    colours = plt.get_cmap("tab10")
    for i, name in enumerate(names):
        on_front = i in front
        ax.scatter(xs[i], ys[i], color=colours(i % 10), zorder=3, s=36,
                   edgecolors="black" if on_front else "none", linewidths=1.2,
                   label=f"{name} (frontier)" if on_front else name)  # fmt: skip
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.2, y=0.12)
    ax.set_xlabel("p50 latency at batch 1 (ms, log scale)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False)
    fig.tight_layout()
    return _svg_uri(fig)


def benchmark_section(path: Path, models: Mapping[str, str]) -> tuple[str, list[str]]:
    from finslm.bench import markdown_table

    metrics = _read_json(path, "benchmark")
    env = metrics.get("env")
    rows = {k: v for k, v in metrics.items() if k != "env"}
    if not rows or env is None:
        raise Missing(f"{path} has no variants or no env; rerun `dvc repro benchmark`")
    table = markdown_table_html(markdown_table({"variants": rows, "env": env}))
    plot = (
        f'<img class="plot" src="{frontier_svg(rows)}" '
        'alt="Test accuracy against batch-1 p50 latency, one point per variant">'
    )
    missing = []
    benchmarked = {}
    for name in rows:
        model, _, backend = name.rpartition("/")
        benchmarked.setdefault(model, []).append(backend)
    for model, kind in models.items():
        backends = benchmarked.get(model, [])
        if not backends:
            missing.append(f"{model}: not benchmarked (list it in params benchmark.variants)")
        elif kind == "transformer" and not any(b.startswith("onnx-") for b in backends):
            missing.append(
                f"{model}: no ONNX variant benchmarked (not exported? list it in params "
                f"export.models and add {model}/onnx-int8 to benchmark.variants)"
            )
    body = (
        f'<div class="row"><div class="col" style="max-width:none">{table}</div></div>'
        "<h3>Accuracy vs latency</h3>"
        f"<div>{plot}</div>"
        '<p class="note">Ringed: on the Pareto frontier (no other variant is both faster and more '
        "accurate). The table is also in <code>reports/benchmark.md</code> and "
        "<code>.csv</code>.</p>" + "".join(_missing_box(m) for m in missing)
    )
    return body, missing


# Per model: confusion matrix (test) and training curves.


def read_confusion(path: Path) -> list[tuple[str, str]]:
    """(actual, predicted) pairs from an evaluate stage's ``plots/confusion/<m>/<split>.csv``."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [(row["actual"], row["predicted"]) for row in csv.DictReader(fh)]


def confusion_table(pairs: Sequence[tuple[str, str]]) -> str:
    """Rows: actual class; columns: predicted; cell shade = share of the actual class."""
    seen = {a for a, _ in pairs} | {p for _, p in pairs}
    labels = [lab for lab in LABELS if lab in seen] + sorted(seen - set(LABELS))
    counts = {(a, p): 0 for a in labels for p in labels}
    for a, p in pairs:
        counts[a, p] += 1
    correct = sum(counts[lab, lab] for lab in labels)
    head = "".join(f'<th class="num">{esc(lab)}</th>' for lab in labels)
    rows = []
    for a in labels:
        total = sum(counts[a, p] for p in labels) or 1
        cells = "".join(
            f'<td class="num" style="background:rgba({"52,84,209" if a == p else "214,69,107"},'
            f'{0.75 * counts[a, p] / total:.2f})" title="{esc(a)} → {esc(p)}: '
            f'{counts[a, p] / total:.0%} of {esc(a)}">{counts[a, p]}</td>'
            for p in labels
        )
        rows.append(f"<tr><th>{esc(a)}</th>{cells}</tr>")
    acc = correct / len(pairs) if pairs else float("nan")
    return (
        '<table class="cm"><thead><tr><th class="corner">actual ↓ predicted →</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<p class="note">{len(pairs):,} test sentences, accuracy {fmt(acc)}. Shade: share of '
        "the actual class (blue: correct, red: confused).</p>"
    )


def read_curves(folder: Path) -> dict[str, list[tuple[float, float]]]:
    """``{"val/macro_f1": [(step, value), ...], ...}`` from a DVCLive folder's TSVs."""
    curves = {}
    for tsv in sorted(folder.rglob("*.tsv")):
        rel = tsv.relative_to(folder).with_suffix("").as_posix()
        name = rel.removeprefix("plots/metrics/")
        with open(tsv, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh, delimiter="\t")
            header = next(reader, None)
            if not header or "step" not in header:
                continue
            s = header.index("step")
            v = 1 if s == 0 else 0
            points = [(float(r[s]), float(r[v])) for r in reader if len(r) > max(s, v)]
        if points:
            curves[name] = points
    return curves


def curves_svg(curves: Mapping[str, Sequence[tuple[float, float]]]) -> str:
    """Losses on the left, the other metrics on the right, by epoch; best val macro-F1 marked."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    losses = {k: v for k, v in curves.items() if k.rsplit("/", 1)[-1] == "loss"}
    scores = {k: v for k, v in curves.items() if k not in losses}
    panels = [(t, c) for t, c in (("loss", losses), ("score", scores)) if c]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 2.8), squeeze=False)
    best = curves.get("val/macro_f1")
    best_epoch = max(best, key=lambda p: p[1])[0] + 1 if best else None
    for ax, (title, group) in zip(axes[0], panels, strict=True):
        for name, points in group.items():
            ax.plot([s + 1 for s, _ in points], [v for _, v in points], marker="o",
                    markersize=3, label=name)  # fmt: skip
        if best_epoch is not None:
            ax.axvline(best_epoch, color="#5b6474", linestyle=":", linewidth=1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _svg_uri(fig)


def model_block(model: str, kind: str, inputs: ReportInputs) -> tuple[str, list[str]]:
    missing = []
    cm_path = inputs.confusion / model / "test.csv"
    try:
        if not cm_path.is_file():
            raise Missing(f"{cm_path} does not exist (written by `dvc repro evaluate@{model}`)")
        pairs = read_confusion(cm_path)
        if not pairs:
            raise Missing(f"{cm_path} has no rows; rerun `dvc repro evaluate@{model}`")
        cm = confusion_table(pairs)
    except (Missing, OSError, KeyError, ValueError) as exc:
        missing.append(str(exc) if isinstance(exc, Missing) else f"{cm_path}: unreadable ({exc})")
        cm = _missing_box(missing[-1])
    folder = inputs.train / model
    try:
        curves = read_curves(folder) if folder.is_dir() else {}
    except (OSError, ValueError) as exc:
        curves = {}
        missing.append(f"{folder}: unreadable curves ({exc})")
    if curves:
        train = (
            f'<img class="plot" src="{curves_svg(curves)}" '
            f'alt="Training curves of {esc(model)} per epoch">'
            '<p class="note">Dotted line: the epoch with the best validation macro-F1 (the one '
            "kept).</p>"
        )
    elif kind == "tfidf":
        train = '<p class="note">TF-IDF fits in one step: no per-epoch curves.</p>'
    else:
        message = (
            f"no training curves in {folder}/ (written by `dvc repro train@{model}`)"
            if kind != "?"
            else f"no training curves in {folder}/"
        )
        missing.append(message)
        train = _missing_box(message)
    body = (
        f'<div class="model"><h3>{esc(model)} <span class="muted">({esc(kind)})</span></h3>'
        '<div class="row"><div><div class="name muted">Confusion matrix (test)</div>'
        f'{cm}</div><div><div class="name muted">Training curves</div>{train}</div></div></div>'
    )
    return body, missing


def models_section(inputs: ReportInputs, models: Mapping[str, str]) -> tuple[str, list[str]]:
    found = {
        p.name
        for folder in (inputs.confusion, inputs.train)
        if folder.is_dir()
        for p in folder.iterdir()
        if p.is_dir()
    }
    # Token classifiers (params ner.models) have their curves under plots/train too; the NER
    # section shows them, not this sentiment one.
    found -= _ner_models(inputs.params)
    everything = dict(models) | {m: "?" for m in sorted(found - set(models))}
    if not everything:
        raise Missing(
            f"no models: none in params models and nothing in {inputs.confusion}/ or "
            f"{inputs.train}/ (run `dvc repro evaluate`)"
        )
    blocks, missing = [], []
    for model, kind in everything.items():
        block, miss = model_block(model, kind, inputs)
        blocks.append(block)
        missing += miss
    return "".join(blocks), missing


# Explanations.


def faithfulness_table(metrics: Mapping[str, Any], best: str | None) -> str:
    methods = [m for m, v in metrics.items() if isinstance(v, Mapping) and m != "random"]
    if "random" in metrics:
        methods.append("random")
    rows = []
    for m in methods:
        f = metrics[m]
        cls = "best" if m == best else ("ref" if m == "random" else "")
        cells = "".join(f'<td class="num">{fmt(f.get(k))}</td>' for k in FAITHFULNESS)
        rows.append(
            f'<tr class="{cls}"><td>{esc(METHOD_TITLES.get(m, m))}</td>{cells}'
            f'<td class="num">{fmt(f.get("seconds_per_sentence"), 3)}</td></tr>'
        )
    return (
        '<table><thead><tr><th>method</th><th class="num">comprehensiveness ↑</th>'
        '<th class="num">sufficiency ↓</th><th class="num">LOO Spearman ↑</th>'
        f'<th class="num">s / sentence</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def pick_samples(records: Sequence[Mapping[str, Any]], n: int = SAMPLES) -> list[Mapping]:
    """Up to ``n`` explained sentences: errors and correct ones alternating, errors first."""
    errors = [r for r in records if r.get("label") != r.get("predicted")]
    right = [r for r in records if r.get("label") == r.get("predicted")]
    out = []
    while len(out) < n and (errors or right):
        for pool in (errors, right):
            if pool and len(out) < n:
                out.append(pool.pop(0))
    return out


def explain_section(inputs: ReportInputs, out: Path) -> tuple[str, list[str]]:
    metrics = _read_json(inputs.explain, "explain")
    missing = []
    try:
        attributions = _read_json(inputs.attributions, "explain")
        boxes = ""
    except Missing as exc:
        attributions = None
        missing.append(str(exc))
        boxes = _missing_box(str(exc))
    best = attributions.get("most_faithful") if attributions else None
    model = attributions.get("model", "") if attributions else ""
    n = metrics.get("n_sentences")
    verdict = (
        f'<p class="verdict">Most faithful for <code>{esc(model)}</code>: <strong>'
        f"{esc(METHOD_TITLES.get(best, best))}</strong> ({esc(n)} validation sentences).</p>"
        if best
        else ""
    )
    page = inputs.explain_page
    if page.is_file():
        href = Path(os.path.relpath(page, out.parent)).as_posix()
        link = (
            f"<p>The full report — error analysis, calibration, every explained sentence per "
            f'method: <a href="{esc(href)}">{esc(page)}</a>.</p>'
        )
    else:
        missing.append(f"{page} does not exist (written by `dvc repro explain`)")
        link = _missing_box(missing[-1])
    samples = ""
    if attributions:
        records = pick_samples(attributions.get("sentences", []))
        methods = [best] if best else list(attributions.get("methods", []))[:1]
        blocks = "".join(sentence_block(r, methods) for r in records)
        title = esc(METHOD_TITLES.get(methods[0], methods[0])) if methods else ""
        samples = (
            f"<h3>Samples ({len(records)} validation sentences, coloured by {title})</h3>"
            f"{LEGEND}{blocks}"
        )
    body = (
        f"{verdict}{faithfulness_table(metrics, best)}"
        '<p class="note">Comprehensiveness: drop in p(explained class) when the top-ranked words '
        "are deleted; sufficiency: drop when only they are kept; LOO Spearman: rank correlation "
        "with deleting each word alone. Random: the floor every method should clear. From "
        f"<code>{esc(inputs.explain)}</code>; {fmt(metrics.get('seconds_total'), 1)} s in all.</p>"
        f"{link}{boxes}{samples}"
    )
    return body, missing


# The page.


def _section(sid: str, title: str, build: Callable[[], Any]) -> Section:
    """Run one section's builder; a missing or malformed input becomes a box, not a crash."""
    try:
        result = build()
    except Missing as exc:
        return Section(sid, title, _missing_box(str(exc)), [str(exc)])
    except (KeyError, TypeError, ValueError, OSError) as exc:
        message = f"could not build this section: {type(exc).__name__}: {exc}"
        return Section(sid, title, _missing_box(message), [f"{title}: {message}"])
    body, missing = result if isinstance(result, tuple) else (result, [])
    return Section(sid, title, body, list(missing))


def build_sections(inputs: ReportInputs, out: Path) -> list[Section]:
    models = expected_models(inputs.params)
    return [
        _section("data", "Data", lambda: data_section(inputs.data)),
        _section("benchmark", "Benchmark (test split)", lambda: benchmark_section(inputs.benchmark, models)),
        _section("models", "Models", lambda: models_section(inputs, models)),
        _section("explanations", "Explanations (validation split)", lambda: explain_section(inputs, out)),
        _section("ner", "Token classification (NER)", lambda: ner_section(inputs.params)),
    ]  # fmt: skip


def ner_section(params: Path) -> tuple[str, list[str]]:
    from finslm.ner.report import section

    return section(params, params.parent)


def provenance(inputs: ReportInputs) -> str:
    """One line on what the numbers are from: the data, the recipe in force, the test split's
    size (what one sentence is worth) and the benchmark's machine; '' when params are unreadable."""
    from finslm.config import SAMPLE_SOURCE, ConfigError, profile_in_force, read_params

    try:
        raw = read_params(inputs.params, "full")
    except ConfigError:
        return ""
    data = raw.get("data") or {}
    source = str(data.get("source", SAMPLE_SOURCE))
    sample = source.removeprefix("./") == SAMPLE_SOURCE
    parts = [f"data: <code>{esc(source)}</code>" + (" (the embedded sample)" if sample else "")]
    if profile_in_force(raw) == "quick":
        parts.append(
            "the quick profile (fewer epochs and seeds than the full recipe in params.yaml): "
            "these numbers check the pipeline; the models' real figures are in docs/results.md"
        )
    with contextlib.suppress(Missing, KeyError, TypeError, ZeroDivisionError):
        n = int(_read_json(inputs.data, "prepare")["splits"]["test"])
        parts.append(f"test split {n:,} sentences (one sentence = {100 / n:.2f} pt)")
    with contextlib.suppress(Missing, KeyError, TypeError):
        env = _read_json(inputs.benchmark, "benchmark")["env"]
        parts.append(f"benchmark on {esc(env['cpu'])}, {env['threads']} thread(s)")
    return " · ".join(parts)


def render_page(
    inputs: ReportInputs, out: Path = Path("reports/index.html")
) -> tuple[str, list[str]]:
    """``(html, missing)``: the page, and one line per missing or unreadable input."""
    sections = build_sections(inputs, out)
    missing = [m for s in sections for m in s.missing]
    nav = "".join(f'<a href="#{s.id}">{esc(s.title.split(" (")[0])}</a>' for s in sections)
    body = "".join(
        f'<section id="{s.id}"><h2>{esc(s.title)}</h2>{s.body}</section>' for s in sections
    )
    status = (
        f"{len(missing)} input(s) missing: see the yellow boxes"
        if missing
        else "every input present"
    )
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>finslm report</title><style>{CSS}</style></head><body>"
        '<header><h1>finslm report</h1><p class="meta">Data, benchmark, models and '
        f"explanations from the last <code>dvc repro</code> · {esc(status)}</p>"
        f'<p class="meta">{provenance(inputs)}</p>'
        f"<nav>{nav}</nav></header><main>{body}</main></body></html>\n"
    )
    return page, missing
