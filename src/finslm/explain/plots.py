"""The faithfulness curves and the reliability diagram, as PNG files (DVC image plots).

>>> faithfulness_plot({"shap": {"comprehensiveness": [...], "sufficiency": [...]}}, (0.1, 0.2, 0.5), path)
>>> reliability_plot(calibration(confidence, correct), path)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

COLOURS = {
    "shap": "#d62728",
    "lime": "#2ca02c",
    "ig": "#1f77b4",
    "attention": "#9467bd",
    "random": "#7f7f7f",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def faithfulness_plot(
    curves: Mapping[str, Mapping[str, Sequence[float]]],
    fractions: Sequence[float],
    path: Path,
    titles: Mapping[str, str] | None = None,
) -> Path:
    """Comprehensiveness (higher is better) and sufficiency (lower is better) against the share
    of top-ranked words, one line per method; their means are the AOPC numbers in the table."""
    plt = _pyplot()
    titles = titles or {}
    x = [100 * k for k in fractions]
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6), constrained_layout=True)
    panels = (
        ("comprehensiveness", "Comprehensiveness ↑\np(target) drop when top words are deleted"),
        ("sufficiency", "Sufficiency ↓\np(target) drop when only top words are kept"),
    )
    for ax, (key, title) in zip(axes, panels, strict=True):
        for method, curve in curves.items():
            ax.plot(
                x,
                curve[key],
                marker="o",
                label=titles.get(method, method),
                color=COLOURS.get(method),
                linestyle="--" if method == "random" else "-",
            )
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("top words (% of the sentence)")
        ax.set_xticks(x)
        ax.axhline(0, color="#cccccc", linewidth=0.8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Δ p(explained class)")
    axes[1].legend(fontsize=8, loc="best")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def reliability_plot(calib: Mapping[str, Any], path: Path, title: str = "") -> Path:
    """Accuracy against confidence per bin (a perfectly calibrated model sits on the diagonal),
    with the bin counts underneath."""
    plt = _pyplot()
    bins = calib["bins"]
    centres = [(b["lower"] + b["upper"]) / 2 for b in bins]
    width = bins[0]["upper"] - bins[0]["lower"]
    fig, (ax, axn) = plt.subplots(
        2, 1, figsize=(4.8, 5.0), sharex=True, gridspec_kw={"height_ratios": [3, 1]},
        constrained_layout=True,
    )  # fmt: skip
    filled = [(c, b) for c, b in zip(centres, bins, strict=True) if b["count"]]
    ax.bar(
        [c for c, _ in filled],
        [b["accuracy"] for _, b in filled],
        width=width * 0.9,
        color="#1f77b4",
        alpha=0.8,
        label="accuracy",
    )
    ax.scatter(
        [c for c, _ in filled],
        [b["confidence"] for _, b in filled],
        color="#d62728",
        marker="_",
        s=300,
        zorder=3,
        label="mean confidence",
    )
    ax.plot(
        [0, 1], [0, 1], color="#555555", linestyle="--", linewidth=1, label="perfect calibration"
    )
    ax.set_ylim(0, 1)
    ax.set_xlim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(title or f"Reliability (validation) — ECE {calib['ece']:.3f}", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    axn.bar(centres, [b["count"] for b in bins], width=width * 0.9, color="#7f7f7f")
    axn.set_ylabel("sentences")
    axn.set_xlabel("confidence (max class probability)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
