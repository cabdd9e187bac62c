"""A small dataset starts fast: its command imports only what it uses, and its workers start first.

The fixed cost of a dataset command (imports, worker processes that each
import Numba and load the FM kernel) dominates small runs; timings are in
``benchmarks/generate_speed.py --startup``. These tests check the causes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from core.errors import InverSynthError
from generators import pool

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("numba", "llvmlite", "scipy", "matplotlib", "librosa", "tensorflow", "keras", "soundfile")

# Runs the FM command's main() in this interpreter and reports, as JSON: the heavy
# modules it imported, whether h5py was imported when the first worker process
# started, and how many worker processes started.
PROBE = textwrap.dedent(
    """
    import json, sys
    import multiprocessing.context as context

    HEAVY = {heavy!r}


    def main():
        starts = []
        original = context.SpawnProcess.start

        def start(self):
            starts.append("h5py" in sys.modules)
            original(self)

        context.SpawnProcess.start = start
        from generators import fm_generator

        try:
            code = fm_generator.main(sys.argv[1:])
        except SystemExit as exc:  # --help
            code = exc.code
        heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set(HEAVY))
        print(json.dumps({{"code": code, "heavy": heavy, "h5py_at_spawn": starts}}))


    if __name__ == "__main__":  # the workers import this file too (spawn)
        main()
    """
).format(heavy=HEAVY)


def probe(tmp_path: Path, *argv: str) -> dict[str, Any]:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    done = subprocess.run(
        [sys.executable, str(script), *argv],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_fm_commands_help_imports_no_synth_kernel_hdf5_or_plotting(tmp_path: Path) -> None:
    result = probe(tmp_path, "--help")
    assert result["code"] == 0 and result["heavy"] == [], result


def test_a_dataset_run_with_workers_leaves_numba_to_them_and_starts_them_before_hdf5(
    tmp_path: Path,
) -> None:
    argv = ["--num_examples", "64", "--chunk_size", "16", "--workers", "2", "--length", "0.25",
            "--dataset_directory", str(tmp_path / "data"), "--no_progress"]  # fmt: skip
    result = probe(tmp_path, *argv)
    assert result["code"] == 0, result
    # The writer never renders: Numba (and SciPy, which Numba imports) are the workers' alone.
    assert result["heavy"] == [], result
    # Both workers start before this process imports HDF5, and only they: the writer takes
    # over the processes it started instead of starting others.
    assert result["h5py_at_spawn"] == [False, False], result


def pid_of_worker(synth: Any, job: int) -> int:
    return os.getpid()


def exit_code_of(process: Any, timeout_s: float = 30.0) -> int | None:
    """The exit code of an ended worker, waiting for it at most ``timeout_s``.

    Not ``join()`` alone: the pool's own thread may reap the worker at the same
    moment, and ``join()`` then returns before the exit code is recorded.
    """
    deadline = time.monotonic() + timeout_s
    while process.exitcode is None and time.monotonic() < deadline:
        process.join(timeout=0.1)
    return process.exitcode


SINE = {"sample_rate": 8192, "n_samples": 512, "n_levels": 4}


def test_workers_started_ahead_are_the_ones_that_render() -> None:
    with pool.started_workers(generator_name="sine", generator_config=SINE, workers=2):
        started = {p.pid for p in pool._started[pool._key("sine", SINE, 2)]._processes.values()}
        pids = set(
            pool.map_in_workers(
                pid_of_worker, range(8), generator_name="sine", generator_config=SINE, workers=2
            )
        )
    assert pids <= started and len(started) == 2
    assert pool._started == {}


def test_workers_started_for_a_command_that_is_refused_end_with_it_at_once() -> None:
    with (
        pytest.raises(InverSynthError, match="refused"),
        pool.started_workers(generator_name="sine", generator_config=SINE, workers=2),
    ):
        processes = list(pool._started[pool._key("sine", SINE, 2)]._processes.values())
        raise InverSynthError("refused")
    for process in processes:
        assert exit_code_of(process) == -signal.SIGTERM  # ended, not left to finish starting
    assert pool._started == {}


def test_the_start_up_benchmark_runs_the_fm_command_from_its_copy_of_the_sources(
    tmp_path: Path,
) -> None:
    # benchmarks/generate_speed.py --startup times the command in a fresh copy of the
    # sources, with no PYTHON* variable: the copy must hold every package it imports.
    from benchmarks.generate_speed import _fresh_sources

    source = _fresh_sources(REPO, tmp_path / "copy")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVERSYNTH_", "PYTHON"))}
    done = subprocess.run(
        [sys.executable, "-m", "generators.fm_generator", "--help"],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
