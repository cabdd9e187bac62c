"""The STFT framing shared by the models' front end and the reconstruction metrics.

Window 512 (periodic Hann), hop 256, 257 bins; the signal is zero-padded at
its end to a whole number of hops, so 16384 samples give 64 frames: the
paper's 64 x 257 input. Plain constants, so that the metrics can use them
without importing TensorFlow.
"""

from __future__ import annotations

__all__ = ["HOP_LENGTH", "N_BINS", "N_FFT", "n_frames"]

N_FFT = 512
HOP_LENGTH = 256
N_BINS = N_FFT // 2 + 1  # 257


def n_frames(n_samples: int) -> int:
    """STFT frames of ``n_samples`` samples, padded at the end: 64 for 16384."""
    return -(-int(n_samples) // HOP_LENGTH)
