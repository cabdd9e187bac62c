"""Our model M1: its log-mel front end, its size, saving, and that it learns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from generators.sine_generator import SineGenerator
from generators.writer import DatasetCreator, DatasetPlan
from models import spectrogram_cnn
from models.common.architectures import build_model, count_trainable
from models.common.model_table import SPECTROGRAM_MODELS

M1_WEIGHTS = 1_982_096  # for 368 outputs (the FM synth's 23 x 16)


def test_m1_size_input_and_saving(tmp_path: Path) -> None:
    from models.common.run import load_keras_model

    model = build_model("M1", n_levels=[16] * 23)
    assert count_trainable(model) == M1_WEIGHTS
    assert tuple(model.get_layer("conv1").input.shape[1:]) == (64, 128, 1)  # frames x mel bands
    assert tuple(model.get_layer("conv1").output.shape[1:]) == (16, 32, 48)  # the patch stem
    audio = (0.3 * np.random.default_rng(1).standard_normal((2, 16384))).astype(np.float32)
    scores = np.asarray(model(audio, training=False))
    assert scores.shape == (2, 368) and np.all((scores >= 0) & (scores <= 1))
    # The input is normalised: [-1, 1] whatever the level of the sound.
    log_mel = build_model("M1", n_levels=[2]).get_layer("log_mel")
    quiet = np.asarray(log_mel(np.abs(np.random.default_rng(2).normal(size=(2, 64, 257, 1)))))
    assert quiet.min() >= -1.0 and quiet.max() == pytest.approx(1.0)
    model.save(tmp_path / "m1.keras")
    again = load_keras_model(tmp_path / "m1.keras", compile=False)
    np.testing.assert_allclose(np.asarray(again(audio, training=False)), scores, atol=1e-6)
    assert "M1" in SPECTROGRAM_MODELS


@pytest.mark.slow
def test_m1_learns_the_sine_synth(tmp_path: Path) -> None:
    DatasetCreator(
        SineGenerator(n_levels=4),
        path=tmp_path / "sine_data.hdf5",
        plan=DatasetPlan(n_examples=480, seed=1),
        workers=1,
        progress=False,
    ).run()
    args = [
        "--model", "M1", "--dataset_dir", str(tmp_path), "--dataset_name", "sine",
        "--output_dir", str(tmp_path / "runs"), "--epochs", "5", "--seed", "3",
        "--no_progress", "--no_reconstruction",
    ]  # fmt: skip
    assert spectrogram_cnn.main(args) == 0
    metrics = json.loads(
        (tmp_path / "runs" / "M1_sine" / "evaluation" / "metrics.json").read_text()
    )
    overall = metrics["groups"]["All"]
    # 4 classes per parameter: chance is top-1 25 %, MPR 50.
    assert overall["mpr"] > 70 and overall["top1"] > 0.45, overall
