"""Signal processing of the paper's FM synthesizer (SPEC section 1), as small pure functions.

Signal chain, per example::

    4 oscillators (sine, saw, triangle, square), each frequency-modulated by its own LFO
      -> mix = sum(A_w * x_w) / 4 -> * ADSR envelope -> RBJ resonant low-pass -> * gate
      -> y / max(1, peak(y))            (or y / peak(y) with ``normalise``)

Conventions (SPEC section 1, Decisions):

* time is sampled at ``t = n / sample_rate``, ``n = 0 .. n_samples - 1``;
* oscillator phase, in cycles, is the running integral of the instantaneous
  frequency ``f + B sin(2 pi v t)`` Hz::

      p(t) = f t - (B / (2 pi v)) (cos(2 pi v t) - 1)       (phi = 2 pi p)

* waveforms have sine phase (they start at 0 and rise); saw, square and
  triangle are band-limited with PolyBLEP / PolyBLAMP residuals sized by the
  magnitude of the instantaneous frequency (through-zero FM allowed);
* the gate is open (1) where ``frac(round(f_gate t, 10)) < 1/2`` and exactly 0
  otherwise.

This is the fast path: :func:`render_controls` checks a batch of controls and
runs the fused Numba kernel of :mod:`generators.fm_kernels` over it (about
0.2 ms per example of 16384 samples on one core). :func:`oscillator`,
:func:`adsr`, :func:`gate` and :func:`lowpass` run the kernel's block functions
over a whole signal, for tests and plots. The same
chain written plainly with NumPy and SciPy, slow, to check this one against,
is :mod:`generators.fm_reference`.

Controls are float64 arrays ``[batch, N_CONTROLS]`` with the columns of
:data:`generators.fm_parameters.CONTROL_NAMES` (the FM synth's parameters, in
their order and units).
"""

from __future__ import annotations

import math

import numpy as np

from core.errors import InverSynthError
from generators.fm_kernels import (
    adsr_block,
    gate_block,
    lowpass_block,
    lowpass_coefficients_into,
    oscillator_signal,
    render_batch,
)
from generators.fm_parameters import CONTROL_NAMES, N_CONTROLS, WAVEFORMS

__all__ = [
    "adsr",
    "check_controls",
    "gate",
    "lowpass",
    "lowpass_coefficients",
    "oscillator",
    "render_controls",
]

# Controls the kernel divides by or takes the sine of: they must be > 0.
_POSITIVE = (*(f"v_{w}" for w in WAVEFORMS), "attack_s", "decay_s", "release_s", "q")
_CUTOFF = CONTROL_NAMES.index("cutoff_hz")


def oscillator(
    waveform: int,
    *,
    frequency_hz: float,
    lfo_depth_hz: float,
    lfo_rate_hz: float,
    sample_rate: float,
    n_samples: int,
) -> np.ndarray:
    """One band-limited FM oscillator of amplitude 1, as the fast kernel renders it.

    Parameters
    ----------
    waveform : int
        :data:`~generators.fm_parameters.SINE`, ``SAW``, ``TRIANGLE`` or ``SQUARE``.
    frequency_hz : float
        Carrier frequency f, Hz.
    lfo_depth_hz : float
        Frequency swing B, Hz: the instantaneous frequency is f + B sin(2 pi v t).
    lfo_rate_hz : float > 0
        LFO rate v, Hz.
    sample_rate : float
        Hz.
    n_samples : int

    Returns
    -------
    x : np.ndarray [n_samples], float64
        x(p(t)), in [-1, 1] apart from a PolyBLEP overshoot of a few percent.
    """
    _check_waveform(waveform)
    if not lfo_rate_hz > 0:
        raise InverSynthError(f"lfo_rate_hz must be > 0, got {lfo_rate_hz!r}")
    out = np.empty(int(n_samples))
    if n_samples > 0:
        oscillator_signal(
            int(waveform),
            float(frequency_hz),
            float(lfo_depth_hz),
            float(lfo_rate_hz),
            float(sample_rate),
            out,
        )
    return out


def _check_waveform(waveform: int) -> None:
    if waveform not in range(len(WAVEFORMS)):
        raise InverSynthError(f"unknown waveform code {waveform!r}; known: 0..3 ({WAVEFORMS})")


def adsr(
    *,
    attack_s: float,
    decay_s: float,
    sustain: float,
    release_s: float,
    note_off_s: float,
    sample_rate: float,
    n_samples: int,
) -> np.ndarray:
    """Linear ADSR envelope with note-on at t = 0, as the fast kernel renders it.

    Attack 0 -> 1 over ``attack_s``, decay 1 -> ``sustain`` over ``decay_s``,
    then ``sustain``; from ``note_off_s`` a linear release to 0 over
    ``release_s``, from whatever level was reached (note-off may come during
    attack or decay).

    Parameters
    ----------
    attack_s, decay_s, release_s : float > 0
        Seconds.
    sustain : float
        Level, linear.
    note_off_s : float >= 0
        Seconds.
    sample_rate : float
        Hz.
    n_samples : int

    Returns
    -------
    env : np.ndarray [n_samples], float64
    """
    if min(attack_s, decay_s, release_s) <= 0:
        raise InverSynthError(
            f"attack_s, decay_s and release_s must be > 0, got {attack_s!r}, {decay_s!r}, "
            f"{release_s!r}"
        )
    out = np.empty(int(n_samples))
    t = np.arange(int(n_samples)) / sample_rate
    adsr_block(
        float(attack_s), float(decay_s), float(sustain), float(release_s), float(note_off_s), t, out
    )
    return out


def gate(*, gate_hz: float, sample_rate: float, n_samples: int) -> np.ndarray:
    """Gater: 1 where ``frac(round(gate_hz t, 10)) < 1/2``, exactly 0 elsewhere.

    Rounding the gate phase to 10 decimals makes an edge that falls on a
    sample land on the same side in every implementation.

    Returns
    -------
    gate : np.ndarray [n_samples], float64 of 1.0 (open) and 0.0 (closed)
    """
    out = np.empty(int(n_samples))
    gate_block(float(gate_hz), np.arange(int(n_samples)) / sample_rate, out)
    return out


def lowpass(x: np.ndarray, *, cutoff_hz: float, q: float, sample_rate: float) -> np.ndarray:
    """Filter ``x`` [n] with the RBJ resonant low-pass (zero initial state), as the kernel does.

    Returns
    -------
    y : np.ndarray [n], float64
    """
    y = np.array(x, dtype=np.float64)
    coeffs = np.empty(5)
    lowpass_coefficients_into(float(cutoff_hz), float(q), float(sample_rate), coeffs)
    lowpass_block(y, coeffs, np.zeros(4))
    return y


def lowpass_coefficients(*, cutoff_hz: float, q: float, sample_rate: float) -> np.ndarray:
    """RBJ Audio-EQ-Cookbook resonant low-pass (the kernel computes the same in Numba).

    Parameters
    ----------
    cutoff_hz : float in (0, sample_rate / 2)
    q : float > 0
    sample_rate : float
        Hz.

    Returns
    -------
    coeffs : np.ndarray [5], float64
        ``b0, b1, b2, a1, a2``, normalised by ``a0`` (so ``a = [1, a1, a2]``).
    """
    w0 = 2 * math.pi * cutoff_hz / sample_rate
    alpha = math.sin(w0) / (2 * q)
    b = np.array([(1 - math.cos(w0)) / 2, 1 - math.cos(w0), (1 - math.cos(w0)) / 2])
    a = np.array([1 + alpha, -2 * math.cos(w0), 1 - alpha])
    return np.concatenate([b / a[0], a[1:] / a[0]])


def check_controls(controls: np.ndarray, *, sample_rate: float, note_off_s: float) -> np.ndarray:
    """Validate a controls array; returns it as C-contiguous float64 [batch, N_CONTROLS].

    Raises
    ------
    InverSynthError
        On a wrong shape, a non-finite value, or a control outside what the
        DSP can render (LFO rate, envelope times and Q must be > 0, the cutoff
        inside (0, sample_rate / 2)).
    """
    c = np.ascontiguousarray(controls, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != N_CONTROLS:
        raise InverSynthError(f"FM controls must have shape [batch, {N_CONTROLS}], got {c.shape}")
    if not np.isfinite(c).all():
        raise InverSynthError("FM controls must be finite")
    if not (np.isfinite(note_off_s) and note_off_s >= 0):
        raise InverSynthError(f"note_off_s must be >= 0, got {note_off_s!r}")
    for j in map(CONTROL_NAMES.index, _POSITIVE):
        bad = c[:, j] <= 0
        if bad.any():
            raise InverSynthError(f"{CONTROL_NAMES[j]} must be > 0, got {c[bad, j][0]!r}")
    cutoff = c[:, _CUTOFF]
    bad = (cutoff <= 0) | (cutoff >= sample_rate / 2)
    if bad.any():
        raise InverSynthError(
            f"cutoff_hz must be in (0, {sample_rate / 2}) at sample rate {sample_rate} Hz, "
            f"got {cutoff[bad][0]!r}"
        )
    return c


def render_controls(
    controls: np.ndarray,
    *,
    sample_rate: int,
    n_samples: int,
    note_off_s: float = 0.75,
    normalise: bool = False,
) -> np.ndarray:
    """Render a batch of controls with the fused Numba kernel.

    Parameters
    ----------
    controls : np.ndarray [batch, N_CONTROLS], float
        Columns as :data:`CONTROL_NAMES` (Hz, seconds, linear levels).
    sample_rate : int
        Hz.
    n_samples : int
        Samples per example.
    note_off_s : float >= 0
        Seconds from note-on to note-off (the start of the release).
    normalise : bool
        Scale every example to peak 1 instead of only those whose peak exceeds 1.

    Returns
    -------
    audio : np.ndarray [batch, n_samples], float32 in [-1, 1]
    """
    c = check_controls(controls, sample_rate=sample_rate, note_off_s=note_off_s)
    out = np.empty((c.shape[0], int(n_samples)), dtype=np.float32)
    if c.shape[0] and n_samples:
        render_batch(c, float(sample_rate), float(note_off_s), bool(normalise), out)
    return out
