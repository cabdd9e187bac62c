"""A full disk, a file-size limit or a read-only folder: one line, and nothing half-written.

Every result file goes through :mod:`core.storage`; a failed write
ends a command in one line naming the folder, its free space, the cause and
what was kept, and leaves no temporary file and the earlier file as it was.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core import commandline, storage
from generators.sine_generator import SineGenerator
from generators.writer import DatasetCreator, DatasetPlan
from models.common.plots import save_png
from models.common.records import write_json_atomic
from models.matching.audio_io import write_wav

REPO = Path(__file__).resolve().parents[1]


# Each test in a folder of its own, with no INVERSYNTH_* variable and no .env leaking in.
pytestmark = pytest.mark.usefixtures("no_dotenv")


_REAL_SYNC = storage._sync_file


def _disk_full_from(
    monkeypatch: pytest.MonkeyPatch, first: int, *, named: str = ""
) -> dict[str, int]:
    """From the ``first``-th result file on (1-based; counting those ``named``), the disk is full.

    It says so when the file is flushed: a full disk often does only when the
    data reach it (``fsync``, or the close of a file system that allocates
    late), after every ``write`` went well.
    """
    real = _REAL_SYNC
    count = {"files": 0}

    def sync(path: Path) -> None:
        count["files"] += named in path.name
        if count["files"] >= first:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path)

    monkeypatch.setattr(storage, "_sync_file", sync)
    return count


def _temporary_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name]


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    return fig


WRITERS: dict[str, Any] = {
    "json": lambda path: write_json_atomic(path, {"a": 1}),
    "text": lambda path: storage.write_atomic(path, "x" * 1000),
    "bytes": lambda path: storage.write_atomic(path, bytes(100_000)),
    "csv": lambda path: _write_csv(path),
    "npz": lambda path: _write_npz(path),
    "wav": lambda path: write_wav(path, np.sin(np.arange(8192) / 10.0), 8192),
    "png": lambda path: save_png(_figure(), path),
}


def _write_csv(path: Path) -> None:
    import csv

    with storage.open_atomic(path, newline="") as fh:
        csv.writer(fh).writerows([["a", "b"], [1, 2]])


def _write_npz(path: Path) -> None:
    with storage.atomic_path(path) as tmp:
        np.savez(tmp, x=np.zeros(1000))


SUFFIX = {"json": ".json", "text": ".txt", "bytes": ".bin", "csv": ".csv"}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_a_full_disk_keeps_the_earlier_file_and_leaves_no_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    path = folder / f"result{SUFFIX.get(kind, '.' + kind)}"
    WRITERS[kind](path)
    before = path.read_bytes()
    _disk_full_from(monkeypatch, 1)
    with pytest.raises(storage.WriteError) as info:
        WRITERS[kind](path)
    message = str(info.value)
    assert "\n" not in message
    assert f"cannot write {path.name!r} in {str(folder)!r}: No space left on device" in message
    assert "free on its disk" in message and f"the earlier {path.name} is kept" in message
    assert path.read_bytes() == before and _temporary_files(tmp_path) == []


SIZE_LIMITED = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    import numpy as np
    sys.path.insert(0, sys.argv[2])
    from core import storage
    from models.common.plots import save_png
    from models.matching.audio_io import write_wav
    import matplotlib.pyplot as plt

    def noise_figure():
        fig = plt.figure(figsize=(6, 6))
        fig.figimage(np.random.default_rng(0).random((600, 600)))  # incompressible pixels
        return fig

    folder = Path(sys.argv[1])
    writers = {
        "big.bin": lambda p: storage.write_atomic(p, bytes(300_000)),
        "big.npz": lambda p: np.savez(p, x=np.random.default_rng(0).random(50_000)),
        "big.wav": lambda p: write_wav(p, np.random.default_rng(0).uniform(-1, 1, 100_000), 16384),
        "big.png": lambda p: save_png(noise_figure(), p),
    }
    resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, 64_000))  # ulimit -f: 64 kB a file
    for name, write in writers.items():
        try:
            if name.endswith(".npz"):
                with storage.atomic_path(folder / name) as tmp:
                    write(tmp)
            else:
                write(folder / name)
            print(json.dumps({"name": name, "error": None}))
        except storage.WriteError as exc:
            print(json.dumps({"name": name, "error": str(exc)}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE")
def test_a_file_size_limit_fails_every_kind_of_writer_in_one_line(tmp_path: Path) -> None:
    # The libraries' own writes (libsndfile, zlib, libpng) meet a real EFBIG here.
    folder = tmp_path / "out"
    folder.mkdir()
    (tmp_path / "limited.py").write_text(SIZE_LIMITED)
    done = subprocess.run(
        [sys.executable, str(tmp_path / "limited.py"), str(folder), str(REPO)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["name"] for r in results] == ["big.bin", "big.npz", "big.wav", "big.png"]
    for r in results:
        assert r["error"] is not None, r
        assert f"cannot write {r['name']!r} in {str(folder)!r}: File too large" in r["error"], r
        assert "nothing half-written is left" in r["error"], r
    assert list(folder.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a chmod 0o555 folder all the same")
def test_a_read_only_folder_fails_in_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "result.json").write_text("{}")
    folder.chmod(0o555)
    try:
        for kind, write in WRITERS.items():
            path = folder / (
                "result.json" if kind == "json" else f"new{SUFFIX.get(kind, '.' + kind)}"
            )
            with pytest.raises(
                storage.WriteError, match=r"Permission denied \(.* free on its disk\)"
            ):
                write(path)
        assert sorted(p.name for p in folder.iterdir()) == ["result.json"]
        assert (folder / "result.json").read_text() == "{}"
    finally:
        folder.chmod(0o755)


# ---- the commands on a full disk -----------------------------------------------------------

RATE, N_SAMPLES = 8192, 4096


@pytest.fixture(scope="module")
def sine_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    generator = SineGenerator(sample_rate=RATE, n_samples=N_SAMPLES, n_levels=4)
    path = tmp_path_factory.mktemp("data") / "sine_data.hdf5"
    return DatasetCreator(
        generator, path=path, plan=DatasetPlan(n_examples=160, seed=1), progress=False
    ).run()


def _train_argv(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--model", "C1", "--dataset_file", str(data), "--output_dir", str(out),
        "--batch_size", "16", "--no_progress", "--no_evaluate", "--seed", "3", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def trained_run(sine_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models import spectrogram_cnn

    out = tmp_path_factory.mktemp("runs")
    assert spectrogram_cnn.main(_train_argv(sine_data, out, "--epochs", "1")) == 0
    return out / "C1_sine"


def _command(main: Any, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        commandline.run_cli(main, argv)
    code = exit_info.value.code
    return int(code) if isinstance(code, int) else 1, capsys.readouterr().err


def _writes_of(main: Any, argv: list[str], monkeypatch: Any, capsys: Any) -> int:
    """How many result files a command writes (it runs once, on a disk with room)."""
    count = _disk_full_from(monkeypatch, 10**9)
    code, err = _command(main, argv, capsys)
    assert code == 0, err
    return count["files"]


def _assert_one_line_about(err: str, folder: Path, kept: str) -> None:
    assert err.startswith("error: cannot write ") and err.count("\n") == 1, err
    assert f"in {str(folder)!r}: No space left on device (" in err, err
    assert "free on its disk); " in err and kept in err, err


@pytest.mark.slow
def test_evaluate_on_a_full_disk_stops_in_one_line_and_keeps_what_it_had(
    tmp_path: Path, trained_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from models import evaluate

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    argv = [str(run), "--no_reconstruction", "--no_progress"]
    n = _writes_of(evaluate.main, argv, monkeypatch, capsys)
    assert n >= 6  # metrics.json, per_parameter.csv, predictions.npz and three plots
    before = {p.name: p.read_bytes() for p in (run / "evaluation").iterdir()}
    for first in (1, n):
        _disk_full_from(monkeypatch, first)
        code, err = _command(evaluate.main, [*argv, "--overwrite"], capsys)
        assert code == 2
        _assert_one_line_about(err, run / "evaluation", "is kept")
        assert _temporary_files(run) == []
        after = {p.name: p.read_bytes() for p in (run / "evaluation").iterdir()}
        assert after.keys() == before.keys()  # each file whole: the earlier one or a new one


@pytest.mark.slow
def test_export_run_on_a_full_disk_leaves_no_folder_and_no_temporary_file(
    tmp_path: Path, trained_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from models import export_run

    destination = tmp_path / "shipped" / "C1"
    n = _writes_of(export_run.main, [str(trained_run), str(destination)], monkeypatch, capsys)
    assert n == 4  # state.json, history.csv, run.json, model.keras
    shutil.rmtree(destination)
    for first in (1, n):
        _disk_full_from(monkeypatch, first)
        code, err = _command(export_run.main, [str(trained_run), str(destination)], capsys)
        assert code == 2
        _assert_one_line_about(err, destination.parent, "nothing of the export is left")
        assert list((tmp_path / "shipped").iterdir()) == []


@pytest.mark.slow
def test_predict_on_a_full_disk_says_so_in_one_line_per_sound_and_leaves_no_temporary_file(
    tmp_path: Path, trained_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from models import predict

    sound = tmp_path / "tone.wav"
    write_wav(sound, 0.5 * np.sin(2 * np.pi * 330 * np.arange(N_SAMPLES) / RATE), RATE)
    out = tmp_path / "predictions"
    argv = [str(sound), "--run", str(trained_run), "--output_dir", str(out), "--method",
            "network", "--budget_renders", "1"]  # fmt: skip
    n = _writes_of(predict.main, argv, monkeypatch, capsys)
    assert n == 4  # tone_input.wav, tone_resynthesis.wav, tone.png, tone.json
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    for first in (1, n):
        _disk_full_from(monkeypatch, first)
        code, err = _command(predict.main, argv, capsys)
        assert code == 2
        first_line, rest = err.split("\n", 1)
        _assert_one_line_about(first_line + "\n", out, "is kept")
        assert rest.strip() == "0 of 1 sounds matched; 1 failed", err
        assert _temporary_files(tmp_path) == []
        assert {p.name: p.read_bytes() for p in out.iterdir()}.keys() == before.keys()


@pytest.mark.slow
def test_training_on_a_full_disk_stops_in_one_line_saying_which_epochs_it_keeps(
    tmp_path: Path, sine_data: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from models import spectrogram_cnn

    out = tmp_path / "runs"
    _disk_full_from(monkeypatch, 2, named="latest")  # the second epoch's latest.keras
    code, err = _command(spectrogram_cnn.main, _train_argv(sine_data, out, "--epochs", "3"), capsys)
    assert code == 2
    _assert_one_line_about(err, out / "C1_sine", "the run keeps its 1 finished epoch(s)")
    assert "continue it with --resume" in err
    assert _temporary_files(out) == []
    monkeypatch.setattr(storage, "_sync_file", _REAL_SYNC)
    code, err = _command(
        spectrogram_cnn.main, _train_argv(sine_data, out, "--epochs", "2", "--resume"), capsys
    )
    assert code == 0, err
    history = (out / "C1_sine" / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["1", "2"]
    # A disk full before the first epoch ends keeps nothing, and says so.
    _disk_full_from(monkeypatch, 2)
    code, err = _command(
        spectrogram_cnn.main, _train_argv(sine_data, out, "--run_name", "x"), capsys
    )
    assert code == 2
    _assert_one_line_about(err, out / "x", "no epoch of the run had finished")
    assert not (out / "x").exists()


def test_wav_files_of_a_dataset_on_a_full_disk_end_the_run_resumably(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    path, wavs = tmp_path / "w_data.hdf5", tmp_path / "wavs"

    def main(argv: Any) -> int:
        DatasetCreator(SineGenerator(sample_rate=8192, n_samples=512), path=path,
                       plan=DatasetPlan(n_examples=16), chunk_size=4, wav_directory=wavs,
                       wav_prefix="w", progress=False).run(resume="--resume" in argv)  # fmt: skip
        return 0

    _disk_full_from(monkeypatch, 7, named=".wav")  # in the second chunk
    code, err = _command(main, [], capsys)
    assert code == 2
    _assert_one_line_about(err, wavs, "the examples finished so far are kept")
    assert "run again with --resume" in err
    assert Path(f"{path}.partial").exists() and _temporary_files(tmp_path) == []
    assert sorted(p.name for p in wavs.iterdir()) == [f"w_{i:07d}.wav" for i in range(6)]
    monkeypatch.setattr(storage, "_sync_file", _REAL_SYNC)
    assert _command(main, ["--resume"], capsys)[0] == 0
    assert len(list(wavs.iterdir())) == 16 and path.exists()


def test_a_write_error_crosses_from_a_worker_process_whole() -> None:
    import pickle

    error = storage.write_failed(
        Path("/nowhere/x.wav"), OSError(errno.ENOSPC, "full"), kept="the rest is kept"
    )
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is storage.WriteError and str(again) == str(error)
    assert again.reason == "No space left on device" and again.failure == error.failure
    kept = str(again.keeping("all of it"))
    assert kept.startswith("cannot write 'x.wav' in '/nowhere': No space left on device (")
    assert kept.endswith("free on its disk); all of it")  # the free space of '/': its disk
