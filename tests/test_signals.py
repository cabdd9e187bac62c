"""Ctrl-C and SIGTERM end a dataset run with 130 / 143 and a resumable ``.partial`` file, every time.

Also when the handler's exception lands in a finalizer, where Python drops
it (h5py runs one for every object it frees): the signal is recorded and
raised again at the writer's next safe point.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
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

from core import commandline, interrupts
from generators import pool, writer
from generators.schema import lock_path
from generators.sine_generator import SineGenerator
from generators.writer import DatasetCreator, DatasetPlan

REPO = Path(__file__).resolve().parents[1]


# Each test in a folder of its own, with no INVERSYNTH_* variable and no .env leaking in.
pytestmark = pytest.mark.usefixtures("no_dotenv")


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
            generator,
            path=path,
            plan=DatasetPlan(n_examples=64),
            chunk_size=4,
            workers=1,
            progress=False,
        ).run()
        return 0

    with pytest.raises(SystemExit) as exit_info:
        commandline.run_cli(main, [])
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
        commandline.run_cli(lambda argv: 0, [])
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
    creator = DatasetCreator(
        SineGenerator(sample_rate=8192, n_samples=512),
        path=path,
        plan=DatasetPlan(n_examples=16),
        chunk_size=4,
        progress=False,
    )
    with pytest.raises(KeyboardInterrupt):
        creator.run()
    assert not Path(f"{path}.partial").exists() and not lock_path(path).exists()
    monkeypatch.setattr(writer, where, real)
    assert creator.run(resume=True) == path  # starts afresh, as nothing was kept


def held_until_gate_goes(synth: Any, gate: str) -> int:
    """A job that waits while ``gate`` exists (at most a minute)."""
    deadline = time.monotonic() + 60
    while Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return 0


def test_a_signal_dropped_in_a_finalizer_ends_the_wait_for_a_held_up_worker(
    tmp_path: Path,
) -> None:
    # The first raise was lost (as in a finalizer): only the record is left, and the
    # command waits for a worker that will not answer soon. It must stop waiting.
    gate = tmp_path / "gate"
    gate.touch()
    restore = interrupts.install()
    record = threading.Timer(0.5, lambda: setattr(interrupts, "_received", signal.SIGTERM))
    try:
        record.start()
        started = time.monotonic()
        with pytest.raises(interrupts.Terminated):
            list(
                pool.map_in_workers(
                    held_until_gate_goes, [str(gate)] * 2, generator_name="sine",
                    generator_config={"sample_rate": 8192, "n_samples": 512}, workers=2,
                )
            )  # fmt: skip
        assert time.monotonic() - started < 30  # not the job's minute
    finally:
        record.cancel()
        restore()
        gate.unlink(missing_ok=True)


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
            # A run whose dataset is already complete has only its exit left: a signal
            # then meets the default handler (-15) or nothing (0), and says nothing of
            # whether signals are kept. Such a run counts as finished, and a larger one
            # is tried. (A signal that is lost still fails: the dataset is completed
            # after it was sent.)
            finished_first = proc.poll() is not None or (folder / "d_data.hdf5").exists()
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
