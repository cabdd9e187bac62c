"""Nothing lost, nothing silently wrong: the failures of training, evaluation and resynthesis.

Each failure ends a command with one line, ``error: ...``, and exit code 2,
with nothing half-written and nothing of value replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import h5py
import numpy as np
import pytest

import generators.schema
from core.commandline import run_cli
from core.environment import _dotenv
from core.errors import InverSynthError
from core.options import default_workers
from generators.sine_generator import SineGenerator
from generators.writer import DatasetCreator, DatasetPlan
from models import (
    app,
    compare,
    demo,
    e2e_cnn,
    evaluate,
    predict,
    reconstruct,
    report,
    spectrogram_cnn,
)
from models.common.run import LATEST_MODEL, load_run, lock_run_folder, save_model_atomic
from models.evaluation.evaluation_folder import Predictions
from models.evaluation.resynthesis import ReconstructionOptions, evaluate_reconstruction
from tests.test_reconstruction import make_evaluated_run

REPO = Path(__file__).resolve().parents[1]
RATE, N_SAMPLES = 8192, 4096  # short sounds: quick to train on
N_EXAMPLES = 160  # split 0.8/0.1/0.1: train 0..127, validation 128..143, test 144..159


def make_data(
    path: Path, *, seed: int = 1, n: int = N_EXAMPLES, n_samples: int = N_SAMPLES
) -> Path:
    generator = SineGenerator(sample_rate=RATE, n_samples=n_samples, n_levels=4)
    return DatasetCreator(
        generator, path=path, plan=DatasetPlan(n_examples=n, seed=seed), workers=1, progress=False
    ).run()


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--model", "C1", "--dataset_file", str(data), "--output_dir", str(out),
        "--batch_size", "16", "--no_progress", "--no_evaluate", "--seed", "3", *extra,
    ]  # fmt: skip


def run_command(
    main: Callable[[Sequence[str] | None], int | None],
    argv: Sequence[str],
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str, str]:
    """A command as its ``__main__`` runs it: exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as exc:
        run_cli(main, list(argv))
    out, err = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else 0), out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("data") / "sine_data.hdf5")


@pytest.fixture(scope="module")
def trained(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of C1, one epoch, on ``data``; tests copy it before changing anything."""
    out = tmp_path_factory.mktemp("runs")
    assert spectrogram_cnn.main(train_args(data, out, "--epochs", "1")) == 0
    return out / "C1_sine"


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "runs" / run_dir.name
    shutil.copytree(run_dir, copy)
    return copy


def history_epochs(run_dir: Path) -> list[int]:
    lines = (run_dir / "history.csv").read_text().splitlines()[1:]
    return [int(float(line.split(",")[0])) for line in lines]


# --------------------------------------------------------------------------
# One training of a run folder at a time
# --------------------------------------------------------------------------


def test_a_second_training_of_a_run_folder_is_refused_naming_the_process(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = copy_run(trained, tmp_path)
    data = Path(json.loads((run_dir / "run.json").read_text())["dataset"]["paths"][0])
    args = train_args(data, run_dir.parent, "--run_name", run_dir.name, "--resume", "--epochs", "2")
    with lock_run_folder(run_dir):  # another training holds the folder
        code, _, err = run_command(spectrogram_cnn.main, args, capsys)
    assert_one_line_error(code, err, "in use by another training", f"process {os.getpid()} on")
    assert history_epochs(run_dir) == [1]  # nothing written twice
    # Once the other training has ended, the run resumes as usual, on the dataset it names.
    without_dataset = [a for a in args if a not in ("--dataset_file", str(data))]
    assert spectrogram_cnn.main(without_dataset) == 0
    assert history_epochs(run_dir) == [1, 2]


# --------------------------------------------------------------------------
# A run never scored on its own training examples
# --------------------------------------------------------------------------


def test_another_dataset_of_the_same_seed_is_evaluated_without_the_training_examples(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert evaluate.get_parser().parse_args([str(trained), "--dataset_file", "x"]).split == "test"
    quick = ["--no_reconstruction", "--no_plots", "--no_progress"]
    # Same synth and seed, more examples: rows 0..143 are the run's train and validation.
    longer = make_data(tmp_path / "longer_data.hdf5", seed=1, n=200)
    out = tmp_path / "longer_eval"
    argv = [str(trained), "--dataset_file", str(longer), "--output_dir", str(out), *quick]
    code, stdout, _ = run_command(evaluate.main, argv, capsys)
    assert code == 0
    assert "144 examples" in stdout and "evaluating the other 56" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_examples"] == 56 and metrics["training_examples_left_out"] == 144
    np.testing.assert_array_equal(Predictions.load(out).example_indices, np.arange(144, 200))
    # Every example, as asked, would include them: refused.
    code, _, err = run_command(evaluate.main, [*argv, "--split", "all", "--overwrite"], capsys)
    assert_one_line_error(code, err, "144 of the 200 examples", "--split test")
    # Nothing but training examples: nothing to test.
    inside = make_data(tmp_path / "inside_data.hdf5", seed=1, n=100)
    argv = [
        str(trained),
        "--dataset_file",
        str(inside),
        "--output_dir",
        str(tmp_path / "e"),
        *quick,
    ]
    code, _, err = run_command(evaluate.main, argv, capsys)
    assert_one_line_error(code, err, "nothing to test", "another --seed")
    assert not (tmp_path / "e").exists()
    # Another seed shares no example with the training set: all of it is a test set.
    fresh = make_data(tmp_path / "fresh_data.hdf5", seed=2, n=40)
    for split in ("test", "all"):
        out = tmp_path / f"fresh_{split}"
        argv = [str(trained), "--dataset_file", str(fresh), "--output_dir", str(out), *quick]
        code, stdout, _ = run_command(evaluate.main, [*argv, "--split", split], capsys)
        assert code == 0 and "note:" not in stdout
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["n_examples"] == 40 and "training_examples_left_out" not in metrics


# --------------------------------------------------------------------------
# Results of fewer or other examples never replace others silently
# --------------------------------------------------------------------------


def test_a_reconstruction_of_fewer_examples_does_not_replace_one_of_more(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = make_evaluated_run(tmp_path, n_examples=40)  # 10 test predictions
    folder = run_dir / "evaluation"
    evaluate_reconstruction(
        run_dir, ReconstructionOptions(workers=1, progress=False, quiet=True, chance=False)
    )
    written = (folder / "reconstruction.json").read_text()
    argv = [str(run_dir), "--workers", "1", "--no_chance", "--no_progress"]
    code, _, err = run_command(reconstruct.main, [*argv, "--max_examples", "5"], capsys)
    assert_one_line_error(code, err, "holds results of 10 examples", "--overwrite")
    assert (folder / "reconstruction.json").read_text() == written
    code, stdout, _ = run_command(
        reconstruct.main, [*argv, "--max_examples", "5", "--overwrite"], capsys
    )
    assert code == 0 and "Reconstruction of 5 test sounds" in stdout
    record = json.loads((folder / "reconstruction.json").read_text())
    assert record["n_examples"] == 5 and record["split"] == "test"
    # More examples of the same set replace fewer without asking.
    code, stdout, _ = run_command(reconstruct.main, argv, capsys)
    assert code == 0 and "Reconstruction of 10 test sounds" in stdout


def test_evaluate_does_not_replace_results_of_other_or_more_examples(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "evaluation"
    base = [str(trained), "--output_dir", str(out), "--no_reconstruction", "--no_plots"]
    base.append("--no_progress")
    assert run_command(evaluate.main, base, capsys)[0] == 0
    full = (out / "metrics.json").read_text()
    assert json.loads(full)["n_examples"] == 16
    for extra, fragment in (
        (["--max_examples", "4"], "holds results of 16 examples; this would replace them with 4"),
        (["--split", "validation"], "16 examples of another set"),
    ):
        code, _, err = run_command(evaluate.main, [*base, *extra], capsys)
        assert_one_line_error(code, err, fragment, "--overwrite", "--output_dir")
        assert (out / "metrics.json").read_text() == full
    code, _, _ = run_command(evaluate.main, [*base, "--max_examples", "4", "--overwrite"], capsys)
    assert code == 0 and json.loads((out / "metrics.json").read_text())["n_examples"] == 4
    assert run_command(evaluate.main, base, capsys)[0] == 0  # all of them again: no question


# --------------------------------------------------------------------------
# A training that diverges stops; non-finite weights are never saved or used
# --------------------------------------------------------------------------


def poison(data: Path, rows: slice) -> None:
    """NaN audio in some rows of a dataset file: the loss of a batch with one is NaN."""
    with h5py.File(data, "r+") as f:
        f["audio"][rows] = np.nan


def test_a_training_that_diverges_stops_with_an_error_and_keeps_only_finite_epochs(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad_data.hdf5"
    shutil.copy(data, bad)
    poison(bad, slice(0, 128))  # every training example
    runs = tmp_path / "runs"
    code, _, err = run_command(spectrogram_cnn.main, train_args(bad, runs, "--epochs", "2"), capsys)
    assert_one_line_error(code, err, "training diverged: epoch 1", "--learning_rate")
    assert not (runs / "C1_bad").exists()  # no epoch finished: no run left behind
    # A run with a finite epoch keeps it, and nothing of the epoch that diverged.
    clean = tmp_path / "clean_data.hdf5"
    shutil.copy(data, clean)
    args = train_args(clean, runs, "--epochs", "1")
    assert spectrogram_cnn.main(args) == 0
    run_dir = runs / "C1_clean"
    latest = (run_dir / LATEST_MODEL).read_bytes()
    poison(clean, slice(0, 128))
    args = train_args(clean, runs, "--epochs", "3", "--resume")
    code, _, err = run_command(spectrogram_cnn.main, args, capsys)
    assert_one_line_error(code, err, "epoch 2", "keeps its 1 finite epoch")
    assert history_epochs(run_dir) == [1]
    assert json.loads((run_dir / "state.json").read_text())["epochs_done"] == 1
    assert (run_dir / LATEST_MODEL).read_bytes() == latest


def test_unreadable_or_non_finite_models_are_refused_in_one_line(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = copy_run(trained, tmp_path)
    model = load_run(run_dir).model
    for weight in model.weights:
        weight.assign(np.full(weight.shape, np.nan, dtype=weight.dtype))
    with pytest.raises(InverSynthError, match="not finite"):
        save_model_atomic(model, run_dir / LATEST_MODEL)
    model.save(run_dir / LATEST_MODEL)  # as a training of before would have
    with pytest.raises(InverSynthError, match=r"latest\.keras' holds weights that are not finite"):
        load_run(run_dir, checkpoint="latest")
    (run_dir / "model.keras").write_bytes(b"not a model")
    sound = tmp_path / "tone.wav"
    import soundfile

    soundfile.write(sound, np.zeros(N_SAMPLES, np.float32), RATE)
    code, _, err = run_command(predict.main, [str(sound), "--run", str(run_dir)], capsys)
    assert_one_line_error(code, err, "model.keras' is not a readable Keras model (not a zip")


# --------------------------------------------------------------------------
# Bad settings: refused before anything is made
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--seed", str(2**40)], "--seed: expected an integer in [0, 4294967295]"),  # NumPy, TF
        (["--seed", "99999999999999999999"], "--seed"),
        (["--label_sigma", "1e30"], "--label_sigma must be in [0, 4] for this dataset"),
        (["--learning_rate", "5"], "--learning_rate: must be a number in (0, 1]"),
        (["--epochs", "10000000"], "--epochs: expected an integer in [1, 100000]"),
        (["--batch_size", "1000000"], "--batch_size: expected an integer in [1, 65536]"),
    ],
)
def test_absurd_training_settings_are_refused_before_anything_is_made(
    data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    fragment: str,
) -> None:
    out = tmp_path / "runs"
    argv = [*train_args(data, out, "--epochs", "1"), *extra]  # the later --epochs wins
    code, _, err = run_command(spectrogram_cnn.main, argv, capsys)
    assert_one_line_error(code, err, fragment)
    assert not out.exists()


def test_a_run_that_cannot_start_leaves_no_folder_to_hide_the_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    short = make_data(tmp_path / "short_data.hdf5", n=40, n_samples=256)
    out = tmp_path / "runs"
    for _ in range(2):  # the second attempt meets the same cause, not "the folder exists"
        code, _, err = run_command(spectrogram_cnn.main, train_args(short, out), capsys)
        assert_one_line_error(code, err, "model C1 needs n_samples >= 512")
        assert not out.exists()


@pytest.mark.skipif(
    not hasattr(generators.schema, "REQUIRED_ATTRS"),
    reason="the dataset reader's one-line error for a missing attribute",
)
def test_a_dataset_file_without_an_attribute_stops_training_and_evaluation_in_one_line(
    data: Path, trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = tmp_path / "damaged_data.hdf5"
    shutil.copy(data, damaged)
    with h5py.File(damaged, "r+") as f:
        del f.attrs["example_offset"]
    code, _, err = run_command(spectrogram_cnn.main, train_args(damaged, tmp_path / "r"), capsys)
    assert_one_line_error(code, err, "example_offset")
    argv = [str(trained), "--dataset_file", str(damaged), "--output_dir", str(tmp_path / "e")]
    code, _, err = run_command(evaluate.main, argv, capsys)
    assert_one_line_error(code, err, "example_offset")


# --------------------------------------------------------------------------
# Clear one-line messages
# --------------------------------------------------------------------------


def test_an_output_folder_under_a_file_is_refused_before_any_work(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    argv = [str(trained), "--output_dir", str(blocker / "evaluation"), "--no_progress"]
    code, _, err = run_command(evaluate.main, argv, capsys)
    assert_one_line_error(code, err, "is a file")


def test_missing_or_foreign_predictions_name_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = make_evaluated_run(tmp_path, n_examples=40)
    nope = tmp_path / "t" / "nope"
    code, _, err = run_command(
        reconstruct.main, [str(run_dir), "--evaluation_dir", str(nope)], capsys
    )
    assert_one_line_error(
        code,
        err,
        f"evaluation folder {str(nope)!r} does not exist",
        f"python -m models.evaluate {run_dir} --output_dir {nope}",
        f"by default {run_dir / 'evaluation'}",
    )
    predictions = run_dir / "evaluation" / "predictions.npz"
    for content in (b"not numpy at all", b""):
        predictions.write_bytes(content)
        code, _, err = run_command(reconstruct.main, [str(run_dir)], capsys)
        assert_one_line_error(code, err, "is not a predictions file written by models.evaluate")
        assert "allow_pickle" not in err
    with open(predictions, "wb") as fh:
        np.save(fh, np.zeros(3))  # one .npy array
    with pytest.raises(InverSynthError, match=r"not an \.npz archive"):
        Predictions.load(run_dir / "evaluation")


def test_tensorflow_commands_write_nothing_to_stderr_but_their_own_lines(
    data: Path, trained: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}

    def command(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", *argv], cwd=REPO, env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip

    done = command(
        "models.evaluate", str(trained), "--output_dir", str(tmp_path / "e"), "--no_progress",
        "--no_plots", "--no_reconstruction",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == ""
    # XLA (channels_first on a CPU) announces its first compilation past the log level.
    argv = train_args(data, tmp_path / "cf", "--epochs", "1", "--data_format", "channels_first")
    done = command("models.spectrogram_cnn", *argv)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == ""
    broken = copy_run(trained, tmp_path)
    (broken / "model.keras").write_bytes(b"")
    done = command("models.predict", "x.wav", "--run", str(broken))
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr


# --------------------------------------------------------------------------
# One definition of every shared option
# --------------------------------------------------------------------------

PARSERS = {  # each command's parser, and the fewest arguments it takes
    "app": (app.get_parser, []),
    "spectrogram_cnn": (spectrogram_cnn.get_parser, []),
    "e2e_cnn": (e2e_cnn.get_parser, []),
    "evaluate": (evaluate.get_parser, ["runs/r"]),
    "predict": (predict.get_parser, ["a.wav", "--run", "runs/r"]),
    "reconstruct": (reconstruct.get_parser, ["runs/r"]),
    "report": (report.get_parser, ["runs/r"]),
    "compare": (compare.get_parser, ["runs/r"]),
    "demo": (demo.get_parser, []),
}


@pytest.fixture()
def no_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """No .env and no INVERSYNTH_ variables: the built-in defaults."""
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("INVERSYNTH_"):
            monkeypatch.delenv(key)
    _dotenv.cache_clear()
    yield
    _dotenv.cache_clear()


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_help_says_each_default_once_and_options_are_spelled_alike(
    name: str, no_settings: None
) -> None:
    get_parser, argv = PARSERS[name]
    parser = get_parser()
    text = " ".join(parser.format_help().split())
    assert "(default: None)" not in text and "(default: False)" not in text
    for action in parser._actions:
        for option in action.option_strings:
            assert option == "-h" or (option.startswith("--") and "-" not in option[2:]), option
        if action.option_strings and action.help != "==SUPPRESS==" and action.dest != "help":
            assert action.help, f"{name} {action.option_strings} has no help"
            said = " ".join(action.help.split())
            assert not ("default" in said.lower() and f"{said} (default:" in text), said
    defaults = parser.parse_args(argv)
    if hasattr(defaults, "workers"):
        assert defaults.workers == default_workers()  # one default: one worker per core
