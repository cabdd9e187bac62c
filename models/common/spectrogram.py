"""The spectrogram front end: a log-magnitude STFT computed by kapre layers inside the model.

Window 512 (Hann), hop 256, 257 bins, magnitude in dB (kapre's
``10 * log10(max(|X|, 1e-5))``, floored 80 dB below each example's peak).
The signal is zero-padded at its end to a whole number of hops, so 16384
samples give 64 frames: the paper's 64 x 257 input.

Only the waveform is stored in a dataset; the spectrogram is computed on the
fly (on the GPU when there is one), so no spectrogram ever touches the disk.
"""

from __future__ import annotations

import kapre  # noqa: F401 - registers kapre's layers for loading saved models
from kapre import STFT, Magnitude, MagnitudeToDecibel
from keras import layers

__all__ = ["HOP_LENGTH", "N_BINS", "N_FFT", "log_stft_layers", "n_frames"]

N_FFT = 512
HOP_LENGTH = 256
N_BINS = N_FFT // 2 + 1  # 257
N_FRAMES_PAPER = 64  # frames of 16384 samples


def n_frames(n_samples: int) -> int:
    """STFT frames of ``n_samples`` samples (padded at the end): 64 for 16384."""
    return -(-int(n_samples) // HOP_LENGTH)


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
