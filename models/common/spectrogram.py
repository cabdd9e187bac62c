"""The spectrogram front end: a log-magnitude STFT computed by kapre layers inside the model.

The framing of :mod:`models.common.spectral` (window 512, Hann, hop 256, 257
bins, zero-padded at the end: 16384 samples give the paper's 64 x 257 input),
magnitude in dB (kapre's ``10 * log10(max(|X|, 1e-5))``, floored 80 dB below
each example's peak).

Only the waveform is stored in a dataset; the spectrogram is computed on the
fly (on the GPU when there is one), so no spectrogram ever touches the disk.
"""

from __future__ import annotations

import kapre  # noqa: F401 - registers kapre's layers for loading saved models
from kapre import STFT, Magnitude, MagnitudeToDecibel
from keras import layers

from models.common.spectral import HOP_LENGTH, N_FFT

__all__ = ["log_stft_layers"]


def log_stft_layers(*, data_format: str = "channels_last") -> list[layers.Layer]:
    """Layers that map audio [batch, n_samples] to a dB spectrogram.

    Returns
    -------
    layers : list of keras layers
        Apply in order. Output [batch, n_frames, 257, 1] for
        ``channels_last``, [batch, 1, n_frames, 257] for ``channels_first``.
    """
    return [
        # kapre reads channels_last audio as [batch, n_samples, channels].
        layers.Reshape((-1, 1), name="audio_channel"),
        STFT(
            n_fft=N_FFT,
            win_length=N_FFT,
            hop_length=HOP_LENGTH,
            pad_end=True,
            input_data_format="channels_last",
            output_data_format=data_format,
            name="stft",
        ),
        Magnitude(name="magnitude"),
        MagnitudeToDecibel(name="decibel"),
    ]
