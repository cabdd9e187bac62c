"""Commands that stop when told, and results that are written whole or not at all.

* Ctrl-C and SIGTERM end a dataset run with 130 / 143 and a resumable
  ``.partial`` file every time, also when the handler's exception lands in a
  finalizer (where Python drops it).
* A full disk, a file-size limit or a read-only folder ends a command in one
  line naming the folder, its free space and what was kept, and leaves no
  temporary file behind.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from generators import cli, storage, writer
from generators.schema import lock_path
from generators.sine_generator import SineGenerator
from generators.writer import DatasetCreator
from models.common.plots import save_png
from models.common.records import write_json_atomic
from models.matching.audio_io import write_wav

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # no .env of the repository leaks in
    for key in [k for k in os.environ if k.startswith("INVERSYNTH_")]:
        monkeypatch.delenv(key)
    cli._dotenv.cache_clear()
    yield
    cli._dotenv.cache_clear()


@pytest.fixture
def python_sigint() -> Iterator[None]:
    """Python's own Ctrl-C handler in place (a test runner may have set another)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


# ---- 1. a signal whose exception lands in a finalizer ------------------------------------


class _Freed:
    pass


class SignalInFinalizerSine(SineGenerator):
    """A sine whose third chunk frees an object whose weakref callback receives ``signum``.

    h5py runs such callbacks for every object it frees, so a Ctrl-C during a
    dataset run is often handled inside one, where Python drops the exception.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(sample_rate=8192, n_samples=512)
        self.signum = signum
        self.calls = 0

    def render(self, values: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls == 3:

            def callback(_: object) -> None:
                signal.raise_signal(self.signum)
                for _ in range(2):  # the handler runs here, inside the callback
                    pass

            freed = _Freed()
            ref = weakref.ref(freed, callback)
            del freed
            assert ref() is None
        return super().render(values)


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals need the main thread"
)
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_dropped_in_a_finalizer_still_ends_the_run_and_keeps_a_partial_file(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    python_sigint: None,
    signum: int,
    code: int,
) -> None:
    path = tmp_path / "f_data.hdf5"
    generator = SignalInFinalizerSine(signum)

    def main(argv: Any) -> int:
        DatasetCreator(
            generator, path=path, n_examples=64, chunk_size=4, workers=1, progress=False
        ).run()
        return 0

    with pytest.raises(SystemExit) as exit_info:
        cli.run_cli(main, [])
    err = capsys.readouterr().err
    assert exit_info.value.code == code, err
    assert "Exception ignored" not in err and "Traceback" not in err, err
    assert generator.calls == 3  # it stopped at the chunk that received the signal
    assert not path.exists() and Path(f"{path}.partial").exists()
    assert not lock_path(path).exists()
    with h5py.File(f"{path}.partial") as f:
        assert not f.attrs["complete"] and f["done_chunks"][:2].all()
    # The handlers are put back afterwards: nothing recorded leaks into the next command.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(SystemExit) as again:
        cli.run_cli(lambda argv: 0, [])
    assert again.value.code == 0


@pytest.mark.parametrize("where", ["reserve", "create_preallocated"])
def test_a_ctrl_c_while_the_file_is_made_leaves_nothing_that_blocks_a_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    path = tmp_path / "c_data.hdf5"
    real = getattr(writer, where)
    calls = {"n": 0}

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # the partial file exists by now, its contents half made
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(writer, where, interrupted)
    creator = DatasetCreator(SineGenerator(sample_rate=8192, n_samples=512), path=path,
                             n_examples=16, chunk_size=4, progress=False)  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        creator.run()
    assert not Path(f"{path}.partial").exists() and not lock_path(path).exists()
    monkeypatch.setattr(writer, where, real)
    assert creator.run(resume=True) == path  # starts afresh, as nothing was kept


# ---- 2. many signals at random moments of real runs ---------------------------------------


def _dexed_installed() -> bool:
    try:
        import dexed  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("dexed-py missing: CI installs the extra (uv sync --extra dexed)")
        return False
    return True


def _generation_command(kind: str, folder: Path, n_examples: int) -> list[str]:
    common = [
        "--num_examples", str(n_examples), "--workers", "2", "--length", "0.125",
        "--dataset_directory", str(folder), "--name", "d",
    ]  # fmt: skip
    if kind == "fm":
        return [sys.executable, "-m", "generators.fm_generator", *common]
    config = str(REPO / "plugin_config" / "dexed_small.json")
    return [sys.executable, "-m", "generators.dexed", "run", "--config", config, *common]


_PROGRESS = re.compile(r"\| *([1-9][0-9]*)/[0-9]+ \[")  # the bar, past its first examples


def _interrupt_one(kind: str, signum: int, folder: Path, delay_s: float, anchor: str) -> dict:
    """Start a run and signal it ``delay_s`` after ``anchor``; what came of it.

    ``anchor`` is ``"start"`` (its ``.partial`` file appears: workers still
    starting) or ``"writing"`` (the progress bar shows examples written).
    """
    n_examples = 30_000 if kind == "fm" else 20_000
    partial = folder / "d_data.hdf5.partial"
    for _ in range(3):  # a machine that finishes before the signal gets a larger run
        proc = subprocess.Popen(
            _generation_command(kind, folder, n_examples),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert proc.stderr is not None
        err: list[str] = []
        writing = threading.Event()

        def read(stream: Any = proc.stderr, err: list[str] = err, writing: Any = writing) -> None:
            while text := stream.read(64):
                err.append(text)
                if _PROGRESS.search("".join(err)[-200:]):
                    writing.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            if anchor == "start":
                while not partial.exists() and proc.poll() is None:
                    time.sleep(0.01)
            else:
                while not writing.wait(0.05) and proc.poll() is None:
                    pass
            time.sleep(delay_s)
            finished_first = proc.poll() is not None
            if not finished_first:
                if signum == signal.SIGINT:
                    os.killpg(proc.pid, signum)  # Ctrl-C reaches the terminal's whole group
                else:
                    proc.send_signal(signum)  # `kill PID` reaches the parent only
            proc.wait(timeout=120)
            reader.join(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if not finished_first:
            break
        for leftover in folder.iterdir():
            leftover.unlink()
        n_examples *= 4
    text = "".join(err)
    return {
        "kind": kind,
        "signal": signal.Signals(signum).name,
        "anchor": anchor,
        "delay_s": round(delay_s, 2),
        "code": proc.returncode,
        "files": sorted(p.name for p in folder.iterdir()),
        "err": text[-600:],
        "n_examples": n_examples,
    }


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX signals and sessions")
def test_ten_ctrl_c_and_ten_sigterm_at_random_moments_all_end_the_run_resumably(
    tmp_path: Path,
) -> None:
    kinds = ["fm", "dexed"] if _dexed_installed() else ["fm"]
    rng = random.Random(20261207)
    jobs = [
        (
            kinds[i % len(kinds)],
            signum,
            tmp_path / f"run{i}",
            rng.uniform(0.0, 1.0),
            "start" if i % 5 == 0 else "writing",  # most while it writes, where h5py frees objects
        )
        for i, signum in enumerate([signal.SIGINT] * 10 + [signal.SIGTERM] * 10)
    ]
    for _, _, folder, _, _ in jobs:
        folder.mkdir()
    with ThreadPoolExecutor(2) as pool:  # two runs at a time, each with two workers
        outcomes = list(pool.map(lambda job: _interrupt_one(*job), jobs))
    expected = {"SIGINT": 130, "SIGTERM": 143}
    wrong = [o for o in outcomes if o["code"] != expected[o["signal"]]]
    assert not wrong, wrong
    # Every run left a .partial file that --resume continues (unlocked, readable, its
    # finished chunks recorded), or none at all when stopped before its first example.
    done_counts = []
    for o, (_, _, folder, _, _) in zip(outcomes, jobs, strict=True):
        assert o["files"] in ([], ["d_data.hdf5.partial"]), o
        assert "Traceback" not in o["err"] and "Exception ignored" not in o["err"], o
        if o["files"]:
            with h5py.File(folder / "d_data.hdf5.partial") as f:
                assert not f.attrs["complete"]
                done_counts.append(int(f["done_chunks"][...].sum()))
    assert sum(c > 0 for c in done_counts) >= 12, outcomes  # most were stopped while writing
    # And --resume finishes one into the dataset an uninterrupted run makes (the cheaper synth).
    o, (kind, _, folder, _, _) = next(
        (o, job)
        for o, job in sorted(zip(outcomes, jobs, strict=True), key=lambda oj: oj[0]["kind"])
        if o["files"]
    )
    argv = [*_generation_command(kind, folder, o["n_examples"]), "--resume", "--no_progress"]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in folder.iterdir()) == ["d_data.hdf5"]
    _assert_rows_render_again(folder / "d_data.hdf5")
    for _, _, folder, _, _ in jobs:  # the runs reserve hundreds of MB each: not left to tmp_path
        for leftover in folder.iterdir():
            leftover.unlink()


def _assert_rows_render_again(path: Path) -> None:
    """Rows of a resumed file, first, last and a sample between, are what the synth renders."""
    from generators.dataset import open_dataset

    with open_dataset(path) as ds:
        generator = ds.make_generator()
        n = ds.n_examples
        rows = sorted({0, n - 1, *np.random.default_rng(0).integers(0, n, size=6).tolist()})
        audio, labels = ds.read(np.array(rows))
        for row, a, label in zip(rows, audio, labels, strict=True):
            again = generator.render_examples(seed=ds.seed, start=row, n_examples=1)
            np.testing.assert_array_equal(again.indices[0], label)
            np.testing.assert_allclose(again.audio[0], a, atol=1e-6)
        generator.close()


# ---- 3. a full disk, a file-size limit, a read-only folder ---------------------------------

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
    from generators import storage
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
    return DatasetCreator(generator, path=path, n_examples=160, seed=1, progress=False).run()


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
        cli.run_cli(main, argv)
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
                       n_examples=16, chunk_size=4, wav_directory=wavs, wav_prefix="w",
                       progress=False).run(resume="--resume" in argv)  # fmt: skip
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
