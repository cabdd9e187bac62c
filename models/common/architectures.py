"""The paper's networks: C1-C6 and C6XL on a log-STFT, CE2E and CE2E_2D on raw audio.

Every model takes raw audio ``[batch, n_samples]`` (float32, 16384 samples at
16384 Hz for the paper's synth) and outputs ``[batch, n_outputs]``
probabilities, one block of ``n_levels`` per parameter in the parameter set's
order (the layout of :meth:`~generators.parameters.ParameterSet.encode`).

* Spectrogram models (C1-C6, C6XL): a kapre STFT front end inside the model
  (window 512, hop 256, magnitude in dB) gives 64 frames x 257 bins, followed
  by the conv layers of the model's row in
  :data:`models.common.model_table.CONV_LAYERS`.
* End-to-end models (CE2E, CE2E_2D): four strided convolutions turn the
  16384 samples into a 64 x 257 "learned spectrogram", followed by C6's layers.
  CE2E_2D writes the same front end as 2D convolutions with k1 = s1 = 1.

Every conv layer uses "same" padding and ReLU, with no pooling or dropout;
every model ends Flatten -> Dense(512, ReLU) -> Dense(n_outputs), so the
trainable parameter counts of the conv + dense part are those of the paper
(for 23 x 16 = 368 outputs; SPEC section 3, checked by the tests).

Heads (``head``):

``"sigmoid"``
    ``n_outputs`` independent sigmoid units, binary cross-entropy (the paper).
``"softmax"``
    one softmax per parameter (:class:`GroupedSoftmax`), the sum of the
    parameters' categorical cross-entropies (:func:`summed_categorical_crossentropy`).

Either head can train on the paper's one-hot targets (the default) or on
ordinal targets spread over neighbouring classes (:class:`OrdinalTargetLoss`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from core.errors import InverSynthError
from models.common.model_table import (
    DATA_FORMATS,
    DENSE_UNITS,
    E2E_FRONT_END,
    HEADS,
    MODELS,
    ConvSpec,
    check_model_input,
)
from models.common.own_models import own_conv_stack, own_front_end
from models.common.spectrogram import log_stft_layers

__all__ = [
    "GroupedSoftmax",
    "OrdinalTargetLoss",
    "build_model",
    "count_trainable",
    "loss_for_head",
    "ordinal_targets",
    "summed_categorical_crossentropy",
]

# --------------------------------------------------------------------------
# Heads and losses
# --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="InverSynth")
class GroupedSoftmax(layers.Layer):
    """A softmax over each parameter's block of logits.

    Parameters
    ----------
    n_levels : sequence of int
        Levels per parameter; the input's last axis is their sum.
    """

    def __init__(self, n_levels: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_levels = [int(n) for n in n_levels]

    def call(self, logits: Any) -> Any:  # [batch, n_outputs] -> [batch, n_outputs]
        cuts = np.cumsum(self.n_levels)[:-1].tolist()
        blocks = ops.split(logits, cuts, axis=-1) if cuts else [logits]
        return ops.concatenate([ops.softmax(b, axis=-1) for b in blocks], axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config["n_levels"] = list(self.n_levels)
        return config


@keras.saving.register_keras_serializable(package="InverSynth")
def summed_categorical_crossentropy(y_true: Any, y_pred: Any) -> Any:
    """Sum over parameters of each parameter's categorical cross-entropy.

    ``y_true`` is the concatenation of one-hot blocks, so ``-sum(y * log p)``
    over the whole vector is the sum of ``-log p(true class)`` over parameters.

    Returns
    -------
    loss : tensor [batch]
    """
    p = ops.clip(y_pred, keras.config.epsilon(), 1.0)
    return -ops.sum(ops.cast(y_true, p.dtype) * ops.log(p), axis=-1)


_TARGET_SIGMAS = 4.0  # the Gaussian is cut this many widths from the true class


def ordinal_targets(
    n_levels: Sequence[int],
    *,
    label_sigma: float,
    head: str,
    ordered: Sequence[bool] | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The sparse matrix that spreads one-hot labels over neighbouring classes.

    ``one_hot @ K`` puts ``exp(-(i - t)^2 / (2 sigma^2))`` on class ``i`` of an
    ordered parameter whose true class is ``t`` (1 on the true class itself,
    nothing beyond :data:`_TARGET_SIGMAS` widths); an unordered parameter keeps
    its one-hot block. For the softmax head each block row is then normalized
    to sum to 1. ``K`` is block diagonal and mostly zero (a DX7 voice has 9,569
    outputs), so it is kept as coordinates.

    Returns
    -------
    indices : np.ndarray [nnz, 2], int64
        (row, column) of every non-zero entry, rows sorted.
    values : np.ndarray [nnz], float32
    n_outputs : int
    """
    levels = [int(n) for n in n_levels]
    flags = [True] * len(levels) if ordered is None else [bool(o) for o in ordered]
    if len(flags) != len(levels):
        raise InverSynthError(f"ordered has {len(flags)} entries for {len(levels)} parameters")
    reach = int(np.ceil(_TARGET_SIGMAS * label_sigma))
    rows, cols, vals = [], [], []
    start = 0
    for n, is_ordered in zip(levels, flags, strict=True):
        i = np.arange(n)
        block = np.exp(-((i[:, None] - i[None, :]) ** 2) / (2.0 * label_sigma**2))
        block[np.abs(i[:, None] - i[None, :]) > reach] = 0.0
        if not is_ordered:
            block = np.eye(n)
        if head == "softmax":
            block /= block.sum(axis=1, keepdims=True)
        r, c = np.nonzero(block)
        rows.append(r + start)
        cols.append(c + start)
        vals.append(block[r, c])
        start += n
    indices = np.stack([np.concatenate(rows), np.concatenate(cols)], axis=1).astype(np.int64)
    return indices, np.concatenate(vals).astype(np.float32), start


@keras.saving.register_keras_serializable(package="InverSynth")
class OrdinalTargetLoss(keras.losses.Loss):
    """A head's loss against labels spread over neighbouring classes (``--label_sigma``).

    The paper trains on one-hot targets, where predicting the class next to
    the true one costs as much as predicting the farthest. A parameter whose
    levels are sorted values (``Parameter.ordered``: every FM parameter, a DX7
    envelope rate) is ordinal, so a Gaussian of width ``label_sigma`` classes
    around the true class teaches the network that near misses are better,
    which is what the paper's MPR and MAE measure. Unordered parameters (the
    DX7's algorithm, a waveform switch) keep one-hot targets. The true class
    keeps the highest target, so top-1 metrics and ``argmax`` decoding are
    unchanged.

    Parameters
    ----------
    n_levels : sequence of int
        Levels per parameter (the model's output layout).
    label_sigma : float > 0
        Width of the Gaussian, in classes.
    head : {"sigmoid", "softmax"}
    ordered : sequence of bool, optional
        Per parameter; default all ordered.
    """

    def __init__(
        self,
        n_levels: Sequence[int],
        label_sigma: float,
        head: str = "sigmoid",
        ordered: Sequence[bool] | None = None,
        name: str = "ordinal_target_loss",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if head not in HEADS:
            raise InverSynthError(f"head must be one of {HEADS}, got {head!r}")
        if not (np.isfinite(label_sigma) and label_sigma > 0):
            raise InverSynthError(f"label_sigma must be > 0, got {label_sigma!r}")
        self.n_levels = [int(n) for n in n_levels]
        self.label_sigma = float(label_sigma)
        self.head = head
        self.ordered = (
            [True] * len(self.n_levels) if ordered is None else [bool(o) for o in ordered]
        )
        self._kernel = ordinal_targets(
            self.n_levels, label_sigma=self.label_sigma, head=head, ordered=self.ordered
        )

    def call(self, y_true: Any, y_pred: Any) -> Any:  # [batch, n_outputs] x2 -> [batch]
        import tensorflow as tf

        indices, values, n = self._kernel
        kernel = tf.sparse.SparseTensor(indices, tf.cast(values, y_pred.dtype), (n, n))
        # soft = y_true @ K, as (K^T @ y_true^T)^T: the sparse operand goes first.
        soft = tf.transpose(
            tf.sparse.sparse_dense_matmul(
                kernel, tf.cast(y_true, y_pred.dtype), adjoint_a=True, adjoint_b=True
            )
        )
        if self.head == "sigmoid":
            return keras.losses.binary_crossentropy(soft, y_pred)
        return summed_categorical_crossentropy(soft, y_pred)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(
            n_levels=list(self.n_levels),
            label_sigma=self.label_sigma,
            head=self.head,
            ordered=list(self.ordered),
        )
        return config


def loss_for_head(
    head: str,
    *,
    n_levels: Sequence[int] | None = None,
    label_sigma: float = 0.0,
    ordered: Sequence[bool] | None = None,
) -> str | Callable[[Any, Any], Any]:
    """The training loss of a head (see the module docstring).

    ``label_sigma > 0`` trains against ordinal targets (:class:`OrdinalTargetLoss`,
    which needs ``n_levels``); 0 is the paper's one-hot targets.
    """
    if head not in HEADS:
        raise InverSynthError(f"head must be one of {HEADS}, got {head!r}")
    if label_sigma < 0:
        raise InverSynthError(f"label_sigma must be >= 0, got {label_sigma!r}")
    if label_sigma > 0:
        if n_levels is None:
            raise InverSynthError("ordinal targets (label_sigma > 0) need n_levels")
        return OrdinalTargetLoss(n_levels, label_sigma, head, ordered)
    if head == "sigmoid":
        return "binary_crossentropy"
    return summed_categorical_crossentropy


# --------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------


def _conv2d(spec: ConvSpec, data_format: str, name: str) -> layers.Conv2D:
    return layers.Conv2D(
        spec.filters,
        (spec.k1, spec.k2),
        strides=(spec.s1, spec.s2),
        padding="same",
        activation="relu",
        data_format=data_format,
        name=name,
    )


def _e2e_front_end(audio: Any, *, two_d: bool, data_format: str) -> Any:
    """Raw audio [batch, n_samples] -> learned spectrogram, 64 x 257 x 1 (or 1 x 64 x 257)."""
    channels_last = data_format == "channels_last"
    if not two_d:
        # Conv1D in channels_last: [batch, n_samples, 1] -> [batch, 64, 257].
        x = layers.Reshape((-1, 1), name="audio_channel")(audio)
        for i, (filters, kernel, stride) in enumerate(E2E_FRONT_END):
            x = layers.Conv1D(
                filters,
                kernel,
                strides=stride,
                padding="same",
                activation="relu",
                name=f"e2e_conv{i + 1}",
            )(x)
        n_frames, n_bins = x.shape[1], x.shape[2]
        shape = (n_frames, n_bins, 1) if channels_last else (1, n_frames, n_bins)
        return layers.Reshape(shape, name="learned_spectrogram")(x)
    # The same convolutions as Conv2D over a 1 x n_samples image.
    shape_in = (1, -1, 1) if channels_last else (1, 1, -1)
    x = layers.Reshape(shape_in, name="audio_image")(audio)
    for i, (filters, kernel, stride) in enumerate(E2E_FRONT_END):
        x = layers.Conv2D(
            filters,
            (1, kernel),
            strides=(1, stride),
            padding="same",
            activation="relu",
            data_format=data_format,
            name=f"e2e_conv{i + 1}",
        )(x)
    if channels_last:  # [batch, 1, 64, 257] -> [batch, 64, 257, 1]
        n_frames, n_bins = x.shape[2], x.shape[3]
        return layers.Reshape((n_frames, n_bins, 1), name="learned_spectrogram")(x)
    # channels_first: [batch, 257, 1, 64] -> [batch, 1, 64, 257]
    x = layers.Permute((2, 3, 1), name="bins_last")(x)
    return x


def build_model(
    name: str,
    *,
    n_levels: Sequence[int],
    n_samples: int = 16384,
    head: str = "sigmoid",
    data_format: str = "channels_last",
    sample_rate: int = 16384,
) -> keras.Model:
    """Build one of the models of ``model_table.MODELS`` (uncompiled).

    Parameters
    ----------
    name : str
        A key of ``model_table.MODELS`` (``"C1"`` ... ``"C6XL"``, ``"CE2E"``, ``"CE2E_2D"``;
        ours: ``"M1"``).
    n_levels : sequence of int
        Levels of each parameter, in the parameter set's order
        (``ParameterSet.n_levels``); the model has ``sum(n_levels)`` outputs.
    n_samples : int
        Audio length the model takes. The paper's layer table assumes 16384
        (64 STFT frames); other lengths work but change the dense layer's size.
    head : {"sigmoid", "softmax"}
    data_format : {"channels_last", "channels_first"}
        Layout of the 2D feature maps; channels_first is faster on some GPUs.
    sample_rate : int
        Hz; places the mel bands of our models (``M1``), unused by the paper's.

    Returns
    -------
    model : keras.Model
        Input ``audio`` [batch, n_samples] float32, output [batch, n_outputs]
        probabilities.
    """
    if name not in MODELS:
        raise InverSynthError(f"unknown model {name!r}; known: {list(MODELS)}")
    if head not in HEADS:
        raise InverSynthError(f"head must be one of {HEADS}, got {head!r}")
    if data_format not in DATA_FORMATS:
        raise InverSynthError(f"data_format must be one of {DATA_FORMATS}, got {data_format!r}")
    levels = check_model_input(name, n_samples=n_samples, n_levels=n_levels)
    spec = MODELS[name]

    audio = keras.Input(
        shape=(int(n_samples),), dtype="float32", name="audio"
    )  # [batch, n_samples]
    if spec.front_end == "logmel":
        x = audio
        for layer in log_stft_layers(data_format=data_format)[:-1]:  # up to the magnitude
            x = layer(x)
        x = own_front_end(x, sample_rate=int(sample_rate), data_format=data_format)
        x = own_conv_stack(x, spec, data_format=data_format)
    else:
        if spec.front_end == "stft":
            x = audio
            for layer in log_stft_layers(data_format=data_format):
                x = layer(x)
        else:
            x = _e2e_front_end(audio, two_d=spec.front_end == "e2e_2d", data_format=data_format)
        for i, conv in enumerate(spec.conv_layers):
            x = _conv2d(conv, data_format, name=f"conv{i + 1}")(x)
    x = layers.Flatten(data_format=data_format, name="flatten")(x)
    x = layers.Dense(DENSE_UNITS, activation="relu", name="dense")(x)
    n_outputs = sum(levels)
    if head == "sigmoid":
        out = layers.Dense(n_outputs, activation="sigmoid", name="scores")(x)
    else:
        logits = layers.Dense(n_outputs, name="logits")(x)
        out = GroupedSoftmax(levels, name="scores")(logits)
    model = keras.Model(audio, out, name=name)
    return model


def count_trainable(model: keras.Model) -> int:
    """Trainable weights of a model (the STFT front end has none)."""
    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
