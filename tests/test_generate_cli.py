"""The FM dataset command as a user runs it: good runs, and one-line refusals of bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core import commandline, environment
from generators.dataset import open_dataset
from generators.fm_generator import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.chdir(tmp_path)  # no .env of the repository leaks into these runs
    environment._dotenv.cache_clear()
    yield
    environment._dotenv.cache_clear()


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        commandline.run_cli(main, argv)
    code = exit_info.value.code
    return int(code if isinstance(code, int) else 1), capsys.readouterr().err


def small(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "--num_examples",
        "12",
        "--chunk_size",
        "4",
        "--workers",
        "1",
        "--length",
        "0.25",
        "--dataset_directory",
        str(tmp_path / "data"),
        "--no_progress",
        *extra,
    ]


def test_a_run_writes_a_readable_dataset_and_resume_of_a_finished_one_is_a_no_op(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run(small(tmp_path, "--seed", "4"), capsys)
    assert code == 0
    path = tmp_path / "data" / "fm_data.hdf5"
    with open_dataset(path) as ds:
        assert ds.n_examples == 12 and ds.n_samples == 4096 and ds.parameter_set.n_parameters == 23
        assert ds.parameter_set.n_outputs == 368
        audio, _ = ds.read(np.arange(12))
        assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
    before = path.stat().st_mtime_ns
    code, _ = run(small(tmp_path, "--seed", "4", "--resume"), capsys)
    assert code == 0 and path.stat().st_mtime_ns == before


def test_shards_from_the_command_line_join_into_the_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(small(tmp_path), capsys)[0] == 0
    for k in (1, 2):
        assert run(small(tmp_path, "--shard", f"{k}/2"), capsys)[0] == 0
    with (
        open_dataset(tmp_path / "data" / "fm_data.hdf5") as whole,
        open_dataset(str(tmp_path / "data" / "fm_data.shard-*")) as shards,
    ):
        for a, b in zip(whole.read(np.arange(12)), shards.read(np.arange(12)), strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--num_examples", "-3"], "-3"),
        (["--workers", "0"], "--workers"),
        (["--seed", "-1"], "--seed"),
        (["--shard", "3/2"], "3/2"),
        (["--length", "abc"], "abc"),
        (["--note_off", "-1"], "-1"),
        (["--cutoff", "300"], "--cutoff"),  # no such option
    ],
)
def test_bad_options_give_one_line_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], fragment: str
) -> None:
    code, err = run(small(tmp_path) + extra, capsys)
    assert code == 2
    assert err.startswith("error:") and err.count("\n") == 1 and fragment in err
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_a_folder_that_cannot_be_made_gives_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "data").write_text("a file, not a folder")
    code, err = run(small(tmp_path), capsys)
    assert code == 2 and err.startswith("error: cannot create folder") and err.count("\n") == 1


def test_malformed_env_value_gives_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".env").write_text("INVERSYNTH_NUM_EXAMPLES=many\n")
    code, err = run([], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "INVERSYNTH_NUM_EXAMPLES in .env" in err and "'many'" in err


def test_help_and_a_real_process_exit_cleanly(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "generators.fm_generator", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0
    for option in ("--num_examples", "--shard", "--resume", "--normalise", "--note_off"):
        assert option in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "generators.fm_generator", "--num_examples", "0"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
