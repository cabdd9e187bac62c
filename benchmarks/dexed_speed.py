"""How fast DX7 (Dexed) datasets are made: raw rendering on one core, then end to end to HDF5.

Needs the optional extra (``uv sync --extra dexed``). Run by hand::

    uv run python -m benchmarks.dexed_speed                       # 6,000 examples, medium config
    uv run python -m benchmarks.dexed_speed --config plugin_config/dexed_full.json --workers 1 2

Per worker count N:

* ``cpu``: a CPU-bound Python loop in N processes, the ceiling this machine (and
  whatever else runs on it) allows right now;
* ``run``: the whole ``python -m generators.dexed run --workers N`` path, drawing
  parameters, rendering and writing ``audio``, ``labels`` and ``values`` to HDF5:
  one writer process whose generator renders with N engine threads;
* ``processes``: the same dataset with N ``DatasetCreator`` worker processes,
  each rebuilding the generator (start-up and copying audio between processes
  included).

Prints examples/s, "x real-time", CPU ms per example (all processes, and the
writing thread's share) and the speed-up over one worker, next to the machine's
ceiling: on a shared machine the ratio of the two says more than either. For
``run`` it also prints the speed-up its CPU times allow on N idle cores, which
does not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from generators.dexed.synth import DexedGenerator
from generators.writer import DatasetCreator, DatasetPlan


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def cpu_rate(workers: int) -> float:
    """Loops/s of a CPU-bound Python loop in ``workers`` processes."""
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(_spin, [1000] * workers)  # start the processes first
        t0 = time.perf_counter()
        pool.map(_spin, [2_000_000] * (4 * workers))
        return 4 * workers / (time.perf_counter() - t0)


def raw_render_rate(generator: DexedGenerator, *, n_examples: int, chunk_size: int) -> float:
    """Examples per CPU-second of ``render_examples`` (drawing + rendering), one core."""
    generator.render_examples(seed=0, start=0, n_examples=8)  # start the engine
    start = time.process_time()
    for first in range(0, n_examples, chunk_size):
        generator.render_examples(
            seed=1, start=first, n_examples=min(chunk_size, n_examples - first)
        )
    return n_examples / (time.process_time() - start)


def _cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished child processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Run(NamedTuple):
    rate: float  # examples per wall-clock second
    cpu_ms: float  # CPU ms per example, all threads and processes
    writer_ms: float  # CPU ms per example of the writing thread (the main thread)


def end_to_end_rate(
    config: Path, *, mode: str, n_examples: int, workers: int, chunk_size: int, folder: Path
) -> Run:
    """A whole dataset run from a fresh generator, start-up and file writing included.

    Parameters
    ----------
    mode : {"run", "processes"}
        ``workers`` engine threads in the writer process (the ``run`` command), or
        ``workers`` ``DatasetCreator`` worker processes.
    """
    path = folder / f"dexed_speed_{mode}_{workers}_data.hdf5"
    cpu0, writer0 = _cpu_seconds(), time.thread_time()
    start = time.perf_counter()
    engines = workers if mode == "run" else 1
    with DexedGenerator(dexed_config=config, workers=engines) as generator:
        DatasetCreator(
            generator,
            path=path,
            plan=DatasetPlan(n_examples=n_examples, seed=0),
            workers=1 if mode == "run" else workers,
            chunk_size=chunk_size,
            progress=False,
        ).run(overwrite=True)
    elapsed = time.perf_counter() - start
    per_example_ms = 1e3 / n_examples
    path.unlink()
    return Run(
        n_examples / elapsed,
        (_cpu_seconds() - cpu0) * per_example_ms,
        (time.thread_time() - writer0) * per_example_ms,
    )


def idle_speedup(one: Run, run: Run, workers: int) -> float:
    """The speed-up over one worker that ``run``'s CPU times allow on ``workers`` idle cores.

    The writer thread and the engine threads overlap, so an example takes at
    least the longest of: all the CPU time shared by the cores, the writer's
    part, one engine thread's part.
    """
    engines_ms = run.cpu_ms - run.writer_ms
    wall_ms = max(run.cpu_ms / workers, run.writer_ms, engines_ms / workers)
    return one.cpu_ms / wall_ms


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("plugin_config/dexed_medium.json"))
    parser.add_argument("--num_examples", type=int, default=6_000)
    parser.add_argument("--raw_examples", type=int, default=2048, help="examples of the raw test")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chunk_size", type=int, default=256)
    parser.add_argument(
        "--folder", type=Path, default=None, help="where to write (default: a temporary folder)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    generator = DexedGenerator(dexed_config=args.config)
    seconds = generator.duration_s
    print(
        f"Dexed, {args.config.name}: {generator.parameter_set.n_parameters} parameters, "
        f"{generator.n_samples} samples at {generator.sample_rate} Hz, chunks of {args.chunk_size}, "
        f"{args.num_examples} examples to HDF5; {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f} at the start"
    )
    raw = raw_render_rate(generator, n_examples=args.raw_examples, chunk_size=args.chunk_size)
    print(
        f"raw render, 1 core: {raw:8.0f} examples/s {raw * seconds:8.0f} x real-time "
        f"({1e3 / raw:.3f} CPU ms/example)"
    )
    base: dict[str, float] = {}
    one: Run | None = None
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder if args.folder is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for workers in args.workers:
            label = f"{workers} worker{'s' if workers > 1 else ' '}"
            ceiling = cpu_rate(workers)
            if workers == 1:
                base["cpu"] = ceiling
            print(
                f"{label} cpu      : {ceiling:8.2f} loops/s    "
                f"{ceiling / base.get('cpu', ceiling):.2f}x one worker: this machine's ceiling now "
                f"(load average {os.getloadavg()[0]:.2f})"
            )
            for mode in ("run", "processes"):
                if mode == "processes" and workers == 1:
                    continue  # the same as "run" with one worker
                result = end_to_end_rate(
                    args.config,
                    mode=mode,
                    n_examples=args.num_examples,
                    workers=workers,
                    chunk_size=args.chunk_size,
                    folder=folder,
                )
                if workers == 1:
                    base["dataset"], one = result.rate, result
                bound = (
                    f", allows {idle_speedup(one, result, workers):.2f}x on {workers} idle cores"
                    if mode == "run" and one is not None and workers > 1
                    else ""
                )
                print(
                    f"{label} {mode:<9}: {result.rate:8.1f} examples/s "
                    f"{result.rate / base.get('dataset', result.rate):.2f}x one worker, "
                    f"{result.rate * seconds:.0f} x real-time; CPU ms/example {result.cpu_ms:.3f}, "
                    f"writer thread {result.writer_ms:.3f}{bound} "
                    f"(load average {os.getloadavg()[0]:.2f})"
                )


if __name__ == "__main__":
    main()
