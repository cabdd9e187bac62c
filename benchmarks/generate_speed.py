"""How fast the paper's FM dataset is made: raw rendering per core, then end to end to HDF5.

Run by hand::

    uv run python -m benchmarks.generate_speed                 # 20,000 examples, 1 and 2 workers
    uv run python -m benchmarks.generate_speed --num_examples 200000 --workers 2

Prints examples/s and "x real-time" (seconds of audio made per second). The
end-to-end figure is the whole dataset command: drawing parameters, rendering
in worker processes, and writing ``audio``, ``labels`` and ``values`` to HDF5.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from generators.fm_generator import FMGenerator
from generators.writer import DatasetCreator


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
        n_examples=n_examples,
        seed=0,
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


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_examples", type=int, default=20_000)
    parser.add_argument("--raw_examples", type=int, default=4096, help="examples of the raw test")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chunk_size", type=int, default=256)
    parser.add_argument(
        "--folder", type=Path, default=None, help="where to write (default: a temporary folder)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
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
