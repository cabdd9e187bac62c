"""Figures of sound matching: a sound's and its resynthesis's spectrograms side by side."""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

from generators.storage import atomic_path
from models.matching.metrics import FLOOR_DB, log_magnitude_stft

__all__ = ["plot_spectrograms", "spectrograms_png"]


def plot_spectrograms(
    reference: np.ndarray,
    estimate: np.ndarray,
    *,
    sample_rate: int,
    out: Any,
    title: str = "",
    labels: tuple[str, str] = ("input", "resynthesis"),
    dpi: int = 100,
) -> Any:
    """Side-by-side log-magnitude spectrograms (the metrics' own representation), as PNG.

    Parameters
    ----------
    reference, estimate : np.ndarray [n_samples], float
    sample_rate : int
        Hz, for the axes.
    out : path or binary file object
        Where the PNG goes.
    title : str
        Figure title (e.g. :func:`~models.matching.metrics.format_metrics`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spectrograms = [log_magnitude_stft(x)[0] for x in (reference, estimate)]  # [frames, 257]
    duration_s = len(reference) / sample_rate
    # Fixed margins: constrained layout would cost more than the drawing itself.
    fig = plt.figure(figsize=(10, 3.6))
    top = 0.80 if title else 0.90
    axes = [fig.add_axes((0.07, 0.14, 0.38, top - 0.14))]
    axes.append(fig.add_axes((0.49, 0.14, 0.38, top - 0.14), sharey=axes[0]))
    colorbar_axes = fig.add_axes((0.89, 0.14, 0.015, top - 0.14))
    images = []
    for ax, spec, label in zip(axes, spectrograms, labels, strict=True):
        image = ax.imshow(
            spec.T,
            origin="lower",
            aspect="auto",
            extent=(0.0, duration_s, 0.0, sample_rate / 2000.0),
            vmin=FLOOR_DB,
            vmax=0.0,
            cmap="magma",
            interpolation="nearest",
        )
        images.append(image)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (kHz)")
    axes[1].tick_params(labelleft=False)
    fig.colorbar(images[-1], cax=colorbar_axes, label="dB re full scale")
    if title:
        fig.suptitle(title, fontsize=9, y=0.98)
    try:
        if isinstance(out, str | os.PathLike):  # a file: whole or not at all
            with atomic_path(out) as tmp:
                fig.savefig(tmp, dpi=dpi, format="png")
        else:
            fig.savefig(out, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return out


def spectrograms_png(
    reference: np.ndarray,
    estimate: np.ndarray,
    *,
    sample_rate: int,
    labels: tuple[str, str] = ("input", "resynthesis"),
    dpi: int = 100,
) -> bytes:
    """:func:`plot_spectrograms` as PNG bytes, for embedding."""
    buffer = io.BytesIO()
    plot_spectrograms(
        reference, estimate, sample_rate=sample_rate, out=buffer, labels=labels, dpi=dpi
    )
    return buffer.getvalue()
