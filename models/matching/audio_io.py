"""Reading sounds to match, whatever their format, and writing audio out.

:func:`read_audio` reads WAV, FLAC, OGG/Vorbis, MP3 (and anything else
libsndfile reads) at any sample rate and channel count, with librosa's
decoders as a fallback. :func:`load_for_model` turns such a file into what a
model takes: mono, at the model's sample rate, exactly its length, and says
what it had to change (:attr:`ModelInput.notes`) so that nothing happens
silently. Bad files (missing, unreadable, empty, silent, NaN) raise
:class:`~generators.errors.InverSynthError` with a one-line message.

Audio arrays are checked where they enter the toolkit's functions by
:func:`generators.validate.check_audio` (shape, length, finite samples).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from generators.errors import InverSynthError
from generators.schema import SILENCE_PEAK
from generators.validate import check_audio

__all__ = [
    "AUDIO_EXTENSIONS",
    "ModelInput",
    "fit_length",
    "load_for_model",
    "read_audio",
    "resample",
    "to_mono",
    "wav_bytes",
    "write_wav",
]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff")


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read an audio file as it is.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    audio : np.ndarray [n_samples, n_channels], float32
    sample_rate : int
        Hz, the file's own.

    Raises
    ------
    InverSynthError
        The file is missing, not a file, or no decoder can read it.
    """
    p = Path(path)
    if not p.exists():
        raise InverSynthError(f"{str(p)!r} does not exist")
    if not p.is_file():
        raise InverSynthError(f"{str(p)!r} is not a file")
    import soundfile as sf

    try:
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
        return np.asarray(data, dtype=np.float32), int(rate)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as first:
        soundfile_error = str(first)
    # libsndfile reads MP3 from 1.1 on; older builds and other containers
    # may still decode through librosa's audioread fallback.
    try:
        import warnings

        import librosa

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y, rate = librosa.load(str(p), sr=None, mono=False)
    except Exception as exc:  # any decoder failure means the same thing here
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InverSynthError(
            f"cannot read {str(p)!r} as audio ({soundfile_error}; {detail})"
        ) from None
    y = np.asarray(y, dtype=np.float32)
    y = y[:, None] if y.ndim == 1 else y.T  # librosa: [channels, n] -> [n, channels]
    return y, int(rate)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average the channels: [n_samples, n_channels] -> [n_samples]."""
    a = np.asarray(audio, dtype=np.float32)
    return a if a.ndim == 1 else a.mean(axis=1, dtype=np.float64).astype(np.float32)


def resample(audio: np.ndarray, *, orig_rate: int, target_rate: int) -> np.ndarray:
    """Band-limited resampling of [n_samples] audio (soxr "HQ", librosa's default method)."""
    if orig_rate == target_rate:
        return np.asarray(audio, dtype=np.float32)
    # soxr directly: librosa.resample gives the same samples but costs seconds of
    # first-call compilation in every process.
    import soxr  # type: ignore[import-untyped]

    y = soxr.resample(np.asarray(audio, dtype=np.float32), orig_rate, target_rate, quality="HQ")
    return np.asarray(y, dtype=np.float32)


def fit_length(audio: np.ndarray, n_samples: int) -> np.ndarray:
    """Pad with silence at the end, or keep the first ``n_samples``."""
    a = np.asarray(audio, dtype=np.float32)
    if a.shape[0] >= n_samples:
        return a[:n_samples].copy()
    return np.concatenate([a, np.zeros(n_samples - a.shape[0], dtype=np.float32)])


@dataclass
class ModelInput:
    """A sound prepared for a model.

    Attributes
    ----------
    audio : np.ndarray [n_samples], float32
        Mono, at ``sample_rate``, exactly the model's length.
    sample_rate : int
        Hz (the model's).
    source_sample_rate, source_channels, source_n_samples : int
        What the file had.
    notes : list of str
        Every change made to fit the model, for the user to read.
    """

    audio: np.ndarray
    sample_rate: int
    source_sample_rate: int
    source_channels: int
    source_n_samples: int
    notes: list[str] = field(default_factory=list)


def load_for_model(path: str | Path, *, sample_rate: int, n_samples: int) -> ModelInput:
    """Read a sound and fit it to a model: mono, resampled, padded or trimmed.

    Parameters
    ----------
    path : path-like
        Any format :func:`read_audio` reads.
    sample_rate : int
        The model's sample rate (Hz).
    n_samples : int
        The model's input length.

    Returns
    -------
    ModelInput

    Raises
    ------
    InverSynthError
        Missing or unreadable file, no samples, NaN or infinite samples, or
        silence (peak below 1e-4, which the synth's datasets never contain as
        a target worth matching).
    """
    raw, rate = read_audio(path)  # [n, channels]
    name = str(path)
    if raw.shape[0] == 0 or raw.shape[1] == 0:
        raise InverSynthError(f"{name!r} contains no audio samples")
    notes: list[str] = []
    channels = raw.shape[1]
    audio = check_audio(to_mono(raw), name=repr(name))  # NaN in any channel stays NaN
    if channels > 1:
        notes.append(f"mixed {channels} channels to mono")
    if rate != sample_rate:
        audio = resample(audio, orig_rate=rate, target_rate=sample_rate)
        notes.append(f"resampled from {rate} Hz to {sample_rate} Hz")
    length_s = audio.shape[0] / sample_rate
    model_s = n_samples / sample_rate
    if audio.shape[0] < n_samples:
        notes.append(
            f"padded with {model_s - length_s:.3f} s of silence at the end "
            f"(the sound lasts {length_s:.3f} s, the model takes {model_s:.3f} s)"
        )
    elif audio.shape[0] > n_samples:
        notes.append(
            f"kept the first {model_s:.3f} s of {length_s:.3f} s (the model takes {model_s:.3f} s)"
        )
    audio = fit_length(audio, n_samples)
    peak = float(np.max(np.abs(audio)))
    if not peak >= SILENCE_PEAK:
        where = "" if raw.shape[0] / rate <= model_s else f" in its first {model_s:.3f} s"
        raise InverSynthError(f"{name!r} is silent{where} (peak {peak:.2g})")
    if peak > 1.0:
        notes.append(f"peak {peak:.3f} exceeds 1 (the synth's sounds stay within [-1, 1])")
    return ModelInput(
        audio=audio,
        sample_rate=int(sample_rate),
        source_sample_rate=int(rate),
        source_channels=int(channels),
        source_n_samples=int(raw.shape[0]),
        notes=notes,
    )


def _pcm16(audio: np.ndarray) -> np.ndarray:
    return np.clip(check_audio(audio, name="audio to write", dtype=np.float64), -1.0, 1.0)


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write [n_samples] audio as 16-bit PCM WAV (plays everywhere), clipped to [-1, 1]."""
    import soundfile as sf

    p = Path(path)
    sf.write(str(p), _pcm16(audio), int(sample_rate), subtype="PCM_16", format="WAV")
    return p


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """The bytes of :func:`write_wav`'s file, for embedding."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, _pcm16(audio), int(sample_rate), subtype="PCM_16", format="WAV")
    return buffer.getvalue()
