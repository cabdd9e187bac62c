"""Figures of sound matching: spectrograms of a sound and of what matches it, side by side.

One panel per sound (the input, the match, the network's guess beside it), on
one colour scale. ``portrait=True`` stacks the panels, for a phone's screen:
side by side at a phone's width, the axis labels would shrink past reading.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.storage import atomic_path
from models.common.markup import plot_text
from models.common.spectral import ABSOLUTE_FLOOR_DB, log_magnitude_stft

__all__ = ["FONT_PT", "plot_spectrograms", "spectrograms_png"]

FONT_PT = 11.0  # axis labels and ticks; titles a point larger
_PANEL_IN = (3.0, 2.6)  # one panel's plotting area, inches (width, height), side by side
_PORTRAIT_IN = (3.6, 2.0)  # the same, stacked (a phone: about 350 pixels for the figure)


def _layout(n: int, *, portrait: bool, title: bool) -> tuple[Any, list[Any], Any]:
    """A figure with ``n`` spectrogram axes and a colour bar, in fixed margins (inches)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top_in = 0.75 if title else 0.35
    if portrait:
        panel_w, panel_h = _PORTRAIT_IN
        left, right, gap, bottom = 0.75, 1.1, 0.55, 0.6
        width, height = left + panel_w + right, top_in + n * panel_h + (n - 1) * gap + bottom
        fig = plt.figure(figsize=(width, height))
        axes: list[Any] = []
        for i in range(n):
            y = bottom + (n - 1 - i) * (panel_h + gap)
            rect = (left / width, y / height, panel_w / width, panel_h / height)
            axes.append(fig.add_axes(rect, sharex=axes[0] if axes else None,
                                     sharey=axes[0] if axes else None))  # fmt: skip
        bar = fig.add_axes(
            ((left + panel_w + 0.15) / width, bottom / height, 0.12 / width, panel_h / height)
        )
        return fig, axes, bar
    panel_w, panel_h = _PANEL_IN
    left, gap, right, bottom = 0.8, 0.45, 1.1, 0.65
    width, height = left + n * panel_w + (n - 1) * gap + right, bottom + panel_h + top_in
    fig = plt.figure(figsize=(width, height))
    axes = []
    for i in range(n):
        x = left + i * (panel_w + gap)
        rect = (x / width, bottom / height, panel_w / width, panel_h / height)
        axes.append(fig.add_axes(rect, sharey=axes[0] if axes else None))
    x_bar = left + n * panel_w + (n - 1) * gap + 0.15
    bar = fig.add_axes((x_bar / width, bottom / height, 0.12 / width, panel_h / height))
    return fig, axes, bar


def plot_spectrograms(
    sounds: Sequence[np.ndarray],
    *,
    labels: Sequence[str],
    sample_rate: int,
    out: Any,
    title: str = "",
    dpi: int = 100,
    portrait: bool = False,
) -> Any:
    """Log-magnitude spectrograms (the metrics' own representation) of sounds, as PNG.

    Parameters
    ----------
    sounds : sequence of np.ndarray [n_samples], float
        The reference first (the input), then what matches it.
    labels : sequence of str
        A title per panel.
    sample_rate : int
        Hz, for the axes.
    out : path or binary file object
        Where the PNG goes.
    title : str
        Figure title (how close the match sounds, say), shown as typed: a ``$``
        in it (or in a label) is a dollar sign.
    dpi : int
    portrait : bool
        Stack the panels (a phone's screen) instead of side by side.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if len(sounds) != len(labels) or not sounds:
        raise ValueError(f"one label per sound: {len(sounds)} sounds, {len(labels)} labels")
    spectrograms = [log_magnitude_stft(x)[0] for x in sounds]  # [frames, 257] each
    duration_s = len(sounds[0]) / sample_rate
    with plt.rc_context({"font.size": FONT_PT, "axes.titlesize": FONT_PT + 1}):
        fig, axes, bar = _layout(len(sounds), portrait=portrait, title=bool(title))
        image = None
        for ax, spec, label in zip(axes, spectrograms, labels, strict=True):
            image = ax.imshow(
                spec.T, origin="lower", aspect="auto",
                extent=(0.0, duration_s, 0.0, sample_rate / 2000.0), vmin=ABSOLUTE_FLOOR_DB, vmax=0.0,
                cmap="magma", interpolation="nearest",
            )  # fmt: skip
            ax.set_title(plot_text(label))
        for i, ax in enumerate(axes):
            bottom_row = portrait and i == len(axes) - 1
            if not portrait and i < len(axes) - 1:  # its last tick would meet the next's first
                ax.xaxis.set_major_locator(MaxNLocator(nbins=5, prune="upper"))
            if not portrait or bottom_row:
                ax.set_xlabel("time (s)")
            else:
                ax.tick_params(labelbottom=False)
            if portrait or i == 0:
                ax.set_ylabel("frequency (kHz)")
            else:
                ax.tick_params(labelleft=False)
        fig.colorbar(image, cax=bar, label="dB re full scale")
        if title:  # a file name is no formula
            fig.suptitle(plot_text(title), fontsize=FONT_PT, y=0.99, va="top")
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
    sounds: Sequence[np.ndarray],
    *,
    labels: Sequence[str],
    sample_rate: int,
    dpi: int = 100,
    portrait: bool = False,
) -> bytes:
    """:func:`plot_spectrograms` as PNG bytes, for embedding."""
    buffer = io.BytesIO()
    plot_spectrograms(
        sounds, labels=labels, sample_rate=sample_rate, out=buffer, dpi=dpi, portrait=portrait
    )
    return buffer.getvalue()
