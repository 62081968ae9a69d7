"""The size / accuracy / latency frontier of a `dvc exp` sweep over pruning amounts.

    dvc exp run --queue -S 'prune.layers_keep=choice(3,4,5)' -S 'prune.ffn_keep=choice(0.25,0.5,1.0)'
    dvc queue start -j 1 && dvc queue status     # wait until every experiment has run
    python -m finslm.prune.frontier               # plots/prune_frontier.png, reports/prune_sweep.md

Reads `dvc exp show --csv` (every experiment in the workspace), one point per experiment that
has prune metrics. Accuracy is the benchmark's test accuracy of the pruned INT8 model (reported,
never used to choose), validation accuracy from the prune stage beside it.
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

VARIANT = "minilm-pruned/onnx-int8"
COLUMNS = {  # what: (metrics file, key in it)
    "layers": ("params.yaml", "prune.layers_keep"),
    "ffn_keep": ("params.yaml", "prune.ffn_keep"),
    "encoder_params": ("metrics/prune.json", "encoder_params"),
    "removed": ("metrics/prune.json", "encoder_params_removed"),
    "val_accuracy": ("metrics/prune.json", "val.accuracy"),
}


def _column(header: list[str], file: str, key: str) -> str | None:
    # dvc names a column "key" when only one file has it, "file:key" otherwise.
    for name in (f"{file}:{key}", key):
        if name in header:
            return name
    return None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "!", "-") else None
    except ValueError:
        return None


def sweep_points(exp_csv: str, variant: str = VARIANT) -> list[dict[str, Any]]:
    """One dict per experiment row of ``dvc exp show --csv`` that has prune metrics."""
    reader = csv.DictReader(io.StringIO(exp_csv))
    header = reader.fieldnames or []
    wanted = dict(COLUMNS)
    for what in ("accuracy", "p50_ms", "size_mb"):
        wanted[f"test_{what}" if what == "accuracy" else what] = (
            "metrics/benchmark.json",
            f"{variant}.{what}",
        )
    cols = {what: _column(header, *where) for what, where in wanted.items()}
    if cols["encoder_params"] is None:
        raise ValueError("dvc exp show has no prune metrics: run the sweep first (see --help)")
    points, seen = [], set()
    for row in reader:
        name = row.get("Experiment") or row.get("rev") or ""
        point = {what: _number(row.get(col)) if col else None for what, col in cols.items()}
        key = tuple(point.values())
        if point["encoder_params"] is None or key in seen:
            continue  # no metrics (a queued or failed run), or the workspace repeating one
        seen.add(key)
        points.append({"name": name, **point})
    return points


def markdown(points: list[dict[str, Any]]) -> str:
    head = "| experiment | layers | FFN kept | encoder params | removed | val acc | test acc (INT8) | p50 ms (INT8) | MB |"
    lines = [head, "|" + "---|" * 9]
    fmt = {"removed": "{:.1%}", "val_accuracy": "{:.3f}", "test_accuracy": "{:.3f}", "p50_ms": "{:.2f}", "size_mb": "{:.1f}"}  # fmt: skip
    for p in sorted(points, key=lambda p: -(p["encoder_params"] or 0)):
        cells = [p["name"]]
        for what in ("layers", "ffn_keep", "encoder_params", "removed", "val_accuracy",
                     "test_accuracy", "p50_ms", "size_mb"):  # fmt: skip
            v = p[what]
            if v is None:
                cells.append("–")
            elif what in fmt:
                cells.append(fmt[what].format(v))
            else:
                cells.append(f"{v:,.0f}" if what == "encoder_params" else f"{v:g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(points: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, x, xlabel in (
        (axes[0], "encoder_params", "encoder parameters (M)"),
        (axes[1], "p50_ms", f"{VARIANT} p50 latency, batch 1 (ms)"),
    ):
        for p in points:
            xv = p[x] / 1e6 if x == "encoder_params" and p[x] else p[x]
            for y, marker in (("test_accuracy", "o"), ("val_accuracy", "x")):
                if xv is not None and p[y] is not None:
                    ax.scatter(xv, p[y], marker=marker, color="C0" if y[0] == "t" else "C1")
            if xv is not None and (p["test_accuracy"] or p["val_accuracy"]) is not None:
                label = f"{p['layers']:g}L/{p['ffn_keep']:g}" if p["layers"] else p["name"]
                ax.annotate(label, (xv, p["test_accuracy"] or p["val_accuracy"]), fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy (o test INT8, x validation)")
        ax.grid(alpha=0.3)
    fig.suptitle("Pruning sweep: layers kept / FFN share kept")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--csv", type=Path, help="a saved `dvc exp show --csv` (default: run it)")
    parser.add_argument("--plot", type=Path, default=Path("plots/prune_frontier.png"))
    parser.add_argument("--table", type=Path, default=Path("reports/prune_sweep.md"))
    args = parser.parse_args(argv)
    if args.csv:
        text = args.csv.read_text(encoding="utf-8")
    else:
        text = subprocess.run(
            [sys.executable, "-m", "dvc", "exp", "show", "--csv", "--all-commits"],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
    points = sweep_points(text)
    plot(points, args.plot)
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.write_text(markdown(points), encoding="utf-8")
    print(markdown(points))
    print(f"{len(points)} experiments -> {args.plot}, {args.table}")


if __name__ == "__main__":
    main()
