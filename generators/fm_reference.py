"""The paper's FM synthesizer written plainly, one stage at a time, with NumPy and SciPy.

Slow, in float64, and kept only to check the fast path (:mod:`generators.fm_dsp`)
against: every function here is its namesake there, written from the SPEC's
formulas (see the conventions in :mod:`generators.fm_dsp`).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from core.errors import InverSynthError
from generators.fm_dsp import check_controls, lowpass_coefficients
from generators.fm_kernels import MAX_BLEP_DT
from generators.fm_parameters import CONTROL_NAMES, SAW, SINE, SQUARE, TRIANGLE, WAVEFORMS

__all__ = [
    "adsr_reference",
    "gate_reference",
    "naive_waveform",
    "oscillator_reference",
    "render_fm_reference",
]


def _column(name: str) -> int:
    """Column of a control in a controls array."""
    return CONTROL_NAMES.index(name)


def naive_waveform(waveform: int, phase: np.ndarray) -> np.ndarray:
    """The ideal (aliasing) waveform at ``phase`` (cycles), sine phase, in [-1, 1]."""
    u = np.mod(phase, 1.0)
    if waveform == SINE:
        return np.sin(2 * np.pi * phase)
    if waveform == SAW:
        return np.where(u < 0.5, 2 * u, 2 * u - 2)
    if waveform == TRIANGLE:
        return np.where(u < 0.25, 4 * u, np.where(u < 0.75, 2 - 4 * u, 4 * u - 4))
    if waveform == SQUARE:
        return np.where(u < 0.5, 1.0, -1.0)
    raise InverSynthError(f"unknown waveform code {waveform!r}; known: 0..3 ({WAVEFORMS})")


def _blep_reference(distance: np.ndarray) -> np.ndarray:
    """Residual of an upward unit step, ``distance`` = (sample time - step time) in samples."""
    d = distance
    return np.where(
        (d >= 0) & (d < 1), -((1 - d) ** 2) / 2, np.where((d > -1) & (d < 0), (1 + d) ** 2 / 2, 0.0)
    )


def _blamp_reference(distance: np.ndarray) -> np.ndarray:
    """Residual of a unit change of slope per sample: the integral of the BLEP residual."""
    return np.where(np.abs(distance) < 1, (1 - np.abs(distance)) ** 3 / 6, 0.0)


def oscillator_reference(
    waveform: int,
    *,
    frequency_hz: float,
    lfo_depth_hz: float,
    lfo_rate_hz: float,
    sample_rate: float,
    n_samples: int,
) -> np.ndarray:
    """:func:`~generators.fm_dsp.oscillator` written plainly: the SPEC phase formula plus BLEP residuals.

    Returns
    -------
    x : np.ndarray [n_samples], float64
    """
    t = np.arange(n_samples) / sample_rate  # [n] s
    f, b, v = frequency_hz, lfo_depth_hz, lfo_rate_hz
    phi = 2 * np.pi * f * t - (b / v) * (np.cos(2 * np.pi * v * t) - 1)  # [n] rad
    phase = phi / (2 * np.pi)  # [n] cycles
    x = naive_waveform(waveform, phase)
    if waveform == SINE:
        return x
    dt = np.minimum(np.abs(f + b * np.sin(2 * np.pi * v * t)) / sample_rate, MAX_BLEP_DT)  # [n]
    with np.errstate(divide="ignore", invalid="ignore"):

        def distance(edge: float) -> np.ndarray:
            """Signed distance in samples from the nearest crossing of phase ``edge``."""
            u = np.mod(phase - edge + 0.5, 1.0) - 0.5  # cycles, in [-1/2, 1/2)
            return np.where(np.abs(u) < dt, u / dt, np.inf)

        if waveform == SAW:
            return x - 2 * _blep_reference(distance(0.5))
        if waveform == SQUARE:
            return x + 2 * _blep_reference(distance(0.0)) - 2 * _blep_reference(distance(0.5))
        return x + 8 * dt * (_blamp_reference(distance(0.75)) - _blamp_reference(distance(0.25)))


def adsr_reference(
    *,
    attack_s: float,
    decay_s: float,
    sustain: float,
    release_s: float,
    note_off_s: float,
    sample_rate: float,
    n_samples: int,
) -> np.ndarray:
    """:func:`~generators.fm_dsp.adsr` written with ``np.interp`` over the envelope's breakpoints.

    Returns
    -------
    env : np.ndarray [n_samples], float64
    """
    t = np.arange(n_samples) / sample_rate
    held = np.interp(t, [0, attack_s, attack_s + decay_s], [0, 1, sustain])
    level_off = np.interp(note_off_s, [0, attack_s, attack_s + decay_s], [0, 1, sustain])
    released = np.interp(t, [note_off_s, note_off_s + release_s], [level_off, 0.0])
    return np.where(t < note_off_s, held, released)


def gate_reference(*, gate_hz: float, sample_rate: float, n_samples: int) -> np.ndarray:
    """:func:`~generators.fm_dsp.gate` with ``np.round``: [n_samples] float64 of 1 (open) and 0 (closed)."""
    t = np.arange(n_samples) / sample_rate
    return (np.mod(np.round(gate_hz * t, 10), 1.0) < 0.5).astype(np.float64)


def render_fm_reference(
    controls: np.ndarray,
    *,
    sample_rate: int,
    n_samples: int,
    note_off_s: float = 0.75,
    normalise: bool = False,
) -> np.ndarray:
    """:func:`~generators.fm_dsp.render_controls` written stage by stage (slow; for tests).

    Returns
    -------
    audio : np.ndarray [batch, n_samples], float32
    """
    c = check_controls(controls, sample_rate=sample_rate, note_off_s=note_off_s)
    out = np.empty((c.shape[0], n_samples), dtype=np.float32)
    for i, row in enumerate(c):
        mix = np.zeros(n_samples)
        for w in range(4):
            mix += row[_column(f"A_{WAVEFORMS[w]}")] * oscillator_reference(
                w,
                frequency_hz=row[_column(f"f_{WAVEFORMS[w]}")],
                lfo_depth_hz=row[_column(f"B_{WAVEFORMS[w]}")],
                lfo_rate_hz=row[_column(f"v_{WAVEFORMS[w]}")],
                sample_rate=sample_rate,
                n_samples=n_samples,
            )
        mix /= 4
        env = adsr_reference(
            attack_s=row[_column("attack_s")],
            decay_s=row[_column("decay_s")],
            sustain=row[_column("sustain")],
            release_s=row[_column("release_s")],
            note_off_s=note_off_s,
            sample_rate=sample_rate,
            n_samples=n_samples,
        )
        coeffs = lowpass_coefficients(
            cutoff_hz=row[_column("cutoff_hz")], q=row[_column("q")], sample_rate=sample_rate
        )
        filtered = lfilter(coeffs[:3], [1.0, coeffs[3], coeffs[4]], mix * env)
        y = filtered * gate_reference(
            gate_hz=row[_column("gate_hz")], sample_rate=sample_rate, n_samples=n_samples
        )
        peak = np.max(np.abs(y))
        scale = (1 / peak if peak > 0 else 1.0) if normalise else 1 / max(1.0, peak)
        out[i] = y * scale
    return out
