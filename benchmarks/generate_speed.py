"""How fast the paper's FM dataset is made: raw rendering per core, end to end to HDF5, start-up.

Run by hand::

    uv run python -m benchmarks.generate_speed                 # 20,000 examples, 1 and 2 workers
    uv run python -m benchmarks.generate_speed --num_examples 200000 --workers 2
    uv run python -m benchmarks.generate_speed --startup       # the fixed cost of a small dataset

Prints examples/s and "x real-time" (seconds of audio made per second). The
end-to-end figure is the whole dataset command: drawing parameters, rendering
in worker processes, and writing ``audio``, ``labels`` and ``values`` to HDF5.

``--startup`` times the command itself (``python -m generators.fm_generator
--num_examples 4000 --workers 2``, a process of its own, wall time) against
what 4,000 examples take at the steady rate of a 40,000-example run of the same
command in the same benchmark run, and says whether it is within 1.4 times
that. It does so where Python writes bytecode caches and where it may not
(``PYTHONDONTWRITEBYTECODE=1`` with a fresh copy of the toolkit's sources, as
in a container), with ``--no_bytecode`` also without any bytecode at all
(what a ``.venv`` installed without ``compile-bytecode`` gives there), and
times what ``uv run`` adds to every command by re-checking the installed
bytecode. The settings take turns; each round's small run is set against the
large run right after it, and the median of the rounds' ratios is the figure.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from generators.fm_generator import FMGenerator
from generators.writer import DatasetCreator, DatasetPlan


def raw_render_rate(generator: FMGenerator, *, n_examples: int, chunk_size: int) -> float:
    """Examples per CPU-second of ``render_examples`` (sampling + rendering), one core.

    CPU time rather than wall time, so that other programs on the machine do not
    count against the synth.
    """
    generator.render_examples(seed=0, start=0, n_examples=8)  # load the compiled kernel
    start = time.process_time()
    for first in range(0, n_examples, chunk_size):
        generator.render_examples(
            seed=1, start=first, n_examples=min(chunk_size, n_examples - first)
        )
    return n_examples / (time.process_time() - start)


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds used so far by this process and by its finished child processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def end_to_end_rate(
    generator: FMGenerator, *, n_examples: int, workers: int, chunk_size: int, folder: Path
) -> tuple[float, float, float]:
    """A whole dataset run, worker start-up and file writing included.

    Returns
    -------
    rate : float
        Examples per wall-clock second.
    parent_ms, workers_ms : float
        CPU milliseconds per example spent in this process (sampling, writing
        the file; rendering too when ``workers`` is 1) and in the worker processes.
    """
    path = folder / f"speed_{workers}w_data.hdf5"
    creator = DatasetCreator(
        generator,
        path=path,
        plan=DatasetPlan(n_examples=n_examples, seed=0),
        workers=workers,
        chunk_size=chunk_size,
        progress=False,
    )
    own0, children0 = _cpu_seconds()
    start = time.perf_counter()
    creator.run(overwrite=True)
    elapsed = time.perf_counter() - start
    own1, children1 = _cpu_seconds()
    path.unlink()
    per_example_ms = 1e3 / n_examples
    return (
        n_examples / elapsed,
        (own1 - own0) * per_example_ms,
        (children1 - children0) * per_example_ms,
    )


REPO = Path(__file__).resolve().parents[1]
STARTUP_TARGET = 1.4  # a small run may take this many times its examples at the steady rate


def command_seconds(
    n_examples: int, *, workers: int, source: Path, folder: Path, env: dict[str, str]
) -> float:
    """Wall seconds of ``python -m generators.fm_generator`` making ``n_examples``, start to exit."""
    argv = [
        sys.executable, "-m", "generators.fm_generator", "--num_examples", str(n_examples),
        "--workers", str(workers), "--dataset_directory", str(folder), "--name", "startup",
        "--no_progress", "--overwrite",
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=source, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"the command failed ({done.returncode}): {done.stderr[-2000:]}")
    for path in folder.glob("startup_data.hdf5*"):
        path.unlink()
    return elapsed


def _fresh_sources(source: Path, into: Path) -> Path:
    """A copy of the toolkit's packages without bytecode caches, as a fresh checkout has.

    The packages the FM command imports: ``generators`` and the ``core`` it builds on
    (``generators`` never imports ``models``).
    """
    for package in ("core", "generators"):
        shutil.copytree(
            source / package, into / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return into


class Setting(NamedTuple):
    """Where and how the command runs: its description, environment and sources."""

    name: str
    env: dict[str, str]
    source: Path


def report_startup(
    setting: Setting, small_s: list[float], large_s: list[float], args: argparse.Namespace
) -> None:
    """Print the small run's time against the steady rate of the large one, in one setting.

    Each round's small run is set against the large run right after it (the
    load of other jobs changes slowly), and the median of the rounds' ratios
    is the figure; the fastest runs, which other jobs slowed least, give the
    rates and the fixed cost.
    """
    ratios = [
        t_small / (args.small * t_large / args.large)
        for t_small, t_large in zip(small_s, large_s, strict=True)
    ]
    ratio = statistics.median(ratios)
    t_small, t_large = min(small_s), min(large_s)
    steady = args.large / t_large  # examples/s of the large run, its own start-up included
    marginal = (args.large - args.small) / max(t_large - t_small, 1e-9)
    verdict = "met" if ratio <= STARTUP_TARGET else f"NOT met, {ratio / STARTUP_TARGET:.2f}x over"
    print(
        f"{setting.name}:\n"
        f"  ratio {ratio:.2f} (target <= {STARTUP_TARGET}: {verdict}); rounds: "
        + ", ".join(
            f"{ts:.2f} s / {args.small / (args.large / tl):.2f} s = {r:.2f}"
            for ts, tl, r in zip(small_s, large_s, ratios, strict=True)
        )
        + f"\n  fastest: {args.small:,} examples {t_small:.2f} s, {args.large:,} {t_large:.2f} s "
        f"({steady:,.0f} examples/s); marginal rate {marginal:,.0f} examples/s, fixed cost "
        f"{t_small - args.small / marginal:.2f} s",
        flush=True,
    )


def uv_run_overhead_s(repeats: int) -> tuple[float, float] | None:
    """Wall seconds ``uv run`` adds to a command, and of them its sync (None without uv).

    The sync (with ``compile-bytecode``: a check of every installed module's
    bytecode) is what ``uv run --no-sync`` leaves out. The least of
    ``repeats``: other jobs on the machine only ever add time.
    """
    uv = shutil.which("uv")
    if uv is None:
        return None
    python = [sys.executable, "-c", "pass"]
    with_uv = [uv, "run", "--project", str(REPO), "python", "-c", "pass"]

    def seconds(argv: list[str]) -> float:
        start = time.perf_counter()
        subprocess.run(argv, cwd=REPO, capture_output=True, check=True)
        return time.perf_counter() - start

    total = min(seconds(with_uv) - seconds(python) for _ in range(repeats))
    no_sync = min(seconds([*with_uv[:2], "--no-sync", *with_uv[2:]]) for _ in range(repeats))
    return total, total - (no_sync - min(seconds(python) for _ in range(repeats)))


def _settings(source: Path, tmp: Path, env: dict[str, str], no_bytecode: bool) -> list[Setting]:
    """The settings to time one source folder in (its copies made under ``tmp``)."""
    label = "" if source == REPO else f" [{source}]"
    no_write = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    fresh = _fresh_sources(source, tmp / "fresh")
    settings = [
        Setting(f"bytecode caches written (PYTHONDONTWRITEBYTECODE unset){label}", env,
                _fresh_sources(source, tmp / "written")),
        Setting(f"PYTHONDONTWRITEBYTECODE=1, a fresh copy of the sources{label}", no_write, fresh),
    ]  # fmt: skip
    if no_bytecode:
        empty = str(tmp / "no_pycache")  # Python looks for bytecode only here: there is none
        settings.append(Setting(f"no bytecode at all (a .venv without compile-bytecode, "
                                f"PYTHONDONTWRITEBYTECODE=1){label}",
                                {**no_write, "PYTHONPYCACHEPREFIX": empty}, fresh))  # fmt: skip
    return settings


def startup(args: argparse.Namespace) -> None:
    """The ``--startup`` measurements, in fresh copies of the sources (no ``.env`` read).

    The settings (of every ``--source``) take turns, a small and a large run
    each per round, so that the load of other jobs, which drifts, weighs on
    all of them alike.
    """
    sources = [path.resolve() for path in args.source] if args.source else [REPO]
    workers = args.workers[-1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVERSYNTH_", "PYTHON"))}
    print(
        f"the command with {workers} workers: {args.small:,} and {args.large:,} examples, "
        f"{args.repeats} rounds after a warm-up; load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        folder.mkdir()
        settings = [
            setting
            for i, source in enumerate(sources)
            for setting in _settings(source, Path(tmp) / str(i), env, args.no_bytecode)
        ]
        run = functools.partial(command_seconds, workers=workers, folder=folder)
        for setting in settings:  # a fresh copy compiles the synth's kernel once (Numba's cache)
            run(args.small, source=setting.source, env=setting.env)
        times: dict[str, tuple[list[float], list[float]]] = {s.name: ([], []) for s in settings}
        for _ in range(args.repeats):
            for setting in settings:
                for n, into in zip((args.small, args.large), times[setting.name], strict=True):
                    into.append(run(n, source=setting.source, env=setting.env))
        for setting in settings:
            report_startup(setting, *times[setting.name], args)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    overhead = uv_run_overhead_s(args.repeats)
    if overhead is not None:
        print(
            f"uv run adds {overhead[0]:.2f} s to every command, of which {overhead[1]:.2f} s "
            "its sync (the bytecode check; uv run --no-sync leaves it out)"
        )


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_examples", type=int, default=20_000)
    parser.add_argument("--raw_examples", type=int, default=4096, help="examples of the raw test")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chunk_size", type=int, default=256)
    parser.add_argument(
        "--folder", type=Path, default=None, help="where to write (default: a temporary folder)"
    )
    startup_options = parser.add_argument_group("--startup")
    startup_options.add_argument(
        "--startup", action="store_true", help="time the start-up of a small dataset command"
    )
    startup_options.add_argument("--small", type=int, default=4_000, help="examples, small run")
    startup_options.add_argument("--large", type=int, default=40_000, help="examples, steady run")
    startup_options.add_argument("--repeats", type=int, default=5, help="rounds of runs")
    startup_options.add_argument(
        "--no_bytecode", action="store_true", help="also time it without any bytecode"
    )
    startup_options.add_argument(
        "--source",
        type=Path,
        nargs="+",
        default=None,
        help="toolkit folders to time, taking turns (default: this one)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    if args.startup:
        startup(args)
        return
    generator = FMGenerator()
    seconds = generator.duration_s
    print(
        f"FM synth: {generator.n_samples} samples at {generator.sample_rate} Hz "
        f"({seconds:g} s per example), chunks of {args.chunk_size}"
    )
    raw = raw_render_rate(generator, n_examples=args.raw_examples, chunk_size=args.chunk_size)
    print(
        f"raw render, 1 core:   {raw:8.0f} examples/s  {raw * seconds:8.0f} x real-time  "
        f"({1e3 / raw:.3f} ms/example)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder if args.folder is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for workers in args.workers:
            rate, parent_ms, workers_ms = end_to_end_rate(
                generator,
                n_examples=args.num_examples,
                workers=workers,
                chunk_size=args.chunk_size,
                folder=folder,
            )
            print(
                f"end to end, {workers} worker{'s' if workers > 1 else ' '}: {rate:8.0f} examples/s  "
                f"{rate * seconds:8.0f} x real-time  ({args.num_examples} examples to HDF5; "
                f"CPU ms/example: main process {parent_ms:.3f}, workers {workers_ms:.3f})"
            )


if __name__ == "__main__":
    main()
