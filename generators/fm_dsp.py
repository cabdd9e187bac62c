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

This is the fast path: Numba-compiled block functions (one oscillator, the
envelope, the gate, the biquad) that one fused kernel, :func:`render_controls`,
runs block by block over every example of a batch, in float64, with scratch
arrays that stay in cache (about 0.2 ms per example of 16384 samples on one
core). :func:`oscillator`, :func:`adsr`, :func:`gate` and :func:`lowpass` run
the same block functions over a whole signal, for tests and plots. The same
chain written plainly with NumPy and SciPy, slow, to check this one against,
is :mod:`generators.fm_reference`.

Controls are float64 arrays ``[batch, N_CONTROLS]`` with the columns of
:data:`CONTROL_NAMES` (the FM synth's parameter order).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from core.errors import InverSynthError

__all__ = [
    "CONTROL_NAMES",
    "MAX_BLEP_DT",
    "N_CONTROLS",
    "SAW",
    "SINE",
    "SQUARE",
    "TRIANGLE",
    "WAVEFORMS",
    "adsr",
    "check_controls",
    "gate",
    "lowpass",
    "lowpass_coefficients",
    "oscillator",
    "render_controls",
]

# Waveform codes, in the synth's oscillator order.
SINE, SAW, TRIANGLE, SQUARE = 0, 1, 2, 3
WAVEFORMS = ("sine", "saw", "tri", "sqr")

# Column layout of a controls array [batch, N_CONTROLS].
CONTROL_NAMES = (
    *(f"f_{w}" for w in WAVEFORMS),  # carrier frequency, Hz
    *(f"A_{w}" for w in WAVEFORMS),  # amplitude, linear
    *(f"B_{w}" for w in WAVEFORMS),  # LFO depth (frequency swing), Hz
    *(f"v_{w}" for w in WAVEFORMS),  # LFO rate, Hz
    "attack_s",
    "decay_s",
    "sustain",  # level, linear
    "release_s",
    "cutoff_hz",
    "q",
    "gate_hz",
)
N_CONTROLS = len(CONTROL_NAMES)
_F, _A, _B, _V = 0, 4, 8, 12  # first column of each group of four
_ATTACK, _DECAY, _SUSTAIN, _RELEASE, _CUTOFF, _Q, _GATE = range(16, 23)

_BLOCK = 512  # samples per block of the fused kernel: its scratch arrays stay in L1 cache
_GATE_SCALE = 1e10  # gate phase rounded to 10 decimals, as np.round(x, 10) does it
MAX_BLEP_DT = 0.5  # cap of the BLEP width (cycles per sample), reached only above Nyquist

# Taylor coefficients of sin(z) = z * sum_k c_k z^(2k), k = 0..10. On |z| <= pi/2
# the first omitted term is below 2e-18, so the result is as good as libm's sin
# (about 1 ulp) while being plain arithmetic that LLVM vectorizes.
_SIN_COEFFS = tuple((-1.0) ** k / math.factorial(2 * k + 1) for k in range(11))
(_S0, _S1, _S2, _S3, _S4, _S5, _S6, _S7, _S8, _S9, _S10) = _SIN_COEFFS
# sin(z) = z * sum_k d_k z^(2k), k = 0..6: a near-minimax fit on |z| <= pi/2 with a
# maximum error of 2.3e-13, for the sine oscillator's output (float32 in the end),
# where it is cheaper than the full series above.
_D0, _D1, _D2, _D3, _D4, _D5, _D6 = (
    0.9999999999996371,
    -0.16666666666123078,
    0.008333333309273492,
    -0.00019841265152191652,
    2.7556850117765874e-06,
    -2.502695545247846e-08,
    1.537010796415217e-10,
)
_TWO_PI = 2.0 * math.pi

# cache=True: compiled once per machine, loaded by every later process (dataset workers).
# error_model="numpy": a division by zero gives inf/nan, as in NumPy, without a check per
# division. No fastmath: only IEEE operations, so results do not depend on the CPU.
_jit = numba.njit(cache=True, error_model="numpy", fastmath=False)


# ---------------------------------------------------------------------------
# Scalar building blocks (inlined into the loops below)
# ---------------------------------------------------------------------------
@_jit
def _sin2pi(x: float) -> float:
    """sin(2 pi x) for any float x (x in cycles), to about 1 ulp."""
    r = x - np.rint(x)  # [-0.5, 0.5]
    # sin(pi - z) = sin(z): fold into [-0.25, 0.25] cycles.
    if r > 0.25:
        r = 0.5 - r
    elif r < -0.25:
        r = -0.5 - r
    z = _TWO_PI * r
    z2 = z * z
    p = _S10
    p = p * z2 + _S9
    p = p * z2 + _S8
    p = p * z2 + _S7
    p = p * z2 + _S6
    p = p * z2 + _S5
    p = p * z2 + _S4
    p = p * z2 + _S3
    p = p * z2 + _S2
    p = p * z2 + _S1
    p = p * z2 + _S0
    return z * p


@_jit
def _sin2pi_fast(x: float) -> float:
    """sin(2 pi x) for any float x (cycles), to 2.3e-13."""
    r = x - np.rint(x)
    if r > 0.25:
        r = 0.5 - r
    elif r < -0.25:
        r = -0.5 - r
    z = _TWO_PI * r
    z2 = z * z
    p = _D6
    p = p * z2 + _D5
    p = p * z2 + _D4
    p = p * z2 + _D3
    p = p * z2 + _D2
    p = p * z2 + _D1
    p = p * z2 + _D0
    return z * p


@_jit
def _polyblep(u: float, dt: float, inv_dt: float) -> float:
    """PolyBLEP residual of an upward step of 2 at phase 0, at phase ``u`` in [0, 1].

    ``dt`` is the phase advance per sample (cycles), ``inv_dt = 1 / dt``. The
    residual is an odd function of the distance to the step, so it is the same
    whichever way the phase moves (through-zero FM).
    """
    if u < dt:  # just after the step
        x = u * inv_dt
        return -(1.0 - x) * (1.0 - x)
    if u > 1.0 - dt:  # just before it
        x = (u - 1.0) * inv_dt
        return (1.0 + x) * (1.0 + x)
    return 0.0


@_jit
def _polyblamp(u: float, dt: float, inv_dt: float) -> float:
    """PolyBLAMP residual of a unit change of slope per sample at phase 0 (even in the distance)."""
    if u < dt:
        y = 1.0 - u * inv_dt
        return y * y * y * (1.0 / 6.0)
    if u > 1.0 - dt:
        y = 1.0 + (u - 1.0) * inv_dt
        return y * y * y * (1.0 / 6.0)
    return 0.0


@_jit
def _frac(x: float) -> float:
    return x - np.floor(x)


# ---------------------------------------------------------------------------
# Array functions of the fast path
# ---------------------------------------------------------------------------
@_jit
def _lfo_table(rate_hz: float, t: np.ndarray, cos_out: np.ndarray, sin_out: np.ndarray) -> None:
    """cos and sin of 2 pi rate_hz t, for t [n] s."""
    for i in range(t.shape[0]):
        cycles = _frac(rate_hz * t[i])
        cos_out[i] = _sin2pi(cycles + 0.25)
        sin_out[i] = _sin2pi(cycles)


@_jit
def _oscillator_block(
    waveform: int,
    frequency_hz: float,
    lfo_depth_hz: float,
    lfo_rate_hz: float,
    inv_sr: float,
    t: np.ndarray,  # [m] s, this block's sample times
    lfo_cos: np.ndarray,  # [>= m] cos(2 pi v t) of the block's offsets, t - t[0]
    lfo_sin: np.ndarray,  # [>= m]
    amplitude: float,
    out: np.ndarray,  # [m] accumulates amplitude * x
) -> None:
    """Add one block of :func:`oscillator`, times ``amplitude``, to ``out``.

    The LFO comes from a table of offsets by angle addition:

    cos(2 pi v t) = cos(2 pi v t0) cos(2 pi v (t - t0)) - sin(2 pi v t0) sin(2 pi v (t - t0)),
    which costs 3 products per sample instead of a cosine, and the table of
    offsets serves every block of the example.
    """
    depth_cycles = lfo_depth_hz / (_TWO_PI * lfo_rate_hz)  # peak phase deviation, cycles
    anchor = _frac(lfo_rate_hz * t[0])
    c0 = _sin2pi(anchor + 0.25)
    s0 = _sin2pi(anchor)
    m = out.shape[0]
    # One loop per waveform, so that each is a straight loop that LLVM vectorizes.
    if waveform == SINE:
        for i in range(m):
            c = c0 * lfo_cos[i] - s0 * lfo_sin[i]
            p = frequency_hz * t[i] - depth_cycles * (c - 1.0)  # phase, cycles
            out[i] += amplitude * _sin2pi_fast(p)
    elif waveform == SAW:
        for i in range(m):
            c = c0 * lfo_cos[i] - s0 * lfo_sin[i]
            s = s0 * lfo_cos[i] + c0 * lfo_sin[i]
            p = frequency_hz * t[i] - depth_cycles * (c - 1.0)
            dt = min(abs(frequency_hz + lfo_depth_hz * s) * inv_sr, MAX_BLEP_DT)  # cycles/sample
            inv_dt = 1.0 / dt
            # Sine phase: rising from 0 at p = 0, the drop from +1 to -1 at p = 1/2.
            u = _frac(p + 0.5)
            out[i] += amplitude * (2.0 * u - 1.0 - _polyblep(u, dt, inv_dt))
    elif waveform == TRIANGLE:
        for i in range(m):
            c = c0 * lfo_cos[i] - s0 * lfo_sin[i]
            s = s0 * lfo_cos[i] + c0 * lfo_sin[i]
            p = frequency_hz * t[i] - depth_cycles * (c - 1.0)
            dt = min(abs(frequency_hz + lfo_depth_hz * s) * inv_sr, MAX_BLEP_DT)
            inv_dt = 1.0 / dt
            # Peak (+1) at p = 1/4, trough (-1) at p = 3/4; the slope jumps there by
            # -8 and +8 per cycle, i.e. by -8 dt and +8 dt per sample.
            u_peak = _frac(p + 0.75)
            u_trough = _frac(p + 0.25)
            naive = 4.0 * abs(u_peak - 0.5) - 1.0
            blamps = _polyblamp(u_trough, dt, inv_dt) - _polyblamp(u_peak, dt, inv_dt)
            out[i] += amplitude * (naive + 8.0 * dt * blamps)
    elif waveform == SQUARE:
        for i in range(m):
            c = c0 * lfo_cos[i] - s0 * lfo_sin[i]
            s = s0 * lfo_cos[i] + c0 * lfo_sin[i]
            p = frequency_hz * t[i] - depth_cycles * (c - 1.0)
            dt = min(abs(frequency_hz + lfo_depth_hz * s) * inv_sr, MAX_BLEP_DT)
            inv_dt = 1.0 / dt
            # +1 on [0, 1/2), -1 on [1/2, 1): a step of +2 at 0 and of -2 at 1/2.
            u = _frac(p)
            u_half = _frac(p + 0.5)
            naive = 1.0 if u < 0.5 else -1.0
            out[i] += amplitude * (naive + _polyblep(u, dt, inv_dt) - _polyblep(u_half, dt, inv_dt))
    else:
        out[:] = np.nan  # unknown code; the Python callers check it first


@_jit
def _oscillator(
    waveform: int,
    frequency_hz: float,
    lfo_depth_hz: float,
    lfo_rate_hz: float,
    sample_rate: float,
    out: np.ndarray,
) -> None:
    out[:] = 0.0
    n = out.shape[0]
    block = min(_BLOCK, n)
    t = np.arange(n) / sample_rate
    lfo_cos = np.empty(block)
    lfo_sin = np.empty(block)
    _lfo_table(lfo_rate_hz, t[:block], lfo_cos, lfo_sin)
    for start in range(0, n, block):
        stop = min(start + block, n)
        _oscillator_block(
            waveform,
            frequency_hz,
            lfo_depth_hz,
            lfo_rate_hz,
            1.0 / sample_rate,
            t[start:stop],
            lfo_cos,
            lfo_sin,
            1.0,
            out[start:stop],
        )


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
        :data:`SINE`, :data:`SAW`, :data:`TRIANGLE` or :data:`SQUARE`.
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
        _oscillator(
            int(waveform),
            float(frequency_hz),
            float(lfo_depth_hz),
            float(lfo_rate_hz),
            float(sample_rate),
            out,
        )
    return out


def _check_waveform(waveform: int) -> None:
    if waveform not in (SINE, SAW, TRIANGLE, SQUARE):
        raise InverSynthError(f"unknown waveform code {waveform!r}; known: 0..3 ({WAVEFORMS})")


@_jit
def _adsr_block(
    attack_s: float,
    decay_s: float,
    sustain: float,
    release_s: float,
    note_off_s: float,
    t: np.ndarray,  # [m] s
    out: np.ndarray,  # [m]
) -> None:
    # Reciprocals once, products per sample: divisions would cost more than the rest.
    inv_attack = 1.0 / attack_s
    inv_decay = 1.0 / decay_s
    inv_release = 1.0 / release_s
    decay_end = attack_s + decay_s
    drop = 1.0 - sustain
    if note_off_s < attack_s:
        level_off = note_off_s * inv_attack
    elif note_off_s < decay_end:
        level_off = 1.0 - drop * ((note_off_s - attack_s) * inv_decay)
    else:
        level_off = sustain
    for i in range(t.shape[0]):
        ti = t[i]
        rising = ti * inv_attack
        decaying = 1.0 - drop * ((ti - attack_s) * inv_decay)
        held = rising if ti < attack_s else (decaying if ti < decay_end else sustain)
        released = level_off * max(0.0, 1.0 - (ti - note_off_s) * inv_release)
        out[i] = held if ti < note_off_s else released


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
    _adsr_block(
        float(attack_s), float(decay_s), float(sustain), float(release_s), float(note_off_s), t, out
    )
    return out


@_jit
def _gate_block(gate_hz: float, t: np.ndarray, out: np.ndarray) -> None:
    for i in range(t.shape[0]):
        x = np.rint(gate_hz * t[i] * _GATE_SCALE) / _GATE_SCALE  # = np.round(., 10)
        out[i] = 1.0 if x - np.floor(x) < 0.5 else 0.0


def gate(*, gate_hz: float, sample_rate: float, n_samples: int) -> np.ndarray:
    """Gater: 1 where ``frac(round(gate_hz t, 10)) < 1/2``, exactly 0 elsewhere.

    Rounding the gate phase to 10 decimals makes an edge that falls on a
    sample land on the same side in every implementation.

    Returns
    -------
    gate : np.ndarray [n_samples], float64 of 1.0 (open) and 0.0 (closed)
    """
    out = np.empty(int(n_samples))
    _gate_block(float(gate_hz), np.arange(int(n_samples)) / sample_rate, out)
    return out


@_jit
def _lowpass(x: np.ndarray, coeffs: np.ndarray, state: np.ndarray) -> None:
    """Biquad in direct form I, in place; ``state`` = [x1, x2, y1, y2], carried across calls."""
    b0, b1, b2, a1, a2 = coeffs[0], coeffs[1], coeffs[2], coeffs[3], coeffs[4]
    x1, x2, y1, y2 = state[0], state[1], state[2], state[3]
    for i in range(x.shape[0]):
        x0 = x[i]
        # Grouped so that only the last product and subtraction wait for y1: the
        # recursion costs one multiply and one subtract per sample.
        y0 = (b0 * x0 + b1 * x1 + b2 * x2 - a2 * y2) - a1 * y1
        x[i] = y0
        x2 = x1
        x1 = x0
        y2 = y1
        y1 = y0
    state[0], state[1], state[2], state[3] = x1, x2, y1, y2


def lowpass(x: np.ndarray, *, cutoff_hz: float, q: float, sample_rate: float) -> np.ndarray:
    """Filter ``x`` [n] with the RBJ resonant low-pass (zero initial state), as the kernel does.

    Returns
    -------
    y : np.ndarray [n], float64
    """
    y = np.array(x, dtype=np.float64)
    coeffs = np.empty(5)
    _lowpass_coefficients(float(cutoff_hz), float(q), float(sample_rate), coeffs)
    _lowpass(y, coeffs, np.zeros(4))
    return y


@_jit
def _lowpass_coefficients(cutoff_hz: float, q: float, sample_rate: float, out: np.ndarray) -> None:
    w0 = _TWO_PI * cutoff_hz / sample_rate
    cos_w0 = math.cos(w0)
    alpha = math.sin(w0) / (2.0 * q)
    a0 = 1.0 + alpha
    out[0] = (1.0 - cos_w0) / 2.0 / a0
    out[1] = (1.0 - cos_w0) / a0
    out[2] = out[0]
    out[3] = -2.0 * cos_w0 / a0
    out[4] = (1.0 - alpha) / a0


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


# ---------------------------------------------------------------------------
# The fused kernel
# ---------------------------------------------------------------------------
@_jit
def _any_nonzero(x: np.ndarray) -> bool:
    # A loop, not np.any(x != 0): no temporary array per block.
    for i in range(x.shape[0]):  # noqa: SIM110 - Numba compiles loops, not generators
        if x[i] != 0.0:
            return True
    return False


@_jit
def _render_batch(
    controls: np.ndarray,  # [batch, N_CONTROLS] float64
    sample_rate: float,
    note_off_s: float,
    normalise: bool,
    out: np.ndarray,  # [batch, n_samples] float32
) -> None:
    n_samples = out.shape[1]
    block = min(_BLOCK, n_samples)
    inv_sr = 1.0 / sample_rate
    t = np.arange(n_samples) / sample_rate  # [n_samples] s, shared by every example
    y = np.empty(n_samples)  # [n_samples] one example before output scaling
    lfo_cos = np.empty((4, block))  # [oscillator, offset in block]
    lfo_sin = np.empty((4, block))
    mix = np.empty(block)
    env = np.empty(block)
    gates = np.empty(block)
    coeffs = np.empty(5)
    state = np.empty(4)
    for b in range(controls.shape[0]):
        c = controls[b]
        _lowpass_coefficients(c[_CUTOFF], c[_Q], sample_rate, coeffs)
        state[:] = 0.0
        for w in range(4):
            _lfo_table(c[_V + w], t[:block], lfo_cos[w], lfo_sin[w])
        for start in range(0, n_samples, block):
            stop = min(start + block, n_samples)
            m = stop - start
            tb = t[start:stop]
            e = env[:m]
            x = mix[:m]
            g = gates[:m]
            x[:] = 0.0
            _adsr_block(c[_ATTACK], c[_DECAY], c[_SUSTAIN], c[_RELEASE], note_off_s, tb, e)
            # Once the release has ended the envelope is 0 for good: the oscillators
            # are not needed there (the filter still rings, and is run).
            if _any_nonzero(e):
                for w in range(4):
                    amplitude = c[_A + w]
                    if amplitude == 0.0:
                        continue
                    _oscillator_block(
                        w,
                        c[_F + w],
                        c[_B + w],
                        c[_V + w],
                        inv_sr,
                        tb,
                        lfo_cos[w],
                        lfo_sin[w],
                        amplitude,
                        x,
                    )
                for i in range(m):
                    x[i] = x[i] * 0.25 * e[i]
            _lowpass(x, coeffs, state)
            _gate_block(c[_GATE], tb, g)
            for i in range(m):
                y[start + i] = x[i] * g[i]
        peak = 0.0
        for i in range(n_samples):
            peak = max(peak, abs(y[i]))
        if not normalise:
            scale = 1.0 / max(1.0, peak)
        elif peak > 0.0:
            scale = 1.0 / peak
        else:
            scale = 1.0  # silence stays silence
        for i in range(n_samples):
            out[b, i] = y[i] * scale


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
    positive = [_V, _V + 1, _V + 2, _V + 3, _ATTACK, _DECAY, _RELEASE, _Q]
    for j in positive:
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
        _render_batch(c, float(sample_rate), float(note_off_s), bool(normalise), out)
    return out
