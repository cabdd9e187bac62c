"""Rendering speed of a real plugin (amsynth): examples per second with 1 and 2 workers.

Measurements per worker count:

* ``cpu``: a pure CPU-bound loop in N processes: the ceiling this machine
  (and whatever else runs on it) allows right now.
* ``pool``: the generator's own plugin hosts (``VSTGenerator(workers=N)``),
  hosts already started, rendering a batch: the steady-state rate; also the
  CPU time per example of the hosts and of the calling process, which does
  not depend on the machine's load, and the speed-up it allows on 2 idle cores.
* ``dataset/hosts``: a whole dataset run, start-up and HDF5 writing
  included: one ``DatasetCreator`` process, a generator with N plugin hosts
  (what ``python -m generators.vst run --workers N`` does).
* ``dataset/writers``: the same with N ``DatasetCreator`` worker processes,
  each rebuilding the generator with one plugin host.

Run by hand (needs ``apt-get install -y amsynth dpf-plugins-vst``)::

    uv run python -m benchmarks.vst_speed [--examples 2000] [--config plugin_config/amsynth.json]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from generators.vst.synth import HostSettings, VSTGenerator
from generators.writer import DatasetCreator, DatasetPlan

ROOT = Path(__file__).resolve().parents[1]


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def cpu_rate(config: Path, *, workers: int, n_examples: int) -> float:
    """Loops/s of a CPU-bound Python loop in ``workers`` processes (config unused)."""
    del config
    n = 2_000_000
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(_spin, [1000] * workers)  # start the processes first
        t0 = time.perf_counter()
        pool.map(_spin, [n] * (4 * workers))
        return 4 * workers / (time.perf_counter() - t0)


def _hosts_cpu_s(gen: VSTGenerator) -> float:
    """CPU seconds the generator's plugin host processes used so far (Linux /proc)."""
    total = 0.0
    hosts = gen._pool.hosts if gen._pool is not None else []
    for host in hosts:
        if host is not None:
            fields = Path(f"/proc/{host.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


CPU_PER_EXAMPLE: dict[int, tuple[float, float]] = {}  # workers -> (host s, caller s)


def pool_rate(config: Path, *, workers: int, n_examples: int) -> float:
    """Examples/s of ``VSTGenerator.render`` with ``workers`` hosts, after start-up."""
    with VSTGenerator(plugin_config=config, hosts=HostSettings(workers=workers)) as gen:
        ps = gen.parameter_set
        warm = ps.to_values(ps.sample_indices(seed=1, n_examples=4 * workers))
        gen.render(warm)  # starts every host
        values = ps.to_values(ps.sample_indices(seed=0, n_examples=n_examples))
        host0, caller0, t0 = _hosts_cpu_s(gen), time.process_time(), time.perf_counter()
        gen.render(values)
        elapsed = time.perf_counter() - t0
        CPU_PER_EXAMPLE[workers] = (
            (_hosts_cpu_s(gen) - host0) / n_examples,
            (time.process_time() - caller0) / n_examples,
        )
        return n_examples / elapsed


def _dataset_rate(config: Path, *, writers: int, hosts: int, n_examples: int) -> float:
    with (
        tempfile.TemporaryDirectory() as tmp,
        VSTGenerator(plugin_config=config, hosts=HostSettings(workers=hosts)) as gen,
    ):
        creator = DatasetCreator(
            gen,
            path=Path(tmp) / "bench_data.hdf5",
            plan=DatasetPlan(n_examples=n_examples),
            workers=writers,
            chunk_size=128,
            progress=False,
        )
        t0 = time.perf_counter()
        creator.run()
        return n_examples / (time.perf_counter() - t0)


def dataset_hosts_rate(config: Path, *, workers: int, n_examples: int) -> float:
    """Examples/s of a whole dataset run: one writer process, ``workers`` plugin hosts."""
    return _dataset_rate(config, writers=1, hosts=workers, n_examples=n_examples)


def dataset_writers_rate(config: Path, *, workers: int, n_examples: int) -> float:
    """Examples/s of a whole dataset run: ``workers`` writer processes, one host each."""
    return _dataset_rate(config, writers=workers, hosts=1, n_examples=n_examples)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--config", type=Path, default=ROOT / "plugin_config" / "amsynth.json")
    parser.add_argument(
        "--only", default="cpu,pool,dataset/hosts,dataset/writers", help="measurements to make"
    )
    args = parser.parse_args(argv)
    print(f"{args.examples} examples of {args.config.name}, 1 s at 16384 Hz each")
    print(f"best of {args.repeats} runs, 1 and 2 workers alternating (the machine may be shared)")
    measures = (
        ("cpu", cpu_rate),
        ("pool", pool_rate),
        ("dataset/hosts", dataset_hosts_rate),
        ("dataset/writers", dataset_writers_rate),
    )
    for name, measure in measures:
        if name not in args.only.split(","):
            continue
        runs: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(args.repeats):
            for w in (1, 2):
                runs[w].append(measure(args.config, workers=w, n_examples=args.examples))
        best = {w: max(r) for w, r in runs.items()}
        print(
            f"{name:<16} 1 worker: {best[1]:7.1f} /s   2 workers: {best[2]:7.1f} /s   "
            f"speed-up {best[2] / best[1]:.2f}x"
        )
        if name == "pool":
            # CPU time does not depend on what else runs: the speed-up two idle
            # cores allow is 2 * host / (host + caller) (the caller's share competes).
            host, caller = CPU_PER_EXAMPLE[1]
            print(
                f"{'':<16} CPU per example: host {1e3 * host:.2f} ms, caller {1e3 * caller:.2f} ms"
                f" -> 2 idle cores allow {2 * host / (host + caller):.2f}x"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
