"""The pitch of a sound: the note a synth plays to match it.

A synth patch sounds at a pitch that depends on the note played, so a
matcher needs the note of the sound it matches. :func:`estimate_pitch` runs
probabilistic YIN (``librosa.pyin``) over the sound and takes the median
fundamental of its voiced frames; a sound with too few voiced frames (noise,
a drum, a bell) has no pitch (``None``), and the matcher keeps its synth's own
note.

>>> pitch = estimate_pitch(audio, sample_rate=16384)
>>> pitch.note, pitch.name  # 57, "A3"
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import InverSynthError

__all__ = ["MIN_VOICED_FRACTION", "Pitch", "estimate_pitch", "note_name"]

LOWEST_HZ = 32.70  # C1
HIGHEST_HZ = 2093.0  # C7
MIN_VOICED_FRACTION = 0.25  # fewer voiced frames than this: no pitch
_MIN_PROBABILITY = 0.5  # a voiced frame's least voicing probability
_FRAME_S = 0.125  # pyin's frame: two periods of C1 and more
_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(note: int) -> str:
    """The name of a MIDI note, with its octave: 60 -> ``"C4"``, 57 -> ``"A3"``."""
    return f"{_NOTE_NAMES[int(note) % 12]}{int(note) // 12 - 1}"


@dataclass(frozen=True)
class Pitch:
    """A sound's pitch, or its absence.

    Attributes
    ----------
    hz : float or None
        Median fundamental of the voiced frames, Hz.
    midi : float or None
        The same as a fractional MIDI note (69.0 = A4 = 440 Hz).
    voiced_fraction : float
        Share of the frames pyin found voiced, in [0, 1].
    """

    hz: float | None
    midi: float | None
    voiced_fraction: float

    @property
    def note(self) -> int | None:
        """The nearest MIDI note, 0 to 127."""
        return None if self.midi is None else int(min(127, max(0, round(self.midi))))

    @property
    def name(self) -> str | None:
        return None if self.note is None else note_name(self.note)

    @property
    def cents(self) -> float | None:
        """How far the pitch is from its note, in cents (-50 to 50)."""
        if self.midi is None or self.note is None:
            return None
        return 100.0 * (self.midi - self.note)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hz": self.hz,
            "midi": self.midi,
            "note": self.note,
            "name": self.name,
            "cents": self.cents,
            "voiced_fraction": self.voiced_fraction,
        }


def estimate_pitch(
    audio: np.ndarray,
    *,
    sample_rate: int,
    lowest_hz: float = LOWEST_HZ,
    highest_hz: float = HIGHEST_HZ,
) -> Pitch:
    """The pitch of a mono sound.

    Parameters
    ----------
    audio : np.ndarray [n_samples], float
    sample_rate : int
        Hz.
    lowest_hz, highest_hz : float
        The range searched (default C1 to C7).

    Returns
    -------
    Pitch
        ``hz`` and ``midi`` None when fewer than :data:`MIN_VOICED_FRACTION` of
        the frames are voiced.
    """
    import librosa

    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1 or not np.isfinite(x).all():
        raise InverSynthError(f"pitch needs a finite mono sound, got shape {x.shape}")
    if not 0 < lowest_hz < highest_hz < sample_rate / 2:
        raise InverSynthError(
            f"pitch range {lowest_hz}-{highest_hz} Hz must lie below half the sample rate "
            f"({sample_rate} Hz)"
        )
    frame = 2 ** math.ceil(math.log2(max(_FRAME_S * sample_rate, 4 * sample_rate / lowest_hz)))
    if x.size < frame or not np.any(x):
        return Pitch(hz=None, midi=None, voiced_fraction=0.0)
    f0, voiced, probability = librosa.pyin(
        x, fmin=lowest_hz, fmax=highest_hz, sr=sample_rate, frame_length=frame
    )  # [n_frames]: Hz (NaN unvoiced), bool, [0, 1]
    # pyin's voicing path marks most frames of white noise voiced, at a probability
    # near 0: a frame counts when pyin is also fairly sure of it.
    voiced = voiced & (probability >= _MIN_PROBABILITY)
    fraction = float(np.mean(voiced)) if voiced.size else 0.0
    if fraction < MIN_VOICED_FRACTION:
        return Pitch(hz=None, midi=None, voiced_fraction=fraction)
    hz = float(np.median(f0[voiced]))
    return Pitch(hz=hz, midi=float(librosa.hz_to_midi(hz)), voiced_fraction=fraction)
