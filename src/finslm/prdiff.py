"""What a change did to the pipeline, as one markdown report between two git revisions.

    finslm diff-report main            # main against the workspace -> reports/diff.md
    finslm diff-report main HEAD       # two commits
    make diff-report A=main B=HEAD

The pull-request workflow (.github/workflows/pr-metrics.yml) posts the same report with CML.
Sections: headline metrics (test accuracy and macro-F1 per model, batch-1 p50 latency and size
per benchmark variant, from ``dvc metrics diff --all --json``), the params that changed (``dvc
params diff --md``), every changed metric (``dvc metrics diff --md``, folded) and the plots
(``dvc plots diff``: a page with every plot of both revisions, and the image plots that differ
side by side). Links are relative to the report, so ``cml comment create`` uploads them.

:func:`render_report` is pure (unit-tested without dvc); :func:`write_report` runs dvc.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finslm.errors import FinslmError

WORKSPACE = "workspace"  # what dvc calls the working tree in its diffs

# (key, label) of the headline rows: per model from metrics/eval/, per variant from the benchmark.
EVAL_HEADLINE = (("test.accuracy", "test accuracy"), ("test.macro_f1", "test macro-F1"))
BENCH_HEADLINE = (("p50_ms", "p50 latency, batch 1 (ms)"), ("size_mb", "size (MB)"))


class DiffError(FinslmError, RuntimeError):
    """A dvc command failed; the message names it and ends with dvc's own error."""


@dataclass
class ImageDiff:
    """One image plot (a PNG the pipeline writes): its file in each revision, None if absent."""

    name: str
    a: str | None
    b: str | None


@dataclass
class DiffInputs:
    """Everything the report shows; paths are relative to the report's folder."""

    a_rev: str
    b_rev: str  # a revision, or WORKSPACE
    params_md: str = ""
    metrics_md: str = ""
    metrics: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    plots_page: str | None = None
    images: Sequence[ImageDiff] = ()


def headline_rows(metrics: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[tuple]:
    """(label, old, new, diff) for the numbers that matter, from ``metrics diff --all --json``.

    Test accuracy and macro-F1 from ``metrics/eval/<model>.json``; p50 latency and size of each
    variant in ``metrics/benchmark.json``, sorted by name. Keys in neither revision are skipped.
    """
    rows = []
    for path, entries in sorted(metrics.items()):
        posix = Path(path).as_posix()
        if posix.startswith("metrics/eval/"):
            model = Path(path).stem
            for key, label in EVAL_HEADLINE:
                if key in entries:
                    rows.append((f"{model}: {label}", *_triple(entries[key])))
        elif posix == "metrics/benchmark.json":
            for variant in sorted({k.rsplit(".", 1)[0] for k in entries if "." in k}):
                for suffix, label in BENCH_HEADLINE:
                    key = f"{variant}.{suffix}"
                    if key in entries:
                        rows.append((f"{variant}: {label}", *_triple(entries[key])))
    return rows


def _triple(entry: Mapping[str, Any]) -> tuple:
    old, new = entry.get("old"), entry.get("new")
    diff = entry.get("diff")
    if diff is None and _is_number(old) and _is_number(new):
        diff = new - old
    return old, new, diff


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fmt(value: Any, signed: bool = False) -> str:
    if value is None:
        return "–"
    if _is_number(value):
        return f"{value:+.4g}" if signed else f"{value:.4g}"
    return str(value)


def changed_count(metrics: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> int:
    """How many metrics differ between the two revisions (added and removed ones included)."""
    return sum(
        1
        for entries in metrics.values()
        for entry in entries.values()
        if entry.get("old") != entry.get("new")
    )


def render_report(inputs: DiffInputs) -> str:
    """The markdown report (GitHub-flavoured: tables, <details>)."""
    a, b = f"`{inputs.a_rev}`", f"`{inputs.b_rev}`"
    lines = [f"## Pipeline diff: {a} → {b}", "", "### Headline metrics", ""]
    rows = headline_rows(inputs.metrics)
    if rows:
        lines += [f"| metric | {a} | {b} | change |", "|---|---:|---:|---:|"]
        for label, old, new, diff in rows:
            if old == new:
                change = "–"
            elif old is None or new is None:
                change = "new" if old is None else "removed"
            else:
                change = _fmt(diff, signed=True) if diff is not None else "changed"
            cells = [_fmt(old), _fmt(new), change]
            if change != "–":
                cells = [f"**{c}**" for c in cells]
            lines.append(f"| {label} | {' | '.join(cells)} |")
    else:
        lines.append("No evaluation or benchmark metrics in either revision.")

    lines += ["", "### Params", ""]
    lines.append(inputs.params_md.strip() or "No param changed.")

    lines += ["", "### Metrics", ""]
    n_changed = changed_count(inputs.metrics)
    if inputs.metrics_md.strip() and n_changed:
        lines += [
            f"<details><summary>{n_changed} changed metric{'s' if n_changed != 1 else ''} "
            "(<code>dvc metrics diff</code>)</summary>",
            "",
            inputs.metrics_md.strip(),
            "",
            "</details>",
        ]
    else:
        lines.append("No metric changed.")

    if inputs.plots_page is not None or inputs.images:
        lines += ["", "### Plots", ""]
        if inputs.plots_page is not None:
            lines.append(f"[Every plot, {a} and {b} overlaid (HTML)]({inputs.plots_page})")
        if inputs.images:
            lines += ["", f"| image plot that changed | {a} | {b} |", "|---|---|---|"]
            for image in inputs.images:
                cells = [
                    f"![{rev}]({path})" if path else "–"
                    for rev, path in ((inputs.a_rev, image.a), (inputs.b_rev, image.b))
                ]
                lines.append(f"| `{image.name}` | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def _dvc(args: Sequence[str], repo: Path) -> str:
    """Run ``dvc <args>`` in `repo` with this interpreter's dvc; its stdout."""
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "DVC_NO_ANALYTICS": "1"},
    )
    if proc.returncode != 0:
        raise DiffError(f"dvc {' '.join(args)} failed in {repo}: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def image_diffs(
    plots_json: Mapping[str, Any], a_label: str, b_label: str, repo: Path, base: Path
) -> list[ImageDiff]:
    """Image plots whose file differs between the revisions, paths relative to `base`."""
    out = []
    for name, entries in plots_json.get("data", {}).items():
        by_rev: dict[str, Path] = {}
        for entry in entries:
            if entry.get("type") == "image" and entry.get("url"):
                for rev in entry.get("revisions", []):
                    by_rev[rev] = repo / entry["url"]  # relative to repo, or absolute
        if not by_rev:
            continue
        a, b = by_rev.get(a_label), by_rev.get(b_label)
        if a is not None and b is not None and a.read_bytes() == b.read_bytes():
            continue
        rel = [Path(os.path.relpath(p, base)).as_posix() if p else None for p in (a, b)]
        out.append(ImageDiff(name, *rel))
    return out


def collect(
    a_rev: str, b_rev: str | None = None, repo: Path = Path("."), out: Path | None = None
) -> DiffInputs:
    """Run the dvc diffs in `repo`. With `out` (the report's path) also render the plots diff
    into ``<out stem>-plots/`` beside it; without, skip plots."""
    revs = [a_rev] if b_rev is None else [a_rev, b_rev]
    inputs = DiffInputs(a_rev, b_rev or WORKSPACE)
    inputs.params_md = _dvc(["params", "diff", *revs, "--md"], repo)
    inputs.metrics_md = _dvc(["metrics", "diff", *revs, "--md"], repo)
    inputs.metrics = json.loads(_dvc(["metrics", "diff", *revs, "--all", "--json"], repo) or "{}")
    if out is not None:
        plots_dir = out.parent / f"{out.stem}-plots"
        shutil.rmtree(repo / plots_dir, ignore_errors=True)  # no stale images from a last run
        _dvc(["plots", "diff", *revs, "-o", str(plots_dir)], repo)
        plots_json = json.loads(
            _dvc(["plots", "diff", *revs, "--json", "-o", str(plots_dir / "static")], repo)
        )
        base = (repo / out).parent
        page = repo / plots_dir / "index.html"
        if page.is_file():  # dvc writes none when neither revision has a plot
            inputs.plots_page = Path(os.path.relpath(page, base)).as_posix()
        inputs.images = image_diffs(plots_json, inputs.a_rev, inputs.b_rev, repo, base)
    return inputs


def write_report(
    a_rev: str,
    b_rev: str | None = None,
    repo: Path = Path("."),
    out: Path = Path("reports/diff.md"),
    plots: bool = True,
) -> Path:
    """Write the markdown report comparing `a_rev` with `b_rev` (None: the workspace)."""
    target = out if out.is_absolute() else repo / out
    if target.is_dir():
        raise DiffError(f"--out {out}: a folder; give the report's file name, e.g. {out}/diff.md")
    try:  # before the revisions are read: a bad --out is said at once
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DiffError(f"--out {out}: cannot create its folder ({exc.strerror})") from None
    inputs = collect(a_rev, b_rev, repo, out if plots else None)
    try:
        target.write_text(render_report(inputs), encoding="utf-8")
    except OSError as exc:
        raise DiffError(f"--out {out}: cannot write ({exc.strerror})") from None
    return target
