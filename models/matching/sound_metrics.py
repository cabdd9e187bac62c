"""How close a resynthesis sounds to its target: the reconstruction metrics, defined once.

Every metric compares a *reference* (the sound to match) with an *estimate*
(the synth played with the predicted parameters). NumPy and SciPy only, so
the metrics run anywhere, including worker processes without TensorFlow.

Representation (SPEC section 2, the models' own input; computed by
:mod:`models.common.spectral`): STFT with a periodic
Hann window of 512 samples, hop 256, the signal zero-padded at its end to a
whole number of hops (16384 samples -> 64 frames x 257 bins), magnitude
``|X|``. The log-magnitude STFT is in dB relative to a full-scale sine
(``20 * log10(|X| / (sum(window) / 2))``: a sine of amplitude 1 peaks at
0 dB), floored at :data:`~models.common.spectral.ABSOLUTE_FLOOR_DB` = -100 dB so that silence and numerical
noise have a finite, fixed level.

=========================  ====  ===========================================  ==========
key                        unit  definition                                   better
=========================  ====  ===========================================  ==========
``f_delta``                dB    F_delta: Frobenius norm of the difference    lower, 0
                                 of the log-magnitude STFTs (64 x 257 for
                                 the paper's 1 s at 16384 Hz)
``rho_stft``               -     rho_STFT: Pearson correlation of the         higher, 1
                                 flattened log-magnitude STFTs
``rho_ft``                 -     rho_FT: Pearson correlation of the           higher, 1
                                 magnitude spectra ``|rfft|`` of the whole
                                 signals (linear magnitude)
``spectral_convergence``   -     ``||S - S'||_F / ||S||_F`` of the linear     lower, 0
                                 magnitude STFTs (S: reference)
``log_spectral_distance``  dB    per frame the RMS over bins of the dB        lower, 0
                                 difference, averaged over frames
``mfcc_l1``                dB    mean absolute difference of 20 MFCCs         lower, 0
                                 (40 mel bands, DCT-II orthonormal of the
                                 floored dB mel power), over coefficients
                                 and frames
=========================  ====  ===========================================  ==========

Edge cases, defined so that no metric is ever NaN:

* a Pearson correlation where one signal's vector is constant (silence, whose
  log spectrum is the floor everywhere) is 1 if the two vectors are equal and
  0 otherwise;
* spectral convergence against a silent reference (``||S||_F = 0``) is 0 if
  the estimate is silent too and ``inf`` otherwise; :func:`summarize` leaves
  non-finite values out of means and medians and counts them
  (:class:`MetricSummary`).

The absolute scale of F_delta depends on the dB convention and the floor, which
the paper does not give; compare F_delta between runs of this toolkit, not with
the paper's figures. The correlations are scale-free and comparable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.checks import check_audio, check_positive_int
from core.errors import InverSynthError
from models.common.records import JsonRecord
from models.common.spectral import (
    ABSOLUTE_FLOOR_DB,
    HOP_LENGTH,
    N_FFT,
    N_MFCC,
    N_MFCC_MELS,
    magnitude_stft,
    magnitude_to_db,
    mfcc_from_magnitude,
)

__all__ = [
    "METRICS",
    "REPRESENTATION",
    "MetricInfo",
    "MetricSummary",
    "compare_audio",
    "format_metric",
    "format_metrics",
    "metric_heading",
    "pearson",
    "reconstruction_metrics",
    "summarize",
]


@dataclass(frozen=True)
class MetricInfo:
    """How to display and read one metric."""

    key: str
    label: str  # short column label, e.g. "rho_STFT"
    unit: str  # "dB" or "" (a ratio)
    higher_is_better: bool
    description: str


METRICS: dict[str, MetricInfo] = {
    m.key: m
    for m in (
        MetricInfo(
            "rho_stft",
            "rho_STFT",
            "",
            True,
            "Pearson correlation of the log-magnitude STFTs (1 = same shape)",
        ),
        MetricInfo(
            "rho_ft",
            "rho_FT",
            "",
            True,
            "Pearson correlation of the magnitude spectra of the whole signals",
        ),
        MetricInfo(
            "f_delta",
            "F_delta",
            "dB",
            False,
            "Frobenius norm of the difference of the log-magnitude STFTs",
        ),
        MetricInfo(
            "spectral_convergence",
            "SC",
            "",
            False,
            "||S - S'||_F / ||S||_F of the magnitude STFTs",
        ),
        MetricInfo(
            "log_spectral_distance",
            "LSD",
            "dB",
            False,
            "RMS dB difference per frame, averaged over frames",
        ),
        MetricInfo(
            "mfcc_l1",
            "MFCC L1",
            "dB",
            False,
            "mean absolute difference of 20 MFCCs",
        ),
    )
}


# The representation the metrics compare, as reconstruction.json records it.
REPRESENTATION: dict[str, str] = {
    "stft": f"periodic Hann window {N_FFT}, hop {HOP_LENGTH}, zero-padded at the end; magnitude",
    "log_magnitude": f"dB re a full-scale sine, floored at {ABSOLUTE_FLOOR_DB:g} dB",
    "mfcc": f"{N_MFCC} coefficients of {N_MFCC_MELS} mel bands (DCT-II orthonormal of the dB mel power)",
}


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------


def _as_batch(audio: np.ndarray, name: str) -> np.ndarray:
    """[n_samples] or [batch, n_samples] finite audio -> float64 [batch, n_samples]."""
    return check_audio(audio, name=name, batch=True, dtype=np.float64)


def _check_rate(sample_rate: int) -> int:
    return check_positive_int(sample_rate, "sample_rate")


# --------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------


def pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation, never NaN.

    Parameters
    ----------
    a, b : np.ndarray [batch, n]

    Returns
    -------
    rho : np.ndarray [batch], float64 in [-1, 1]
        For a row where ``a`` or ``b`` is constant: 1 if the rows are equal, else 0.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    da = a - a.mean(axis=1, keepdims=True)
    db = b - b.mean(axis=1, keepdims=True)
    norm_a = np.sqrt(np.sum(da * da, axis=1))
    norm_b = np.sqrt(np.sum(db * db, axis=1))
    # A constant row has a centered norm of exactly 0 only up to rounding.
    scale_a = np.max(np.abs(a), axis=1) * 1e-12 * math.sqrt(a.shape[1])
    scale_b = np.max(np.abs(b), axis=1) * 1e-12 * math.sqrt(b.shape[1])
    degenerate = (norm_a <= scale_a) | (norm_b <= scale_b)
    denominator = np.where(degenerate, 1.0, norm_a * norm_b)
    rho = np.sum(da * db, axis=1) / denominator
    equal = np.all(a == b, axis=1)
    rho = np.where(degenerate, np.where(equal, 1.0, 0.0), rho)
    return np.clip(rho, -1.0, 1.0)


def reconstruction_metrics(
    reference: np.ndarray, estimate: np.ndarray, *, sample_rate: int
) -> dict[str, np.ndarray]:
    """Every reconstruction metric of a batch of (reference, estimate) pairs.

    Parameters
    ----------
    reference : np.ndarray [batch, n_samples] (or [n_samples]), float
        The sounds to match.
    estimate : np.ndarray, same shape
        Their resyntheses.
    sample_rate : int
        Hz (for the mel bands of the MFCCs).

    Returns
    -------
    metrics : dict of str -> np.ndarray [batch], float64
        Keys of :data:`METRICS`; see the module docstring for units and edge cases.
    """
    ref = _as_batch(reference, "reference")
    est = _as_batch(estimate, "estimate")
    if ref.shape != est.shape:
        raise InverSynthError(
            f"reference and estimate must have the same shape, got {ref.shape} and {est.shape}"
        )
    rate = _check_rate(sample_rate)
    batch = ref.shape[0]

    mag_ref = magnitude_stft(ref)  # [batch, n_frames, 257]
    mag_est = magnitude_stft(est)
    db_ref = magnitude_to_db(mag_ref)
    db_est = magnitude_to_db(mag_est)
    diff_db = db_ref - db_est  # [batch, n_frames, 257]

    f_delta = np.sqrt(np.sum(diff_db**2, axis=(1, 2)))
    rho_stft = pearson(db_ref.reshape(batch, -1), db_est.reshape(batch, -1))
    spectrum_ref = np.abs(np.fft.rfft(ref, axis=1))  # [batch, n_samples // 2 + 1]
    spectrum_est = np.abs(np.fft.rfft(est, axis=1))
    rho_ft = pearson(spectrum_ref, spectrum_est)

    norm_ref = np.sqrt(np.sum(mag_ref**2, axis=(1, 2)))
    norm_diff = np.sqrt(np.sum((mag_ref - mag_est) ** 2, axis=(1, 2)))
    with np.errstate(divide="ignore", invalid="ignore"):
        convergence = np.where(
            norm_ref > 0, norm_diff / np.where(norm_ref > 0, norm_ref, 1.0), np.inf
        )
    convergence = np.where((norm_ref == 0) & (norm_diff == 0), 0.0, convergence)

    lsd = np.mean(np.sqrt(np.mean(diff_db**2, axis=2)), axis=1)
    mfcc_l1 = np.mean(
        np.abs(
            mfcc_from_magnitude(mag_ref, sample_rate=rate)
            - mfcc_from_magnitude(mag_est, sample_rate=rate)
        ),
        axis=(1, 2),
    )
    return {
        "rho_stft": rho_stft,
        "rho_ft": rho_ft,
        "f_delta": f_delta,
        "spectral_convergence": convergence,
        "log_spectral_distance": lsd,
        "mfcc_l1": mfcc_l1,
    }


def compare_audio(
    reference: np.ndarray, estimate: np.ndarray, *, sample_rate: int
) -> dict[str, float]:
    """:func:`reconstruction_metrics` of one pair of [n_samples] signals, as floats."""
    reference = check_audio(reference, name="reference", dtype=np.float64)
    estimate = check_audio(estimate, name="estimate", dtype=np.float64)
    metrics = reconstruction_metrics(reference, estimate, sample_rate=sample_rate)
    return {key: float(value[0]) for key, value in metrics.items()}


@dataclass(frozen=True)
class MetricSummary(JsonRecord):
    """One metric over many sounds: statistics of its finite values.

    ``mean``, ``median``, ``std``, ``min``, ``max`` are None when no value is
    finite; ``n`` values were used and ``n_excluded`` non-finite ones left out
    (e.g. spectral convergence against a silent reference).
    """

    mean: float | None
    median: float | None
    std: float | None
    min: float | None
    max: float | None
    n: int
    n_excluded: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "n_excluded": self.n_excluded,
            "mean": self.mean,
            "median": self.median,
            "std": self.std,
            "min": self.min,
            "max": self.max,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricSummary:
        def number(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        return cls(
            mean=number("mean"),
            median=number("median"),
            std=number("std"),
            min=number("min"),
            max=number("max"),
            n=int(data["n"]),
            n_excluded=int(data.get("n_excluded", 0)),
        )

    def stat(self, field: str) -> float | None:
        """``"mean"``, ``"median"``, ``"std"``, ``"min"`` or ``"max"``."""
        if field not in _STATISTICS:
            raise InverSynthError(f"statistic must be one of {_STATISTICS}, got {field!r}")
        value: float | None = getattr(self, field)
        return value


_STATISTICS = ("mean", "median", "std", "min", "max")


def summarize(metrics: Mapping[str, np.ndarray]) -> dict[str, MetricSummary]:
    """Mean, median, standard deviation, min and max of each metric (the paper's Table 4).

    Parameters
    ----------
    metrics : mapping of str -> np.ndarray [n]

    Returns
    -------
    summary : dict of str -> MetricSummary
        Over the finite values of each metric; non-finite ones are counted
        and left out.
    """
    out: dict[str, MetricSummary] = {}
    for key, values in metrics.items():
        v = np.asarray(values, dtype=np.float64).ravel()
        finite = v[np.isfinite(v)]
        some = finite.size > 0
        out[key] = MetricSummary(
            mean=float(np.mean(finite)) if some else None,
            median=float(np.median(finite)) if some else None,
            std=float(np.std(finite)) if some else None,
            min=float(np.min(finite)) if some else None,
            max=float(np.max(finite)) if some else None,
            n=int(finite.size),
            n_excluded=int(v.size - finite.size),
        )
    return out


def format_metric(key: str, value: float | None) -> str:
    """A metric for a table: correlations in percent (as the paper), others to 3-4 digits.

    ``None`` (no value) shows as ``-``, a non-finite value as ``inf``.
    """
    if value is None:
        return "-"
    v = float(value)
    if not math.isfinite(v):
        return "inf" if v > 0 else "-inf" if v < 0 else "nan"
    if key.startswith("rho"):
        return f"{100 * v:.2f}"
    if abs(v) >= 100:
        return f"{v:.1f}"
    return f"{v:.2f}" if abs(v) >= 10 else f"{v:.3f}"


def metric_heading(key: str) -> str:
    """A metric's column heading with its unit: ``rho_STFT (%)``, ``F_delta (dB)``, ``SC``."""
    m = METRICS[key]
    unit = "%" if key.startswith("rho") else m.unit
    return m.label + (f" ({unit})" if unit else "")


def format_metrics(metrics: Mapping[str, float]) -> str:
    """One sound's metrics on one line: rho in percent, the others in their units."""
    parts = []
    for key, info in METRICS.items():
        if key not in metrics:
            continue
        v = metrics[key]
        if key.startswith("rho"):
            parts.append(f"{info.label} {100 * v:.1f}%")
        elif not np.isfinite(v):
            parts.append(f"{info.label} undefined")
        else:
            unit = f" {info.unit}" if info.unit else ""
            text = f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.3g}"
            parts.append(f"{info.label} {text}{unit}")
    return ", ".join(parts)
