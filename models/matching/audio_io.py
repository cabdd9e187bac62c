"""Reading sounds to match, whatever their format, and writing audio out.

:func:`read_audio` reads WAV, FLAC, OGG/Vorbis, MP3 (and anything else
libsndfile reads) at any sample rate and channel count, with librosa's
decoders as a fallback. :func:`load_for_model` turns such a file into what a
model takes: mono, at the model's sample rate, exactly its length (the part
from ``offset_s`` on; :func:`load_segments` cuts several parts), and says
which part it kept and what it had to change (:attr:`ModelInput.notes`) so
that nothing happens silently. Bad files (missing, unreadable, empty, silent, NaN) raise
:class:`~core.errors.InverSynthError` with a one-line message.

Audio arrays are checked where they enter the toolkit's functions by
:func:`core.checks.check_audio` (shape, length, finite samples).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.checks import check_audio
from core.errors import InverSynthError
from core.storage import write_atomic
from generators.schema import SILENCE_PEAK

__all__ = [
    "AUDIO_EXTENSIONS",
    "ModelInput",
    "fit_length",
    "load_for_model",
    "load_segments",
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
    offset_s : float
        Where the part the model heard starts in the source, in seconds.
    """

    audio: np.ndarray
    sample_rate: int
    source_sample_rate: int
    source_channels: int
    source_n_samples: int
    notes: list[str] = field(default_factory=list)
    offset_s: float = 0.0

    @property
    def source_duration_s(self) -> float:
        """Length of the source in seconds."""
        return self.source_n_samples / self.source_sample_rate

    @property
    def segment_s(self) -> tuple[float, float]:
        """The part of the source the model heard: (start, end) in seconds."""
        model_s = self.audio.shape[0] / self.sample_rate
        return self.offset_s, min(self.offset_s + model_s, self.source_duration_s)


@dataclass(frozen=True)
class _Source:
    """A sound file read, mixed to mono and resampled to the model's rate."""

    name: str
    audio: np.ndarray  # [n], float32, at the model's rate
    rate: int  # the file's
    channels: int
    n_samples: int  # the file's
    notes: tuple[str, ...]


def _read_source(path: str | Path, sample_rate: int) -> _Source:
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
    return _Source(name, audio, int(rate), int(channels), int(raw.shape[0]), tuple(notes))


def _segment_note(
    start: int, available: int, n_samples: int, sample_rate: int, *, hint: bool
) -> str | None:
    """What part of a sound ``available`` samples long the segment at ``start`` holds."""
    length_s, model_s = available / sample_rate, n_samples / sample_rate
    start_s = start / sample_rate
    end_s = min(start + n_samples, available) / sample_rate
    padding_s = model_s - (end_s - start_s)
    if start == 0 and available <= n_samples:
        if available == n_samples:
            return None
        return (
            f"padded with {padding_s:.3f} s of silence at the end "
            f"(the sound lasts {length_s:.3f} s, the model takes {model_s:.3f} s)"
        )
    where = (
        f"kept the first {model_s:.3f} s of {length_s:.3f} s"
        if start == 0
        else f"matched {start_s:.3f} s to {end_s:.3f} s of {length_s:.3f} s"
    )
    padded = f", padded with {padding_s:.3f} s of silence" if start + n_samples > available else ""
    more = "; --offset_s picks another part, --segments several" if hint else ""
    return f"{where}{padded} (the model takes {model_s:.3f} s{more})"


def _check_seconds(value: float, name: str, *, positive: bool = False) -> float:
    v = float(value)
    if not np.isfinite(v) or v < 0 or (positive and v == 0):
        bound = "> 0" if positive else ">= 0"
        raise InverSynthError(f"{name} must be a number of seconds {bound}, got {value!r}")
    return v


def _cut(
    source: _Source, start: int, *, sample_rate: int, n_samples: int, hint: bool
) -> ModelInput:
    """The model's input for the segment of ``source`` starting at sample ``start``."""
    notes = list(source.notes)
    note = _segment_note(start, source.audio.shape[0], n_samples, sample_rate, hint=hint)
    if note is not None:
        notes.append(note)
    audio = fit_length(source.audio[start:], n_samples)
    peak = float(np.max(np.abs(audio)))
    if peak > 1.0:
        notes.append(f"peak {peak:.3f} exceeds 1 (the synth's sounds stay within [-1, 1])")
    return ModelInput(
        audio=audio,
        sample_rate=int(sample_rate),
        source_sample_rate=source.rate,
        source_channels=source.channels,
        source_n_samples=source.n_samples,
        notes=notes,
        offset_s=start / sample_rate,
    )


def _is_silent(model_input: ModelInput) -> bool:
    return not float(np.max(np.abs(model_input.audio))) >= SILENCE_PEAK


def _silent_error(name: str, model_input: ModelInput) -> InverSynthError:
    start_s, end_s = model_input.segment_s
    peak = float(np.max(np.abs(model_input.audio)))
    if model_input.offset_s == 0 and end_s >= model_input.source_duration_s:
        return InverSynthError(f"{name!r} is silent (peak {peak:.2g})")
    where = (
        f"in its first {end_s:.3f} s"
        if model_input.offset_s == 0
        else f"from {start_s:.3f} s to {end_s:.3f} s"
    )
    return InverSynthError(
        f"{name!r} is silent {where} (peak {peak:.2g}); --offset_s picks another part"
    )


def load_for_model(
    path: str | Path, *, sample_rate: int, n_samples: int, offset_s: float = 0.0
) -> ModelInput:
    """Read a sound and fit it to a model: mono, resampled, cut or padded.

    Parameters
    ----------
    path : path-like
        Any format :func:`read_audio` reads.
    sample_rate : int
        The model's sample rate (Hz).
    n_samples : int
        The model's input length.
    offset_s : float >= 0
        Where the part the model hears starts, in seconds (padded with silence
        at the end when fewer than ``n_samples`` follow).

    Returns
    -------
    ModelInput
        Its notes say which part was kept and everything changed.

    Raises
    ------
    InverSynthError
        Missing or unreadable file, no samples, NaN or infinite samples, an
        offset at or past the end, or silence (peak below 1e-4, which the
        synth's datasets never contain as a target worth matching).
    """
    (segment,) = load_segments(
        path, sample_rate=sample_rate, n_samples=n_samples, offset_s=offset_s
    )
    return segment


def load_segments(
    path: str | Path,
    *,
    sample_rate: int,
    n_samples: int,
    offset_s: float = 0.0,
    n_segments: int = 1,
    hop_s: float | None = None,
) -> list[ModelInput]:
    """Read a sound and cut it into model inputs: segments ``hop_s`` apart from ``offset_s``.

    Parameters
    ----------
    path : path-like
    sample_rate, n_samples : int
        The model's rate (Hz) and input length.
    offset_s : float >= 0
        Start of the first segment, in seconds.
    n_segments : int > 0
        Segments wanted; only those that start before the sound ends are cut.
    hop_s : float > 0, optional
        Seconds from one segment's start to the next; default the model's
        length (segments end to end).

    Returns
    -------
    list of ModelInput
        In time order, each saying which part it holds. With several
        segments, silent ones are left out (the first one kept says so).

    Raises
    ------
    InverSynthError
        As :func:`load_for_model`; with several segments, when all are silent.
    """
    offset_s = _check_seconds(offset_s, "--offset_s")
    if int(n_segments) != n_segments or n_segments < 1:
        raise InverSynthError(f"--segments must be a positive integer, got {n_segments!r}")
    hop = n_samples
    if hop_s is not None:
        hop = max(1, round(_check_seconds(hop_s, "--hop_s", positive=True) * sample_rate))
    source = _read_source(path, sample_rate)
    available = source.audio.shape[0]
    start = round(offset_s * sample_rate)
    if start >= available:
        raise InverSynthError(
            f"--offset_s {offset_s:g} is at or past the end of {source.name!r} "
            f"({available / sample_rate:.3f} s)"
        )
    starts = [s for s in range(start, start + int(n_segments) * hop, hop) if s < available]
    segments = [
        _cut(source, s, sample_rate=sample_rate, n_samples=n_samples, hint=n_segments == 1)
        for s in starts
    ]
    if n_segments == 1:
        if _is_silent(segments[0]):
            raise _silent_error(source.name, segments[0])
        return segments
    kept = [s for s in segments if not _is_silent(s)]
    if not kept:
        raise InverSynthError(f"{source.name!r} is silent in all {len(segments)} segments")
    notes = []
    if len(starts) < n_segments:
        notes.append(f"the sound has room for {len(starts)} of the {n_segments} segments asked for")
    silent = [f"{s.offset_s:.3f} s" for s in segments if _is_silent(s)]
    if silent:
        notes.append(f"left out {len(silent)} silent segment(s), at {', '.join(silent)}")
    kept[0].notes.extend(notes)
    return kept


def _pcm16(audio: np.ndarray) -> np.ndarray:
    return np.clip(check_audio(audio, name="audio to write", dtype=np.float64), -1.0, 1.0)


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write [n_samples] audio as 16-bit PCM WAV (plays everywhere), clipped to [-1, 1].

    Made in memory and written whole or not at all (:func:`core.storage.write_atomic`).
    """
    return write_atomic(path, wav_bytes(audio, sample_rate))


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """The bytes of :func:`write_wav`'s file, for embedding."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, _pcm16(audio), int(sample_rate), subtype="PCM_16", format="WAV")
    return buffer.getvalue()
