"""Hostile use of the dataset tools, continued: limits, damaged files, settings, messages.

As in ``test_robustness_generators``: every refusal is one line (``error: ...``, exit
code 2) that leaves nothing half-written.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from core import options
from core.errors import InverSynthError
from generators import writer
from generators.dataset import main as describe_main
from generators.dataset import open_dataset
from generators.fm_generator import main as fm_main
from generators.sine_generator import SineGenerator
from generators.vst import cli as vst_cli
from generators.writer import DatasetCreator, DatasetPlan
from tests.test_robustness_generators import (
    N_SAMPLES,
    NEKOBI_CONFIG,
    REPO,
    _FailingSine,
    assert_same_examples,
    fm_args,
    make,
    nothing_written,
    one_line_error,
    run_command,
    sine,
)

# Each test in a folder of its own, with no INVERSYNTH_* variable and no .env leaking in.
pytestmark = pytest.mark.usefixtures("no_dotenv")


# ---- guards: sizes and counts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--workers", "99999999999999999999"], "--workers"),
        (["--num_examples", "100000000000000000000000"], "--num_examples"),
        (["--chunk_size", "99999999999999999999"], "--chunk_size"),
        (["--seed", str(2**64)], "--seed"),
        (["--length", "1e9"], "--length"),
        (["--sample_rate", "99999999999999"], "--sample_rate"),
        (["--num_examples", "99999", "--chunk_size", "65536", "--length", "60"], "at most 1.0 GB"),
        (["--length", "0.001"], "512"),
        (["--write_wavs", "--no_write_wavs", "--no-normalise"], "--no-normalise"),
    ],
)
def test_absurd_values_give_one_line_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], fragment: str
) -> None:
    code, err = run_command(fm_main, fm_args(tmp_path) + extra, capsys)
    assert one_line_error(code, err) and fragment in err, err
    assert nothing_written(tmp_path / "data")


@pytest.mark.parametrize("value", ["inf", "1e300", "nan", "0"])
def test_plugin_timeouts_are_bounded_on_the_command_line_and_in_env(
    value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "--config", str(NEKOBI_CONFIG), "--timeout", value]
    code, err = run_command(vst_cli.main, argv, capsys)
    assert one_line_error(code, err) and "--timeout" in err and "86400" in err
    monkeypatch.setenv("INVERSYNTH_VST_TIMEOUT_S", value)
    code, err = run_command(vst_cli.main, ["run", "--config", str(NEKOBI_CONFIG)], capsys)
    assert one_line_error(code, err) and "INVERSYNTH_VST_TIMEOUT_S in the environment" in err


def test_more_workers_than_cores_are_capped_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cpus = options.available_cpus()
    assert options.cap_workers(cpus) == cpus and capsys.readouterr().err == ""
    assert options.cap_workers(1000) == cpus
    assert f"--workers 1000 is more than the {cpus} CPU core(s)" in capsys.readouterr().err


def test_a_dataset_larger_than_the_free_disk_is_refused_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    free = 10_000_000  # 10 MB, as reported by the disk
    usage = writer.shutil.disk_usage(tmp_path)._replace(free=free)
    monkeypatch.setattr(writer.shutil, "disk_usage", lambda path: usage)
    path = tmp_path / "data" / "big_data.hdf5"
    with pytest.raises(
        InverSynthError, match=r"needs \d+\.\d MB \(10,000 examples\).*10\.0 MB free"
    ):
        make(path, n_examples=10_000)
    assert nothing_written(tmp_path / "data")


FILE_SIZE_LIMIT = textwrap.dedent(
    """
    import resource, sys
    resource.setrlimit(resource.RLIMIT_FSIZE, (500_000, 500_000))
    from core.commandline import run_cli
    from generators.sine_generator import SineGenerator
    from generators.writer import DatasetCreator, DatasetPlan

    def main(argv):
        gen = SineGenerator(sample_rate=8192, n_samples=2048)
        DatasetCreator(
            gen, path=argv[0], plan=DatasetPlan(n_examples=200), chunk_size=8, progress=False
        ).run()

    run_cli(main, sys.argv[1:])
    """
)


def test_a_file_larger_than_the_file_system_allows_gives_one_line(tmp_path: Path) -> None:
    path = tmp_path / "data" / "big_data.hdf5"
    done = subprocess.run(
        [sys.executable, "-c", FILE_SIZE_LIMIT, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr  # not a crash (SIGSEGV, SIGXFSZ)
    assert done.stderr.startswith("error: cannot create") and "File too large" in done.stderr
    assert done.stderr.count("\n") == 1
    assert nothing_written(tmp_path / "data")


def test_a_full_disk_while_writing_keeps_the_finished_examples_for_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = writer._ChunkSink.write
    calls = {"n": 0}

    def write(self: Any, result: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(self, result)

    monkeypatch.setattr(writer._ChunkSink, "write", write)
    path = tmp_path / "full_data.hdf5"
    with pytest.raises(InverSynthError, match=r"No space left on device.*--resume") as err:
        make(path)
    assert "\n" not in str(err.value)
    monkeypatch.setattr(writer._ChunkSink, "write", real_write)
    with h5py.File(str(path) + ".partial", "r") as f:
        assert f["done_chunks"][...].sum() == 2  # the chunks before the failure are kept
    resumed = DatasetCreator(
        sine(), path=path, plan=DatasetPlan(n_examples=40, seed=5), chunk_size=8, progress=False
    ).run(resume=True)
    assert_same_examples(resumed, make(tmp_path / "ref_data.hdf5"))


# ---- damaged or foreign files -----------------------------------------------------------------


def _damage(path: Path, how: str) -> None:
    with h5py.File(path, "r+") as f:
        if how in ("complete", "example_offset"):
            del f.attrs[how]
        elif how == "label columns":
            labels = f["labels"][...]
            del f["labels"]
            f["labels"] = np.concatenate([labels, labels[:, :1]], axis=1)
        elif how == "rows":
            f.attrs["n_examples"] = 50
        elif how == "label range":
            f["labels"][17, 1] = 8  # the amplitude has 8 levels: 0..7
        elif how == "config":
            f.attrs["generator_config"] = "{not json"


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("complete", r"lacks the attribute 'complete'"),
        ("example_offset", r"lacks the attribute 'example_offset'"),
        ("label columns", r"'labels' has 3 columns, its parameter set has 2"),
        ("rows", r"'audio' has shape \(40, 2048\), the file's attributes say \(50, 2048\)"),
        ("label range", r"example 17 has class 8 for parameter 'amplitude', which has 8 levels"),
        ("config", r"attribute 'generator_config' is malformed"),
    ],
)
def test_damaged_files_are_refused_at_open_naming_what_is_wrong(
    tmp_path: Path, how: str, message: str
) -> None:
    path = make(tmp_path / "d_data.hdf5")
    _damage(path, how)
    with pytest.raises(InverSynthError, match=message) as err:
        open_dataset(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_folder_given_as_a_dataset_is_named_as_one(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    with pytest.raises(InverSynthError, match="is a folder, not a dataset file"):
        open_dataset(tmp_path / "folder")
    with pytest.raises(InverSynthError, match="is a folder, not a dataset file"):
        make(tmp_path / "folder")


def test_a_folder_under_a_file_is_named_as_the_obstacle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "somefile").write_text("a file")
    argv = fm_args(tmp_path)
    argv[argv.index("--dataset_directory") + 1] = str(tmp_path / "somefile" / "sub")
    code, err = run_command(fm_main, argv, capsys)
    assert one_line_error(code, err)
    assert f"{str(tmp_path / 'somefile')!r} is a file, not a folder" in err


BIG_OUTPUT = textwrap.dedent(
    """
    from core.commandline import run_cli

    def main(argv):
        for i in range(200_000):  # far more than a pipe holds
            print(f"line {i}")
        return 0

    run_cli(main, [])
    """
)


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    done = subprocess.run(
        f"{sys.executable} -c '{BIG_OUTPUT}' | head -n 1",
        shell=True,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout == "line 0\n"
    assert done.stderr == ""  # no BrokenPipeError traceback


# ---- .env --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("INVERSYNTH_SEED=-1", "INVERSYNTH_SEED in .env: expected an integer in [0, "),
        ("INVERSYNTH_WRITE_WAVS=maybe", "INVERSYNTH_WRITE_WAVS in .env: expected true or false"),
        ("INVERSYNTH_SEED 12", ".env line 2: cannot read 'INVERSYNTH_SEED 12'"),
        ('INVERSYNTH_NAME="unclosed', ".env line 2: cannot read"),
    ],
)
def test_env_errors_name_the_variable_or_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, message: str
) -> None:
    (tmp_path / ".env").write_text(f"# defaults\n{line}\nINVERSYNTH_NUM_EXAMPLES=12\n")
    code, err = run_command(fm_main, fm_args(tmp_path), capsys)
    assert one_line_error(code, err) and message in err, err
    assert nothing_written(tmp_path / "data")


# ---- determinism ---------------------------------------------------------------------------


def test_two_runs_with_one_seed_write_identical_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for folder, workers in (("one", "1"), ("two", "2")):
        argv = fm_args(tmp_path, "--seed", "3")
        argv[argv.index("--dataset_directory") + 1] = str(tmp_path / folder)
        argv[argv.index("--workers") + 1] = workers
        assert run_command(fm_main, argv, capsys)[0] == 0
        time.sleep(1.1)  # a time stamp in the file would now differ
    one = (tmp_path / "one" / "fm_data.hdf5").read_bytes()
    two = (tmp_path / "two" / "fm_data.hdf5").read_bytes()
    assert one == two


def test_plugin_run_help_states_the_reproducibility_tolerance(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        vst_cli.main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "within 1e-7" in text and "3e-8" in text


# ---- telling the user what happens ----------------------------------------------------------


def test_resume_says_how_much_was_already_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_write = writer._ChunkSink.write
    calls = {"n": 0}

    def write(self: Any, result: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        real_write(self, result)

    monkeypatch.setattr(writer._ChunkSink, "write", write)
    path = tmp_path / "r_data.hdf5"
    with pytest.raises(KeyboardInterrupt):
        make(path)
    monkeypatch.setattr(writer._ChunkSink, "write", real_write)
    capsys.readouterr()
    DatasetCreator(
        sine(), path=path, plan=DatasetPlan(n_examples=40, seed=5), chunk_size=8, progress=False
    ).run(resume=True)
    assert "resuming: 16 of 40 examples already written" in capsys.readouterr().out


def test_a_slow_start_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Slow(SineGenerator):
        name = "sine"

        def render(self, values: np.ndarray) -> np.ndarray:
            time.sleep(0.5)
            return super().render(values)

    monkeypatch.setattr(writer, "_STARTUP_NOTE_S", 0.1)
    gen = Slow(sample_rate=8192, n_samples=N_SAMPLES)
    DatasetCreator(
        gen, path=tmp_path / "s_data.hdf5", plan=DatasetPlan(n_examples=8), progress=False
    ).run()
    assert "waiting for the first examples" in capsys.readouterr().err


def test_describe_prints_every_attribute_and_summarises_a_plugin_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = make(tmp_path / "i_data.hdf5")
    plugin_config = json.loads((REPO / "plugin_config" / "amsynth.json").read_text())
    with h5py.File(path, "r+") as f:  # as a plugin dataset's config looks
        config = {"plugin": "/usr/lib/vst/amsynth_vst.so", "plugin_config": plugin_config}
        f.attrs["generator_config"] = json.dumps(config)
        keys = list(f.attrs)
    assert describe_main([str(path)]) == 0
    out = capsys.readouterr().out
    for key in keys:
        assert f"  {key}" in out, key
    for key in (
        "format_version",
        "complete",
        "chunk_size",
        "shard",
        "example_offset",
        "created_by",
    ):
        assert f"  {key}" in out
    n_varied = len(plugin_config["parameters"])
    assert f"{n_varied} varied parameters" in out and "/usr/lib/vst/amsynth_vst.so" in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_boolean_options_have_one_style(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from generators.fm_generator import get_parser

    monkeypatch.setenv("INVERSYNTH_NORMALISE", "true")
    monkeypatch.setenv("INVERSYNTH_WRITE_WAVS", "yes")
    parser = get_parser()
    args = parser.parse_args([])
    assert args.normalise is True and args.write_wavs is True
    args = parser.parse_args(["--no_normalise", "--no_write_wavs"])
    assert args.normalise is False and args.write_wavs is False
    assert parser.parse_args(["--no_normalise", "--normalise"]).normalise is True  # last wins
    with pytest.raises(SystemExit):
        parser.parse_args(["--no-normalise"])
    run = ["run", "--config", str(NEKOBI_CONFIG)]
    assert vst_cli.get_parser().parse_args([*run, "--resample_silent"]).resample_silent is True
    assert vst_cli.get_parser().parse_args([*run, "--no_resample_silent"]).resample_silent is False


def test_training_and_evaluation_leave_failed_examples_out(tmp_path: Path) -> None:
    from models.common.data import Split, usable_indices
    from models.evaluation import run_evaluation as evaluation

    path = tmp_path / "f_data.hdf5"
    gen = _FailingSine(sample_rate=8192, n_samples=N_SAMPLES)
    DatasetCreator(
        gen, path=path, plan=DatasetPlan(n_examples=40, seed=5), chunk_size=8, progress=False
    ).run()
    split = Split(n_examples=40, fractions=(0.5, 0.25, 0.25))
    with open_dataset(path) as ds:
        train = usable_indices(ds, split.indices("train"))
        assert train.size == split.size("train") - 3  # rows 3, 10, 17 of 0..19 failed
        assert not np.isin(train, ds.failed_indices).any()

        class _Run:  # what the evaluation reads of a run
            pass

        run = _Run()
        run.split = split  # type: ignore[attr-defined]
        test, _ = evaluation._example_indices(
            run,  # type: ignore[arg-type]
            ds,
            "test",
            foreign=False,
            max_examples=None,
        )
        np.testing.assert_array_equal(test, [30, 32, 33, 34, 35, 36, 37, 39])
