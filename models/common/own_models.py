"""Models of our own, beside the paper's: a log-mel front end and batch-normalized conv blocks.

``M1`` (row in :data:`models.common.model_table.MODELS`) learns more per CPU
second than the paper's C6. On a CPU, C6's time goes less to multiply-adds
than to moving its large early feature maps (32 x 129 x 32, then
16 x 65 x 71 per example) through memory, so M1 shrinks those first:

* a log-mel input, 64 frames x 128 mel bands, instead of 64 x 257 STFT bins:
  the same STFT (:mod:`models.common.spectral`), its power summed by fixed
  triangular mel filters (:func:`~models.common.spectral.mel_filterbank`,
  HTK scale, peak 1), spaced as pitch is (the
  synth's notes are on a log scale);
* a fixed input normalisation: dB relative to each example's peak, floored
  at -80 dB, mapped to [-1, 1] (the paper's net sees raw dB, tens of units);
* a patch stem: a 4 x 4 convolution with stride 4 and 48 filters (more
  outputs than its 16 inputs, so nothing is lost) makes 16 x 32 maps at once;
* every convolution followed by batch normalisation, then ReLU;
* one residual block (two 3 x 3 convolutions) at 4 x 8, for depth at little cost.

22 M multiply-adds per example against C6's 51 M, and maps a quarter the size.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops

from models.common.model_table import ConvSpec, ModelSpec
from models.common.spectral import (
    LOG_MEL_POWER_FLOOR,
    N_INPUT_MELS,
    PEAK_FLOOR_DB,
    mel_filterbank,
)

__all__ = ["LogMel", "own_conv_stack", "own_front_end"]


@keras.saving.register_keras_serializable(package="InverSynth")
class LogMel(layers.Layer):
    """STFT magnitude -> log-mel power, normalised to [-1, 1].

    Input ``[batch, frames, bins, 1]`` (channels_last) or ``[batch, 1, frames, bins]``;
    output the same with ``n_mels`` in place of ``bins``.

    Parameters
    ----------
    sample_rate : int
        Hz, for the mel scale.
    n_mels : int
    data_format : {"channels_last", "channels_first"}
    """

    def __init__(
        self,
        sample_rate: int,
        n_mels: int = N_INPUT_MELS,
        data_format: str = "channels_last",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sample_rate = int(sample_rate)
        self.n_mels = int(n_mels)
        self.data_format = data_format
        # The HTK scale, peak 1: [n_bins, n_mels] (librosa's htk=True, norm=None).
        self._weights = mel_filterbank(
            sample_rate=self.sample_rate, n_mels=self.n_mels, htk=True
        ).astype(np.float32)

    def call(self, magnitude: Any) -> Any:
        pattern = "btfc,fm->btmc" if self.data_format == "channels_last" else "bctf,fm->bctm"
        power = ops.einsum(pattern, ops.square(magnitude), ops.cast(self._weights, magnitude.dtype))
        db = 10.0 * ops.log(ops.maximum(power, LOG_MEL_POWER_FLOOR)) / np.log(10.0)
        db = db - ops.max(db, axis=(1, 2, 3), keepdims=True)  # 0 dB at each example's peak
        # [PEAK_FLOOR_DB, 0] = [-80, 0] dB -> [-1, 1]
        return ops.maximum(db, PEAK_FLOOR_DB) / (-PEAK_FLOOR_DB / 2.0) + 1.0

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        shape = list(input_shape)
        shape[2 if self.data_format == "channels_last" else 3] = self.n_mels
        return tuple(shape)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(
            sample_rate=self.sample_rate, n_mels=self.n_mels, data_format=self.data_format
        )
        return config


def own_front_end(stft_magnitude: Any, *, sample_rate: int, data_format: str) -> Any:
    """The log-mel input of our models, from the STFT magnitude."""
    return LogMel(sample_rate, data_format=data_format, name="log_mel")(stft_magnitude)


def _conv_bn_relu(x: Any, conv: ConvSpec, data_format: str, name: str, *, relu: bool = True) -> Any:
    x = layers.Conv2D(
        conv.filters,
        (conv.k1, conv.k2),
        strides=(conv.s1, conv.s2),
        padding="same",
        use_bias=False,  # the batch normalisation's offset does its job
        data_format=data_format,
        name=name,
    )(x)
    axis = -1 if data_format == "channels_last" else 1
    # Momentum 0.9, not Keras's 0.99: the statistics used to validate settle within
    # ~20 steps, so the first epochs' validation loss (early stopping, the best
    # model) is not that of stale statistics.
    x = layers.BatchNormalization(axis=axis, momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def own_conv_stack(x: Any, spec: ModelSpec, *, data_format: str) -> Any:
    """Conv -> BatchNorm -> ReLU per row of ``spec.conv_layers``; a stride-1 row that keeps
    the width becomes a residual block (two such convolutions and a skip connection)."""
    for i, conv in enumerate(spec.conv_layers):
        name = f"conv{i + 1}"
        channels = x.shape[-1 if data_format == "channels_last" else 1]
        if (conv.s1, conv.s2) == (1, 1) and conv.filters == channels:
            y = _conv_bn_relu(x, conv, data_format, f"{name}a")
            y = _conv_bn_relu(y, conv, data_format, f"{name}b", relu=False)
            x = layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, y]))
        else:
            x = _conv_bn_relu(x, conv, data_format, name)
    return x
