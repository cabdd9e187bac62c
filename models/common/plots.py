"""Figures of a run: training curves, per-parameter metrics, top-k curves per group.

Drawn with Matplotlib's Agg backend (no display needed), saved as PNG.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from core.storage import atomic_path
from models.common.metrics import ALL_GROUP, Evaluation

__all__ = [
    "plot_history",
    "plot_per_parameter",
    "plot_top_k_by_group",
    "save_png",
    "top_k_figure",
]


def save_png(fig: Any, out: Path, *, dpi: int = 120) -> Path:
    """Write a figure to ``out`` as PNG, whole or not at all, and close it."""
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return Path(out)


def read_history(path: Path) -> dict[str, list[float]]:
    """Columns of ``history.csv`` as float lists ({} when the file is missing or empty)."""
    path = Path(path)
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    return {
        key: [float(r[key]) if r.get(key) not in (None, "") else float("nan") for r in rows]
        for key in rows[0]
    }


def plot_history(history_csv: Path, out: Path) -> Path | None:
    """Loss, per-parameter top-1 accuracy and index MAE per epoch, training vs validation."""
    history = read_history(history_csv)
    if "epoch" not in history:
        return None
    epochs = history["epoch"]
    panels = [(k, f"val_{k}") for k in ("loss", "top1", "index_mae") if k in history]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    titles = {
        "loss": "loss",
        "top1": "top-1 accuracy (mean over parameters)",
        "index_mae": "class index MAE",
    }
    for ax, (train_key, val_key) in zip(axes[0], panels, strict=True):
        ax.plot(epochs, history[train_key], marker=".", label="training")
        if val_key in history:
            ax.plot(epochs, history[val_key], marker=".", label="validation")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(titles[train_key], fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, out)


def plot_per_parameter(evaluation: Evaluation, out: Path, *, title: str = "") -> Path:
    """Top-1 accuracy and MPR of every parameter (bars), chance levels dashed."""
    names = [p.name for p in evaluation.parameters]
    top1 = [100 * p.top1 for p in evaluation.parameters]
    mpr = [p.mpr for p in evaluation.parameters]
    chance = [100.0 / p.n_levels for p in evaluation.parameters]
    width = max(6.0, 0.42 * len(names) + 2)
    fig, axes = plt.subplots(2, 1, figsize=(width, 6.4), sharex=True)
    x = range(len(names))
    axes[0].bar(x, top1, color="tab:blue")
    xs = list(x)
    axes[0].hlines(
        chance,
        [i - 0.4 for i in xs],
        [i + 0.4 for i in xs],
        colors="k",
        linestyles="--",
        lw=1,
        label="chance",
    )
    axes[0].set_ylabel("top-1 accuracy (%)")
    axes[0].set_ylim(0, 100)
    axes[0].legend(fontsize=8)
    axes[1].bar(x, mpr, color="tab:orange")
    axes[1].axhline(50, color="k", ls="--", lw=1, label="chance")
    axes[1].set_ylabel("MPR")
    axes[1].set_ylim(0, 100)
    axes[1].set_xticks(list(x))
    axes[1].set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.grid(axis="y", alpha=0.3)
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    return save_png(fig, out)


def plot_top_k_by_group(evaluation: Evaluation, out: Path, *, title: str = "") -> Path:
    """Top-k accuracy against k for every parameter group (the paper's Fig. 4), as PNG."""
    fig = top_k_figure(evaluation, title=title)
    return save_png(fig, out)


def top_k_figure(evaluation: Evaluation, *, title: str = "") -> Any:
    """The figure of :func:`plot_top_k_by_group`; the legend sits right of the axes."""
    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    for group, metrics in evaluation.groups.items():
        ks = list(range(1, len(metrics.top_k) + 1))
        ys = [100 * a for a in metrics.top_k]
        if group == ALL_GROUP:
            ax.plot(ks, ys, marker="o", label=group, color="k", lw=2.2)
        else:
            ax.plot(ks, ys, marker="o", label=group)
    ax.set_xlabel("k")
    ax.set_ylabel("top-k accuracy (%)")
    ax.set_ylim(0, 102)  # a curve at 100 % stays clear of the frame
    ax.set_yticks(range(0, 101, 20))
    ax.set_xticks(range(1, 6))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
