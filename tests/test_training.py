"""Training runs end to end: learning, the run folder, resume, early stopping, refusals, tf.distribute."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from core.errors import InverSynthError
from generators.dataset import open_dataset
from generators.sine_generator import SineGenerator
from generators.writer import DatasetCreator, DatasetPlan
from models import e2e_cnn, spectrogram_cnn
from models.common.run import load_run
from models.evaluate import main as evaluate_main
from models.evaluation.run_evaluation import EvaluationOptions, evaluate_run

REPO = Path(__file__).resolve().parents[1]
N_EXAMPLES = 480


def make_dataset_file(path: Path, *, n_levels: int = 4, seed: int = 1, n: int = N_EXAMPLES) -> Path:
    return DatasetCreator(
        SineGenerator(n_levels=n_levels),
        path=path,
        plan=DatasetPlan(n_examples=n, seed=seed),
        workers=1,
        progress=False,
    ).run()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    make_dataset_file(folder / "sine_data.hdf5")
    return folder


def train_args(data_dir: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--model", "C1", "--dataset_dir", str(data_dir), "--dataset_name", "sine",
        "--output_dir", str(out), "--batch_size", "16", "--no_progress", "--seed", "3", *extra,
    ]  # fmt: skip


def history(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "history.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def trained(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    assert (
        spectrogram_cnn.main(train_args(data_dir, out, "--epochs", "5", "--learning_rate", "2e-3"))
        == 0
    )
    return out / "C1_sine"


def test_training_learns_and_writes_a_complete_run(trained: Path, data_dir: Path) -> None:
    for name in ("run.json", "model.keras", "latest.keras", "state.json", "history.csv"):
        assert (trained / name).is_file(), name
    ev = trained / "evaluation"
    for name in ("metrics.json", "per_parameter.csv", "predictions.npz", "training_curves.png",
                 "per_parameter.png", "top_k_by_group.png", "reconstruction.json", "report.html"):  # fmt: skip
        assert (ev / name).is_file(), name
    assert [int(r["epoch"]) for r in history(trained)] == [1, 2, 3, 4, 5]
    metrics = json.loads((ev / "metrics.json").read_text())
    overall = metrics["groups"]["All"]
    # 4 classes per parameter: chance is top-1 25 %, MPR 50.
    assert overall["mpr"] > 70 and overall["top1"] > 0.45, overall
    assert metrics["n_examples"] == 48  # the last 10 % of 480
    info = json.loads((trained / "run.json").read_text())
    assert info["split"]["test"] == [432, 480]
    assert info["generator"] == "sine" and info["settings"]["batch_size"] == 16


def test_loaded_run_predicts_what_was_evaluated(trained: Path, data_dir: Path) -> None:
    run = load_run(trained)
    assert run.model_name == "C1" and run.generator_name == "sine"
    assert run.parameter_set.names == ["frequency_hz", "amplitude"]
    assert run.sample_rate == 16384 and run.n_samples == 16384
    assert run.dataset_identity == open_dataset(data_dir / "sine_data.hdf5").identity
    saved = np.load(trained / "evaluation" / "predictions.npz")
    np.testing.assert_array_equal(saved["example_indices"], run.split.indices("test"))
    with run.open_dataset() as ds:
        audio, labels = ds.read(saved["example_indices"])
    np.testing.assert_array_equal(saved["true_indices"], labels)
    scores = run.predict_scores(audio, batch_size=7)  # batching must not change anything
    np.testing.assert_allclose(scores, saved["scores"], atol=1e-6)
    np.testing.assert_array_equal(run.predict_indices(audio), run.parameter_set.decode(scores))
    np.testing.assert_allclose(run.predict_scores(audio[0]), scores[:1], atol=1e-6)
    with pytest.raises(InverSynthError, match="shape"):
        run.predict_scores(audio[:, :1000])
    generator = run.make_generator()
    assert isinstance(generator, SineGenerator) and generator.n_levels == 4


def test_resume_continues_where_the_run_stopped(data_dir: Path, tmp_path: Path) -> None:
    # Ordinal targets: their loss must survive the checkpoint that --resume reloads.
    args = train_args(
        data_dir, tmp_path, "--no_evaluate", "--run_name", "r", "--label_sigma", "0.5"
    )
    spectrogram_cnn.main([*args, "--epochs", "1", "--tensorboard"])
    run_dir = tmp_path / "r"
    assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    # A run killed after logging epoch 2 but before recording it: the row must not survive.
    with open(run_dir / "history.csv", "a") as fh:
        fh.write("2,9,9,9,9,9,9\n")
    with pytest.raises(InverSynthError, match="already exists"):
        spectrogram_cnn.main([*args, "--epochs", "2"])
    with pytest.raises(InverSynthError, match="model='C1'"):
        spectrogram_cnn.main([*args, "--epochs", "2", "--resume", "--model", "C2"])
    with pytest.raises(InverSynthError, match=r"label_sigma=0\.5"):
        spectrogram_cnn.main([*args, "--epochs", "2", "--resume", "--label_sigma", "1"])
    spectrogram_cnn.main([*args, "--epochs", "3", "--resume"])
    rows = history(run_dir)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[1]["loss"]) != 9.0
    state = json.loads((run_dir / "state.json").read_text())
    assert state["epochs_done"] == 3 and state["finished"]
    from models.common.run import load_keras_model

    latest = load_keras_model(run_dir / "latest.keras")
    steps_per_epoch = 384 // 16
    assert int(latest.optimizer.iterations) == 3 * steps_per_epoch  # the optimizer state carried on
    assert latest.loss.label_sigma == 0.5


def test_early_stopping_keeps_the_best_model(tmp_path: Path) -> None:
    from models.common.architectures import build_model
    from models.common.checkpoints import TrainState, checkpoint_callbacks

    _, RunCheckpoint = checkpoint_callbacks()
    state = TrainState()
    callback = RunCheckpoint(tmp_path, state, patience=2, write=True)
    model = build_model("C1", n_levels=[2, 2])
    callback.set_model(model)
    best_file = tmp_path / "model.keras"
    for epoch, val_loss in enumerate([0.5, 0.4, 0.45, 0.41]):
        before = best_file.stat().st_mtime_ns if best_file.exists() else None
        callback.on_epoch_end(epoch, {"loss": 1.0, "val_loss": val_loss})
        after = best_file.stat().st_mtime_ns
        assert (after != before) == (epoch in (0, 1))  # saved only when it improved
    assert state.best_epoch == 2 and state.best_val_loss == pytest.approx(0.4)
    assert state.stopped_early and model.stop_training
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["epochs_done"] == 4 and saved["wait"] == 2


def test_mismatched_datasets_are_refused(trained: Path, data_dir: Path, tmp_path: Path) -> None:
    other_synth = make_dataset_file(tmp_path / "five_data.hdf5", n_levels=5, n=20)
    with pytest.raises(InverSynthError, match="parameter set"):
        evaluate_run(
            trained, EvaluationOptions(dataset_file=other_synth, quiet=True, progress=False)
        )
    # The same synth with another seed is a fair test set ...
    fresh = make_dataset_file(tmp_path / "fresh_data.hdf5", seed=99, n=40)
    result = evaluate_run(
        trained, EvaluationOptions(dataset_file=fresh, quiet=True, progress=False, plots=False)
    )
    assert result["metrics"]["n_examples"] == 40
    assert (trained / "evaluation_fresh" / "metrics.json").is_file()
    # ... but not a dataset to resume the run's training on.
    args = ["--model", "C1", "--dataset_file", str(fresh), "--output_dir", str(trained.parent)]
    with pytest.raises(InverSynthError, match="not the dataset this run was trained on"):
        spectrogram_cnn.main([*args, "--run_name", trained.name, "--resume", "--epochs", "9"])


def test_command_line_errors(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--output_dir", str(tmp_path)]
    with pytest.raises(InverSynthError, match="does not exist"):
        spectrogram_cnn.main([*base, "--dataset_file", str(tmp_path / "missing.hdf5")])
    with pytest.raises(InverSynthError, match="no dataset given"):
        spectrogram_cnn.main(base)
    for bad in (
        ["--model", "C9"],
        ["--epochs", "0"],
        ["--learning_rate", "-1"],
        ["--split", "0.9,0.2,0.1"],
        ["--label_sigma", "-1"],
        ["--label_sigma", "nan"],
        ["--workers", "0"],
    ):
        with pytest.raises(SystemExit) as exc:
            spectrogram_cnn.main(
                [*base, "--dataset_name", "sine", "--dataset_dir", str(data_dir), *bad]
            )
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and err.count("\n") == 1, err
    with pytest.raises(SystemExit):
        e2e_cnn.main([*base, "--model", "C6"])  # spectrogram models belong to the other entry point
    with pytest.raises(InverSynthError, match=r"not a run folder|does not exist"):
        evaluate_main([str(tmp_path)])


def test_time_limit_is_in_seconds_and_the_minutes_option_is_refused(
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = spectrogram_cnn.get_parser().parse_args(["--time_limit_s", "90"])
    assert args.time_limit_s == 90.0
    base = ["--output_dir", str(tmp_path), "--dataset_name", "sine", "--dataset_dir", str(data_dir)]
    # "--time_limit 30" would otherwise pass as an abbreviation of --time_limit_s: 30 s, not min.
    with pytest.raises(SystemExit) as exc:
        spectrogram_cnn.main([*base, "--time_limit", "30"])
    assert exc.value.code == 2 and "--time_limit_s (seconds)" in capsys.readouterr().err
    monkeypatch.setenv("INVERSYNTH_TIME_LIMIT", "30")
    with pytest.raises(InverSynthError, match="INVERSYNTH_TIME_LIMIT_S"):
        spectrogram_cnn.main(base)
    assert not list(tmp_path.iterdir())  # nothing trained


def test_end_to_end_entry_point_trains_ce2e(data_dir: Path, tmp_path: Path) -> None:
    args = [
        "--dataset_dir", str(data_dir), "--dataset_name", "sine", "--output_dir", str(tmp_path),
        "--epochs", "1", "--max_examples", "80", "--batch_size", "16", "--no_progress", "--no_evaluate",
        "--head", "softmax",
    ]  # fmt: skip
    assert e2e_cnn.main(args) == 0
    run = load_run(tmp_path / "CE2E_sine")
    assert run.model_name == "CE2E" and run.info.head == "softmax"
    assert run.split.n_examples == 80
    scores = run.predict_scores(np.zeros((2, 16384), np.float32))
    np.testing.assert_allclose(scores[:, :4].sum(axis=1), 1.0, atol=1e-5)


def test_two_logical_cpus_train_with_a_mirrored_strategy(data_dir: Path, tmp_path: Path) -> None:
    """tf.distribute on one machine; logical devices must exist before TensorFlow starts."""
    script = textwrap.dedent(
        f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
        )
        from models.common.training import TrainConfig, get_strategy, train
        strategy = get_strategy()
        print("replicas", strategy.num_replicas_in_sync)
        train(TrainConfig(model="C1", dataset=[{str(data_dir / "sine_data.hdf5")!r}],
                          output_dir={str(tmp_path)!r}, run_name="mirrored", epochs=2,
                          batch_size=16, max_examples=120, verbose=2))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "replicas 2" in proc.stdout
    assert "2 replica(s)" in proc.stdout
    rows = history(tmp_path / "mirrored")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    # Each global batch of 16 is split 8 + 8 over the replicas: 96 training examples, 6 steps.
    assert "6/6" in proc.stdout or "6/Unknown" in proc.stdout
    assert "ran out of data" not in proc.stderr
    assert np.isfinite(float(rows[-1]["val_loss"]))


def test_time_limit_stops_before_an_epoch_that_would_overrun(tmp_path: Path) -> None:
    from models.common.architectures import build_model
    from models.common.checkpoints import TrainState, checkpoint_callbacks

    _, RunCheckpoint = checkpoint_callbacks()
    model = build_model("C1", n_levels=[2, 2])
    roomy = RunCheckpoint(tmp_path, TrainState(), patience=0, write=False, time_limit_s=3600.0)
    roomy.set_model(model)
    roomy.on_epoch_begin(0)
    roomy.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.0})
    assert not roomy.stopped_for_time and not getattr(model, "stop_training", False)
    tight = RunCheckpoint(tmp_path, TrainState(), patience=0, write=False, time_limit_s=1e-6)
    tight.set_model(model)
    tight.on_epoch_begin(0)
    tight.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.0})
    assert tight.stopped_for_time and model.stop_training
    assert not tight.state.stopped_early  # a time stop can be resumed


def test_evaluate_command_adds_resynthesis_and_report_unless_told_not_to(
    trained: Path, tmp_path: Path
) -> None:
    quick = ["--no_plots", "--no_progress", "--max_examples", "8"]
    bare = tmp_path / "bare"
    assert (
        evaluate_main([str(trained), "--output_dir", str(bare), "--no_reconstruction", *quick]) == 0
    )
    assert (bare / "metrics.json").is_file()
    assert not (bare / "reconstruction.json").exists() and not (bare / "report.html").exists()
    full = tmp_path / "full"
    assert evaluate_main([str(trained), "--output_dir", str(full), *quick]) == 0
    assert json.loads((full / "reconstruction.json").read_text())["n_examples"] == 8
    assert (full / "report.html").is_file()
