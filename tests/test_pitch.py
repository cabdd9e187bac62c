"""The pitch of a sound: notes of known pitch, and sounds without one."""

from __future__ import annotations

import numpy as np
import pytest

from models.matching.pitch import estimate_pitch, note_name

RATE = 16384


def _saw(note: int, seconds: float = 1.0) -> np.ndarray:
    hz = 440.0 * 2 ** ((note - 69) / 12)
    t = np.arange(int(seconds * RATE)) / RATE
    partials = range(1, int(RATE / 2 / hz))
    y = sum(np.sin(2 * np.pi * k * hz * t) / k for k in partials)
    return (0.3 * y * np.exp(-1.5 * t)).astype(np.float32)


def _pluck(note: int, seconds: float = 1.0) -> np.ndarray:
    """A Karplus-Strong string: noise in a delay line of (period + 1/2) samples, low-passed."""
    period = round(RATE / (440.0 * 2 ** ((note - 69) / 12)) - 0.5)
    y = np.zeros(int(seconds * RATE))
    y[:period] = np.random.default_rng(note).uniform(-0.5, 0.5, period)
    for n in range(period, y.size):
        y[n] = 0.996 * 0.5 * (y[n - period] + y[n - period - 1])
    return y.astype(np.float32)


@pytest.mark.parametrize(
    ("kind", "note"), [(_saw, 40), (_saw, 57), (_saw, 69), (_saw, 81), (_pluck, 40), (_pluck, 52)]
)
def test_notes_of_known_pitch_are_found_to_within_a_third_of_a_semitone(kind, note) -> None:
    pitch = estimate_pitch(kind(note), sample_rate=RATE)
    assert pitch.midi is not None and abs(pitch.midi - note) < 0.33
    assert pitch.note == note and pitch.name == note_name(note)


def test_noise_and_silence_have_no_pitch() -> None:
    noise = np.random.default_rng(0).normal(0, 0.2, RATE).astype(np.float32)
    for sound in (noise, np.zeros(RATE, np.float32)):
        pitch = estimate_pitch(sound, sample_rate=RATE)
        assert pitch.midi is None and pitch.note is None
        assert pitch.to_dict()["name"] is None


def test_note_names() -> None:
    assert [note_name(n) for n in (60, 57, 69, 21, 61)] == ["C4", "A3", "A4", "A0", "C#4"]
