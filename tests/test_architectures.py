"""The paper's architectures: exact parameter counts, shapes, heads, front end, layouts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.errors import InverSynthError
from models.common.architectures import build_model, count_trainable
from models.common.model_table import MODELS, PAPER_MODELS
from models.common.spectral import n_frames

N_LEVELS = [16] * 23  # the paper's FM synth: 23 parameters x 16 classes = 368 outputs

# SPEC section 3: trainable parameters of the conv + dense part.
PAPER_COUNTS = {
    "C1": 1_174_978,
    "C2": 1_157_110,
    "C3": 1_156_338,
    "C4": 1_155_494,
    "C5": 1_155_282,
    "C6": 1_155_287,
    "C6XL": 2_279_792,
    "CE2E": 1_916_696,
    "CE2E_2D": 1_916_696,
}


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.5 * rng.standard_normal((2, 16384))).astype(np.float32)


def test_every_model_is_in_the_table() -> None:
    assert set(PAPER_MODELS) == set(PAPER_COUNTS)
    assert set(MODELS) - set(PAPER_MODELS) == {"M1"}  # ours (tests/test_own_models.py)


@pytest.mark.parametrize("name", list(PAPER_COUNTS))
def test_parameter_counts_and_forward_pass(name: str, audio: np.ndarray) -> None:
    model = build_model(name, n_levels=N_LEVELS)
    assert count_trainable(model) == PAPER_COUNTS[name]
    scores = np.asarray(model(audio, training=False))
    assert scores.shape == (2, 368)
    assert np.all((scores >= 0) & (scores <= 1))
    # The 2D input of the conv stack is the paper's 64 x 257 (time x frequency) x 1.
    first_conv = model.get_layer("conv1")
    assert tuple(first_conv.input.shape[1:]) == (64, 257, 1)


def test_outputs_follow_the_parameter_set(audio: np.ndarray) -> None:
    # Another synth (3 parameters of 5, 2 and 9 levels) -> 16 outputs; dense layer sized to match.
    model = build_model("C6", n_levels=[5, 2, 9])
    assert model.output.shape[-1] == 16
    assert count_trainable(model) == PAPER_COUNTS["C6"] - (512 + 1) * (368 - 16)


def test_softmax_head_is_a_distribution_per_parameter(audio: np.ndarray) -> None:
    levels = [5, 2, 9]
    model = build_model("C1", n_levels=levels, head="softmax")
    scores = np.asarray(model(audio, training=False))
    sums = [scores[:, a:b].sum(axis=1) for a, b in ((0, 5), (5, 7), (7, 16))]
    np.testing.assert_allclose(sums, 1.0, atol=1e-5)
    assert count_trainable(model) == count_trainable(build_model("C1", n_levels=levels))


def test_softmax_loss_is_the_sum_of_the_parameters_cross_entropies() -> None:
    from models.common.architectures import summed_categorical_crossentropy

    y_true = np.array([[0, 1, 0, 1, 0]], dtype=np.float32)  # parameters of 3 and 2 levels
    y_pred = np.array([[0.2, 0.5, 0.3, 0.9, 0.1]], dtype=np.float32)
    loss = float(np.asarray(summed_categorical_crossentropy(y_true, y_pred))[0])
    assert loss == pytest.approx(-np.log(0.5) - np.log(0.9), rel=1e-5)


def test_ordinal_targets_spread_each_label_over_its_own_parameter_only() -> None:
    from models.common.architectures import ordinal_targets

    def dense(**kwargs: Any) -> np.ndarray:
        indices, values, n = ordinal_targets(**kwargs)
        out = np.zeros((n, n), np.float32)
        out[indices[:, 0], indices[:, 1]] = values
        return out

    levels = [4, 3]
    one_hot = np.zeros((1, 7), np.float32)
    one_hot[0, [1, 6]] = 1  # class 1 of the first parameter, class 2 of the second
    soft = one_hot @ dense(n_levels=levels, label_sigma=1.0, head="sigmoid")
    g = np.exp(-0.5)
    np.testing.assert_allclose(soft[0], [g, 1, g, g**4, g**4, g, 1], rtol=1e-6)
    normed = one_hot @ dense(n_levels=levels, label_sigma=1.0, head="softmax")
    np.testing.assert_allclose([normed[0, :4].sum(), normed[0, 4:].sum()], 1.0, rtol=1e-6)
    assert normed[0, :4].argmax() == 1 and normed[0, 4:].argmax() == 2
    # An unordered parameter (a waveform, the DX7's algorithm) keeps its one-hot block.
    mixed = one_hot @ dense(n_levels=levels, label_sigma=1.0, head="sigmoid", ordered=[False, True])
    np.testing.assert_allclose(mixed[0, :4], [0, 1, 0, 0])
    # The Gaussian is cut 4 widths out: a parameter of 100 levels keeps 9 targets.
    wide = dense(n_levels=[100], label_sigma=1.0, head="sigmoid")
    assert np.count_nonzero(wide[50]) == 9


@pytest.mark.parametrize("head", ["sigmoid", "softmax"])
def test_ordinal_target_loss_prefers_near_misses_and_round_trips(head: str) -> None:
    import keras

    from models.common.architectures import OrdinalTargetLoss, loss_for_head

    levels = [5]
    y_true = np.array([[0, 0, 1, 0, 0]], np.float32)
    near = np.array([[0.01, 0.9, 0.05, 0.02, 0.02]], np.float32)  # argmax next to the truth
    far = np.array([[0.9, 0.01, 0.05, 0.02, 0.02]], np.float32)  # argmax two classes away
    ordinal = loss_for_head(head, n_levels=levels, label_sigma=1.0)
    assert isinstance(ordinal, OrdinalTargetLoss)
    assert float(ordinal(y_true, near)) < float(ordinal(y_true, far))
    one_hot = keras.losses.get(loss_for_head(head))  # the paper's loss cannot tell them apart
    assert float(np.mean(one_hot(y_true, near))) == pytest.approx(
        float(np.mean(one_hot(y_true, far))), rel=1e-6
    )
    # A very narrow Gaussian is the one-hot loss.
    narrow = OrdinalTargetLoss(levels, 1e-3, head)
    assert float(narrow(y_true, near)) == pytest.approx(
        float(np.mean(one_hot(y_true, near))), rel=1e-5
    )
    again = OrdinalTargetLoss.from_config(ordinal.get_config())
    assert float(again(y_true, far)) == pytest.approx(float(ordinal(y_true, far)), rel=1e-6)
    with pytest.raises(InverSynthError, match="label_sigma"):
        loss_for_head(head, n_levels=levels, label_sigma=-1.0)


def test_front_end_is_the_log_magnitude_stft(audio: np.ndarray) -> None:
    """The kapre layers compute what the docs say: Hann 512, hop 256, end padding, dB."""
    import keras

    model = build_model("C1", n_levels=N_LEVELS)
    spectrogram = keras.Model(model.input, model.get_layer("decibel").output)
    got = np.asarray(spectrogram(audio))[..., 0]  # [batch, 64, 257]
    assert got.shape == (2, n_frames(16384), 257) == (2, 64, 257)
    x = np.concatenate([audio, np.zeros((2, 64 * 256 + 512 - 256 - 16384), np.float32)], axis=1)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(512) / 512)  # periodic Hann
    frames = np.stack([x[:, i * 256 : i * 256 + 512] for i in range(64)], axis=1)
    magnitude = np.abs(np.fft.rfft(frames * window, axis=-1))
    db = 10 * np.log10(np.maximum(magnitude, 1e-5))
    db = np.maximum(db, db.max(axis=(1, 2), keepdims=True) - 80.0)
    np.testing.assert_allclose(got, db, atol=2e-3)


@pytest.mark.parametrize("name", ["C1", "CE2E_2D"])
def test_channels_first_computes_the_same_function(name: str, audio: np.ndarray) -> None:
    import tensorflow as tf

    from generators.parameters import Parameter, ParameterSet
    from models.common.data import Split
    from models.common.run import RunInfo, runnable_model

    first = build_model(name, n_levels=[16, 16], data_format="channels_first")
    last = build_model(name, n_levels=[16, 16], data_format="channels_last")
    assert count_trainable(first) == count_trainable(last)
    last.set_weights(first.get_weights())
    # TensorFlow's CPU kernels lack channels_first convolutions; XLA has them.
    jitted = tf.function(lambda a: first(a, training=False), jit_compile=True)
    expected = np.asarray(last(audio, training=False))
    np.testing.assert_allclose(np.asarray(jitted(audio)), expected, atol=1e-5)
    # A run trained channels_first is converted to channels_last to predict on a CPU.
    info = RunInfo(
        model_name=name,
        head="sigmoid",
        data_format="channels_first",
        parameter_set=ParameterSet(
            [Parameter.linear(n, low=0, high=1, n_levels=16) for n in ("x", "y")]
        ),
        generator_name="sine",
        generator_config={},
        sample_rate=16384,
        n_samples=16384,
        dataset_identity={},
        dataset_paths=[],
        split=Split((0.8, 0.1, 0.1), 10),
        settings={},
    )
    converted = runnable_model(first, info)
    np.testing.assert_allclose(np.asarray(converted(audio, training=False)), expected, atol=1e-6)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(InverSynthError, match="unknown model 'C7'"):
        build_model("C7", n_levels=N_LEVELS)
    with pytest.raises(InverSynthError, match="head"):
        build_model("C1", n_levels=N_LEVELS, head="tanh")
    with pytest.raises(InverSynthError, match="data_format"):
        build_model("C1", n_levels=N_LEVELS, data_format="nhwc")
    with pytest.raises(InverSynthError, match="n_levels"):
        build_model("C1", n_levels=[16, 1])


@pytest.mark.parametrize(("name", "head"), [("C1", "softmax"), ("CE2E", "sigmoid")])
def test_saved_model_round_trip_predicts_identically(
    name: str, head: str, audio: np.ndarray, tmp_path: Path
) -> None:
    from models.common.run import load_keras_model, save_model_atomic
    from models.common.training import compile_model

    levels = [4, 3, 5]
    model = build_model(name, n_levels=levels, head=head)
    compile_model(model, head=head, learning_rate=1e-3, n_levels=levels, jit=False)
    y = np.zeros((2, 12), np.float32)
    y[:, [0, 4, 7]] = 1.0
    model.fit(audio, y, batch_size=2, epochs=1, verbose=0)  # the optimizer gets a state
    path = tmp_path / "m.keras"
    save_model_atomic(model, path)
    assert path.is_file() and not list(tmp_path.glob(".*"))  # no temporary file left behind
    loaded = load_keras_model(path)
    np.testing.assert_array_equal(
        np.asarray(loaded(audio, training=False)), np.asarray(model(audio, training=False))
    )
    # The optimizer state comes back too (what resuming a run relies on).
    assert int(loaded.optimizer.iterations) == 1
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
