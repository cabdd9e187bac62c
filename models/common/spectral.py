"""Every spectral transform of the toolkit, defined once, as small pure functions on arrays.

NumPy and SciPy only (SciPy's FFT is imported at the first transform: the
commands' parsers read the constants here and start without it), so the
reconstruction metrics, the matching distance, the lookup and worker
processes use it without TensorFlow. The models' own front ends are Keras
graph code (:mod:`models.common.spectrogram`, :class:`models.common.own_models.LogMel`);
they take their framing, floors and filterbank from here.

The STFT
    Periodic Hann window (:func:`hann_window`) of :data:`N_FFT` = 512 samples,
    hop :data:`HOP_LENGTH` = 256, :data:`N_BINS` = 257 bins; the signal is
    zero-padded at its end to a whole number of hops (:func:`n_frames`: 16384
    samples give 64 frames, the paper's 64 x 257 input). The matching distance
    frames other window lengths and hops the same way (:func:`frame_signal`).
dB, and its floors (two concepts, two names)
    dB relative to a full-scale sine (:func:`full_scale_magnitude`: a sine of
    amplitude 1 centred on a bin reads 0 dB), floored at
    :data:`ABSOLUTE_FLOOR_DB` = -100 dB: the reconstruction metrics and the
    matching distance. :data:`PEAK_FLOOR_DB` = -80 dB is relative to each
    example's loudest cell: the log-mel input of our models.
Mel scales and filterbanks
    :func:`hz_to_mel` / :func:`mel_to_hz` on the HTK scale or Slaney's
    (librosa's default); :func:`mel_filterbank`, the triangular filters, peak 1
    or of unit area.
MFCC
    :func:`mfcc`: :data:`N_MFCC` = 20 coefficients (DCT-II, orthonormal) of the
    floored dB power in :data:`N_MFCC_MELS` = 40 Slaney mel bands.

``tests/test_spectral.py`` checks each against librosa.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from core.checks import check_audio, check_positive_int

__all__ = [
    "ABSOLUTE_FLOOR_DB",
    "HOP_LENGTH",
    "LOG_MEL_POWER_FLOOR",
    "N_BINS",
    "N_FFT",
    "N_INPUT_MELS",
    "N_MFCC",
    "N_MFCC_MELS",
    "PEAK_FLOOR_DB",
    "band_power",
    "frame_signal",
    "full_scale_magnitude",
    "full_scale_window",
    "hann_window",
    "hz_to_mel",
    "log_magnitude_stft",
    "magnitude_stft",
    "magnitude_to_db",
    "mel_filterbank",
    "mel_to_hz",
    "mfcc",
    "mfcc_from_magnitude",
    "n_frames",
    "power_stft",
    "power_to_db",
]

N_FFT = 512
HOP_LENGTH = 256
N_BINS = N_FFT // 2 + 1  # 257

ABSOLUTE_FLOOR_DB = -100.0  # dB re a full-scale sine; float32 rendering noise sits far below
PEAK_FLOOR_DB = -80.0  # dB re each example's loudest cell: the log-mel input's floor
LOG_MEL_POWER_FLOOR = 1e-10  # the log-mel input's smallest power before dB (no log of 0)

N_INPUT_MELS = 128  # mel bands of our models' log-mel input
N_MFCC_MELS = 40  # the metrics' MFCC bands: 128 would leave empty filters at 257 FFT bins
N_MFCC = 20

_DB_PER_NEPER = np.float32(10.0 / np.log(10.0))  # 10 log10(p) = this * ln(p)


# --------------------------------------------------------------------------
# The STFT
# --------------------------------------------------------------------------


def n_frames(n_samples: int, *, hop_length: int = HOP_LENGTH) -> int:
    """STFT frames of ``n_samples`` samples, zero-padded at the end: 64 for 16384 at hop 256."""
    return -(-int(n_samples) // int(hop_length))


@cache
def hann_window(*, n_fft: int) -> np.ndarray:
    """Periodic Hann window (``tf.signal.stft``'s and librosa's): float64 [n_fft], read-only."""
    n = np.arange(n_fft)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / n_fft)
    window.flags.writeable = False  # one array shared by every caller
    return window


def full_scale_magnitude(*, n_fft: int) -> float:
    """STFT magnitude of a full-scale sine centred on a bin: ``sum(window) / 2`` (128.0 for 512)."""
    return float(np.sum(hann_window(n_fft=n_fft)) / 2.0)


@cache
def full_scale_window(*, n_fft: int) -> np.ndarray:
    """The Hann window over :func:`full_scale_magnitude`: float32 [n_fft], read-only.

    Its STFT reads 1.0 (0 dB) for a full-scale sine centred on a bin.
    """
    window = hann_window(n_fft=n_fft)
    scaled = (window / (np.sum(window) / 2.0)).astype(np.float32)
    scaled.flags.writeable = False
    return scaled


def frame_signal(audio: np.ndarray, *, n_fft: int, hop_length: int) -> np.ndarray:
    """Overlapping frames of audio zero-padded at its end to a whole number of hops.

    Parameters
    ----------
    audio : np.ndarray [batch, n_samples]
    n_fft : int
        Frame length, samples.
    hop_length : int
        Samples between frames.

    Returns
    -------
    frames : np.ndarray [batch, n_frames, n_fft], ``audio``'s dtype
        A view of one zero-padded copy (no copy per frame);
        ``n_frames = ceil(n_samples / hop_length)``.
    """
    frames = n_frames(audio.shape[1], hop_length=hop_length)
    padded = np.zeros((audio.shape[0], (frames - 1) * hop_length + n_fft), dtype=audio.dtype)
    padded[:, : audio.shape[1]] = audio
    return np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=1)[:, ::hop_length]


def magnitude_stft(
    audio: np.ndarray, *, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH
) -> np.ndarray:
    """Magnitude STFT in float64 (NumPy's FFT), framed like the models' input: the metrics' own.

    Parameters
    ----------
    audio : np.ndarray [n_samples] or [batch, n_samples], float
    n_fft, hop_length : int
        Window and hop, samples.

    Returns
    -------
    magnitude : np.ndarray [batch, n_frames, n_fft // 2 + 1], float64
        ``|X|`` (linear, not normalized); ``n_frames = ceil(n_samples / hop_length)``.
    """
    x = check_audio(audio, name="audio", batch=True, dtype=np.float64)
    framed = frame_signal(x, n_fft=n_fft, hop_length=hop_length)  # [batch, n_frames, n_fft]
    return np.abs(np.fft.rfft(framed * hann_window(n_fft=n_fft), axis=-1))


def power_stft(audio: np.ndarray, *, n_fft: int, hop_length: int) -> np.ndarray:
    """Power STFT relative to a full-scale sine, float32 throughout: the matching distance's.

    Parameters
    ----------
    audio : np.ndarray [batch, n_samples], float32
    n_fft, hop_length : int
        Window and hop, samples.

    Returns
    -------
    power : np.ndarray [batch, n_frames, n_fft // 2 + 1], float32
        1.0 (0 dB) where a full-scale sine is centred on a bin.
    """
    import scipy.fft  # deferred: see the module docstring

    framed = frame_signal(audio, n_fft=n_fft, hop_length=hop_length)
    spectrum = scipy.fft.rfft(framed * full_scale_window(n_fft=n_fft), axis=-1)  # complex64
    return np.asarray(spectrum.real**2 + spectrum.imag**2, dtype=np.float32)


def magnitude_to_db(magnitude: np.ndarray, *, n_fft: int = N_FFT) -> np.ndarray:
    """Magnitude (of :func:`magnitude_stft`) -> dB re a full-scale sine, >= :data:`ABSOLUTE_FLOOR_DB`.

    Parameters
    ----------
    magnitude : np.ndarray [..., n_fft // 2 + 1], float64
    n_fft : int
        The STFT's window, samples (it sets the full-scale magnitude).

    Returns
    -------
    db : np.ndarray, ``magnitude``'s shape, float64
    """
    floor = 10.0 ** (ABSOLUTE_FLOOR_DB / 20.0)
    return 20.0 * np.log10(np.maximum(magnitude / full_scale_magnitude(n_fft=n_fft), floor))


def power_to_db(power: np.ndarray, *, floor_db: float) -> np.ndarray:
    """Power re a full-scale sine (of :func:`power_stft`) -> dB, floored at ``floor_db``, float32.

    Parameters
    ----------
    power : np.ndarray [...], float32
    floor_db : float
        dB re a full-scale sine.

    Returns
    -------
    db : np.ndarray, ``power``'s shape, float32
    """
    floor_power = np.float32(10.0 ** (floor_db / 10.0))
    # np.log is several times faster than np.log10 on float32.
    return _DB_PER_NEPER * np.log(np.maximum(power, floor_power))


def log_magnitude_stft(audio: np.ndarray) -> np.ndarray:
    """Log-magnitude STFT in dB re a full-scale sine, floored at :data:`ABSOLUTE_FLOOR_DB`.

    Parameters
    ----------
    audio : np.ndarray [n_samples] or [batch, n_samples], float

    Returns
    -------
    db : np.ndarray [batch, n_frames, 257], float64, >= ABSOLUTE_FLOOR_DB
    """
    return magnitude_to_db(magnitude_stft(audio))


# --------------------------------------------------------------------------
# Mel scales and filterbanks
# --------------------------------------------------------------------------


def hz_to_mel(hz: np.ndarray | float, *, htk: bool) -> np.ndarray:
    """Hz -> mel: HTK's ``2595 log10(1 + f / 700)``, or Slaney's (linear below 1 kHz, log above).

    Parameters
    ----------
    hz : array-like [...], Hz
    htk : bool
        The HTK scale, else Slaney's (librosa's default).

    Returns
    -------
    mel : np.ndarray, ``hz``'s shape, float64
    """
    hz = np.asarray(hz, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    linear = hz / (200.0 / 3.0)
    logarithmic = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, logarithmic, linear)


def mel_to_hz(mel: np.ndarray | float, *, htk: bool) -> np.ndarray:
    """The inverse of :func:`hz_to_mel`: mel [...] -> Hz [...], float64."""
    mel = np.asarray(mel, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    linear = mel * (200.0 / 3.0)
    logarithmic = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, logarithmic, linear)


@cache
def mel_filterbank(
    *,
    sample_rate: int,
    n_fft: int = N_FFT,
    n_mels: int = N_INPUT_MELS,
    htk: bool = True,
    area_normalized: bool = False,
    min_width_bins: bool = False,
) -> np.ndarray:
    """Triangular mel filters from 0 Hz to Nyquist.

    Parameters
    ----------
    sample_rate : int
        Hz.
    n_fft : int
        FFT length, samples: ``n_fft // 2 + 1`` bins.
    n_mels : int
        Bands.
    htk : bool
        The HTK mel scale, else Slaney's.
    area_normalized : bool
        Each filter scaled to unit area (librosa's ``norm="slaney"``), else
        peak 1 (a sine in the middle of a band keeps its STFT level, so dB mean
        the same at every resolution).
    min_width_bins : bool
        Below the frequency where mel bands would get narrower than one FFT
        bin, space them by one bin, so that no band is empty.

    Returns
    -------
    weights : np.ndarray [n_fft // 2 + 1, n_mels], float64, read-only
        ``power_bins @ weights`` is the mel power. Without ``min_width_bins``,
        ``librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels,
        htk=htk, norm="slaney" if area_normalized else None).T``.
    """
    bins_hz = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)  # [n_bins]
    top_mel = hz_to_mel(sample_rate / 2.0, htk=htk)
    edges_hz = mel_to_hz(np.linspace(0.0, top_mel, n_mels + 2), htk=htk)  # [n_mels + 2]
    if min_width_bins:
        edges_hz = np.maximum(edges_hz, np.arange(n_mels + 2) * (bins_hz[1] - bins_hz[0]))
    lower, centre, upper = edges_hz[:-2], edges_hz[1:-1], edges_hz[2:]  # [n_mels] each
    rising = (bins_hz[:, None] - lower[None, :]) / (centre - lower)[None, :]  # [n_bins, n_mels]
    falling = (upper[None, :] - bins_hz[:, None]) / (upper - centre)[None, :]
    weights = np.maximum(0.0, np.minimum(rising, falling))  # <= 1: peak 1 at each centre
    if area_normalized:
        weights *= (2.0 / (upper - lower))[None, :]
    weights.flags.writeable = False  # one array shared by every caller
    return weights


def band_power(power: np.ndarray, *, filters: np.ndarray) -> np.ndarray:
    """Power spectra summed into bands.

    Parameters
    ----------
    power : np.ndarray [batch, n_frames, n_bins]
    filters : np.ndarray [n_bins, n_bands]
        Of :func:`mel_filterbank`, in ``power``'s dtype.

    Returns
    -------
    band_power : np.ndarray [batch, n_frames, n_bands]
    """
    # A 2-D product: NumPy's stacked (3-D) matmul does not use BLAS and is 50x slower.
    batch, frames, bins = power.shape
    return (power.reshape(batch * frames, bins) @ filters).reshape(batch, frames, -1)


# --------------------------------------------------------------------------
# MFCC
# --------------------------------------------------------------------------


@cache
def _mfcc_basis(sample_rate: int) -> np.ndarray:
    """The MFCCs' filters in librosa's layout: float64 [N_MFCC_MELS, 257], C-contiguous."""
    weights = mel_filterbank(
        sample_rate=sample_rate, n_mels=N_MFCC_MELS, htk=False, area_normalized=True
    )
    return np.ascontiguousarray(weights.T)


def mfcc_from_magnitude(magnitude: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """MFCCs of a magnitude STFT (of :func:`magnitude_stft`).

    Parameters
    ----------
    magnitude : np.ndarray [batch, n_frames, 257], float64
    sample_rate : int
        Hz; places the mel bands.

    Returns
    -------
    mfcc : np.ndarray [batch, n_frames, N_MFCC], float64
        DCT-II (orthonormal) of the dB mel power re a full-scale sine, floored
        at :data:`ABSOLUTE_FLOOR_DB`.
    """
    import scipy.fft  # deferred: see the module docstring

    power = (magnitude / full_scale_magnitude(n_fft=N_FFT)) ** 2  # [batch, n_frames, 257]
    mel = power @ _mfcc_basis(sample_rate).T  # [batch, n_frames, N_MFCC_MELS]
    mel_db = 10.0 * np.log10(np.maximum(mel, 10.0 ** (ABSOLUTE_FLOOR_DB / 10.0)))
    return np.asarray(scipy.fft.dct(mel_db, type=2, norm="ortho", axis=-1)[..., :N_MFCC])


def mfcc(audio: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """MFCCs of the metrics' STFT (librosa's definition, on the floored dB mel power).

    Parameters
    ----------
    audio : np.ndarray [n_samples] or [batch, n_samples], float
    sample_rate : int
        Hz; places the mel bands.

    Returns
    -------
    mfcc : np.ndarray [batch, n_frames, N_MFCC], float64
    """
    rate = check_positive_int(sample_rate, "sample_rate")
    return mfcc_from_magnitude(magnitude_stft(audio), sample_rate=rate)
