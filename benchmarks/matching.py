"""Sound matching: every method on held-out sounds of a run's synth and on sounds no synth made.

For each method: renders per sound, seconds per sound (one process; run it
with ``OPENBLAS_NUM_THREADS=1`` for one core), mean rho_STFT (%), mean
log-spectral distance (dB) and mean multi-resolution distance (dB, the
search's objective). The methods at the same number of renders as the hybrid
show whether it beats each of its parts; the hybrid at ``--time_limit_s``
is the one the targets are about.

    OPENBLAS_NUM_THREADS=1 python -m benchmarks.matching --run demo/runs/C6_fm_demo
    ... --n_sounds 200 --time_limit_s 2                  # the full measure
    ... --run runs/C6_amsynth --data_dir data --n_sounds 100  # a plugin's run

The target sounds come from a fresh dataset of the run's synth (``--targets_seed``,
default 987654, which no training set uses) and the lookup dataset from another
seed; both are made if missing (``--data_dir``). The foreign sounds: a plucked string
(Karplus-Strong, 44.1 kHz stereo, resampled), a noise burst with an envelope,
a decaying major chord, a sine with vibrato, and a sound of the synth 26 dB quieter.
"""

from __future__ import annotations

import argparse
import atexit
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from generators.dataset import open_dataset
from generators.sound_generator import SoundGenerator, load_generator
from generators.writer import DatasetCreator, DatasetPlan
from models.cli.demo_app import HELD_OUT_SEED, plucked_string
from models.common.run import Run, RunInfo, load_run
from models.matching.audio_io import fit_length, resample, to_mono
from models.matching.distance import MultiResolutionDistance
from models.matching.lookup import DatasetLookup
from models.matching.matchers import make_matcher
from models.matching.objective import BUDGET_REFERENCE_S, DEFAULT_BUDGET_RENDERS
from models.matching.sound_metrics import reconstruction_metrics


def ensure_dataset(
    path: Path, generator: SoundGenerator, *, n_examples: int, seed: int, workers: int
) -> Path:
    if not path.exists():
        print(f"making {path} ({n_examples} {generator.name} examples, seed {seed})", flush=True)
        DatasetCreator(
            generator,
            path=path,
            plan=DatasetPlan(n_examples=n_examples, seed=seed),
            workers=workers,
            progress=False,
        ).run()
    return path


def foreign_sounds(
    sample_rate: int, n_samples: int, synth_sound: np.ndarray, synth: str
) -> dict[str, np.ndarray]:
    """Sounds the synth did not make, [n_samples] float32 each, at ``sample_rate``."""
    t = np.arange(n_samples) / sample_rate
    rng = np.random.default_rng(0)
    envelope = np.minimum(1.0, t / 0.01) * np.exp(-t / 0.2)
    chord = sum(np.sin(2 * np.pi * f * t) for f in (523.25, 659.26, 783.99)) / 3.0
    pluck = to_mono(plucked_string())
    sounds = {
        "plucked string": fit_length(
            resample(pluck, orig_rate=44100, target_rate=sample_rate), n_samples
        ),
        "noise burst": 0.5 * envelope * rng.standard_normal(n_samples),
        "decaying chord": 0.8 * np.exp(-t / 0.4) * chord,
        "vibrato sine": 0.5
        * np.sin(2 * np.pi * (600.0 * t - 12.0 / (2 * np.pi * 5.5) * np.cos(2 * np.pi * 5.5 * t))),
        f"{synth} sound at -26 dB": 0.05 * synth_sound,
    }
    return {k: np.asarray(v, dtype=np.float32) for k, v in sounds.items()}


def measure(
    label: str,
    run_method: Callable[[np.ndarray], Any],
    targets: np.ndarray,
    *,
    distance: MultiResolutionDistance,
    sample_rate: int,
) -> dict[str, Any]:
    """Match every target; the table row and per-sound results."""
    renders, seconds, audio, start_rho, start_lsd = [], [], [], [], []
    for target in targets:
        t0 = time.perf_counter()
        result = run_method(target)
        seconds.append(time.perf_counter() - t0)
        renders.append(result.renders)
        audio.append(result.audio)
        start = getattr(
            result, "start_metrics", {"rho_stft": np.nan, "log_spectral_distance": np.nan}
        )
        start_rho.append(100.0 * start["rho_stft"])
        start_lsd.append(start["log_spectral_distance"])
    matched = np.stack(audio)
    metrics = reconstruction_metrics(targets, matched, sample_rate=sample_rate)
    distances = np.array(
        [
            distance.distance(distance.target(t), a[None, :])[0]
            for t, a in zip(targets, matched, strict=True)
        ]
    )
    return {
        "label": label,
        "renders": float(np.mean(renders)),
        "max_renders": int(np.max(renders)),
        "seconds": float(np.mean(seconds)),
        "max_seconds": float(np.max(seconds)),
        "rho": 100.0 * metrics["rho_stft"],
        "lsd": metrics["log_spectral_distance"],
        "distance": distances,
        "start_rho": np.array(start_rho),
        "start_lsd": np.array(start_lsd),
    }


def cost_of_objective(generator: SoundGenerator, distance: MultiResolutionDistance) -> None:
    """Seconds per sound of rendering and of the distance, in batches of 64."""
    values = generator.parameter_set.to_values(
        generator.parameter_set.sample_indices(seed=5, n_examples=256)
    )
    target = distance.target(generator.render(values[:1])[0])
    audio = generator.render(values[:64])
    distance.distance(target, audio)  # warm up
    # The fastest of five passes: other processes' load only ever adds time.
    render_s, distance_s = np.inf, np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        audio = np.concatenate([generator.render(values[i : i + 64]) for i in range(0, 256, 64)])
        render_s = min(render_s, (time.perf_counter() - t0) / 256)
        t0 = time.perf_counter()
        for i in range(0, 256, 64):
            distance.distance(target, audio[i : i + 64])
        distance_s = min(distance_s, (time.perf_counter() - t0) / 256)
    print(
        f"per candidate: render {1000 * render_s:.3f} ms, multi-resolution distance "
        f"{1000 * distance_s:.3f} ms ({distance_s / render_s:.2f}x the render)",
        flush=True,
    )


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    head = (
        f"| {'method':<44} | renders/sound | s/sound (max) | rho_STFT % | LSD dB | multi-res dB |"
    )
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for r in rows:
        print(
            f"| {r['label']:<44} | {r['renders']:>13.0f} | {r['seconds']:>5.2f} ({r['max_seconds']:>5.2f}) "
            f"| {np.mean(r['rho']):>10.1f} | {np.mean(r['lsd']):>6.2f} | {np.mean(r['distance']):>12.2f} |",
            flush=True,
        )


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.matching",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--run", type=Path, default=Path("demo/runs/C6_fm_demo"), help="the network's run"
    )
    parser.add_argument("--data_dir", type=Path, default=Path("demo/data"))
    parser.add_argument(
        "--n_sounds", type=int, default=40, help="held-out target sounds of the run's synth"
    )
    parser.add_argument("--targets_seed", type=int, default=HELD_OUT_SEED)
    parser.add_argument("--lookup_examples", type=int, default=20000)
    parser.add_argument("--lookup_seed", type=int, default=1)
    parser.add_argument(
        "--renders",
        type=int,
        default=DEFAULT_BUDGET_RENDERS,
        help="the same-renders budget (default: a match's default budget)",
    )
    parser.add_argument(
        "--time_limit_s",
        type=float,
        default=BUDGET_REFERENCE_S,
        help="the timed rows' budget (default: the time the default renders take on 2 cores)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="processes making the datasets")
    parser.add_argument("--skip_foreign", action="store_true")
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help="rows to run, by number: 0 random, 1 network, 2 lookup, 3-6 at --renders, 7 hybrid "
        "timed, 8-10 network, lookup and search timed like the hybrid",
    )
    parser.add_argument(
        "--targets_file",
        type=Path,
        default=None,
        help="match the first --n_sounds sounds of this dataset of the run's synth instead (a "
        "bank of real patches, say); default: a fresh dataset of --targets_seed",
    )
    parser.add_argument(
        "--continuous", action="store_true", help="also the hybrid with CMA-ES between levels"
    )
    return parser


def _targets_and_lookup(
    args: argparse.Namespace, generator: SoundGenerator
) -> tuple[np.ndarray, str, DatasetLookup]:
    """The target sounds [n, n_samples], what they are, and the lookup (made if missing)."""
    synth = generator.name
    targets_path = args.targets_file or ensure_dataset(
        args.data_dir / f"{synth}_targets_seed{args.targets_seed}_data.hdf5",
        generator,
        n_examples=max(args.n_sounds, 200),
        seed=args.targets_seed,
        workers=args.workers,
    )
    targets_name = (
        f"sounds of {args.targets_file.name}"
        if args.targets_file
        else f"held-out {synth} sounds (seed {args.targets_seed})"
    )
    lookup_path = ensure_dataset(
        args.data_dir / f"{synth}_lookup{args.lookup_examples}_seed{args.lookup_seed}_data.hdf5",
        generator,
        n_examples=args.lookup_examples,
        seed=args.lookup_seed,
        workers=args.workers,
    )
    with open_dataset(targets_path) as ds:
        targets, _ = ds.read(np.arange(min(args.n_sounds, ds.n_examples)))
    t0 = time.perf_counter()
    lookup = DatasetLookup.open(lookup_path, generator=generator, progress=True)
    print(
        f"lookup index of {lookup.n_examples} examples: {time.perf_counter() - t0:.1f} s to open",
        flush=True,
    )
    t0 = time.perf_counter()
    for target in targets[:20]:
        lookup.query(target, k=32)
    print(
        f"lookup query: {(time.perf_counter() - t0) / 20 * 1000:.1f} ms per sound over {lookup.n_examples} examples",
        flush=True,
    )
    return targets, targets_name, lookup


def _one_thread_run(run_dir: Path) -> Run:
    """The run, its TensorFlow held to one thread (the timings are per core)."""
    import tensorflow as tf  # deferred: TensorFlow only once the datasets exist

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    return load_run(run_dir)


Method = Callable[[np.ndarray], Any]


def _methods(
    args: argparse.Namespace, run: Run, common: dict[str, Any]
) -> tuple[list[tuple[str, Method]], Callable[..., Method]]:
    """The rows of the table (label, method), and the maker of a method at a budget."""
    generator = common["generator"]
    matchers = {
        name: make_matcher(name, **common) for name in ("network", "lookup", "search", "hybrid")
    }
    seed, r, limit_s = args.seed, args.renders, args.time_limit_s

    def with_budget(name: str, **budget: Any) -> Method:
        budget = {"max_renders": None, **budget}  # a timed row has no render budget
        return lambda target: matchers[name].match(target, seed=seed, **budget)

    rng = np.random.default_rng(seed)

    class _Random:
        def __init__(self, target: np.ndarray) -> None:
            idx = generator.parameter_set.sample_indices(
                seed=int(rng.integers(2**31)), n_examples=1
            )
            self.audio = generator.render_indices(idx)[0]
            self.renders = 1

    methods: list[tuple[str, Method]] = [
        ("random patch", _Random),
        (f"network ({run.model_name} guess)", with_budget("network", max_renders=1)),
        ("lookup, nearest by index feature", with_budget("lookup", max_renders=1)),
        (f"network: guess + draws, {r} renders", with_budget("network", max_renders=r)),
        (f"lookup: {r} nearest, re-ranked", with_budget("lookup", max_renders=r)),
        (f"search from random starts, {r} renders", with_budget("search", max_renders=r)),
        (f"hybrid, {r} renders", with_budget("hybrid", max_renders=r)),
        (f"hybrid, {limit_s:g} s", with_budget("hybrid", time_limit_s=limit_s)),
    ]
    methods += [
        (f"{name}, {limit_s:g} s", with_budget(name, time_limit_s=limit_s))
        for name in ("network", "lookup", "search")
    ]
    if args.continuous:
        continuous = make_matcher("hybrid", continuous=True, **common)
        methods.append(
            (
                f"hybrid + CMA-ES between levels, {r} renders",
                lambda target: continuous.match(target, seed=seed, max_renders=r),
            )
        )
    if args.methods is not None:
        methods = [methods[int(i)] for i in args.methods]
    return methods, with_budget


def _print_hybrid_against_its_start(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        if row["label"].startswith("hybrid"):
            # The hybrid's start is the network's guess: is the match ever worse?
            worse_rho = int(np.sum(row["rho"] < row["start_rho"] - 1e-9))
            worse_lsd = int(np.sum(row["lsd"] > row["start_lsd"] + 1e-9))
            print(
                f"{row['label']}: worse than the network's guess on {worse_rho} of "
                f"{len(row['rho'])} sounds by rho_STFT, on {worse_lsd} by LSD"
            )


def _foreign_tables(
    args: argparse.Namespace,
    run: Run,
    common: dict[str, Any],
    with_budget: Callable[..., Method],
    synth_sound: np.ndarray,
) -> None:
    """Every method on the sounds no synth made, one table each."""
    generator, distance, r = common["generator"], common["distance"], args.renders
    rate = generator.sample_rate
    foreign = foreign_sounds(rate, generator.n_samples, synth_sound, generator.name)
    robust = MultiResolutionDistance(sample_rate=rate, dynamic_range_db=80.0, level_invariant=True)
    robust_hybrid = make_matcher("hybrid", **{**common, "distance": robust})
    for name, sound in foreign.items():
        rows = []
        for label, method in [
            (f"network ({run.model_name} guess)", with_budget("network", max_renders=1)),
            ("lookup, nearest by index feature", with_budget("lookup", max_renders=1)),
            (f"search from random starts, {r} renders", with_budget("search", max_renders=r)),
            (f"hybrid, {r} renders", with_budget("hybrid", max_renders=r)),
            (
                f"hybrid, level-invariant 80 dB range, {r} renders",
                lambda target: robust_hybrid.match(target, seed=args.seed, max_renders=r),
            ),
        ]:
            rows.append(measure(label, method, sound[None, :], distance=distance, sample_rate=rate))
        print_table(f"foreign sound: {name}", rows)


def main(argv: Sequence[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    print(f"machine load at start: {os.getloadavg()}", flush=True)
    info = RunInfo.load(args.run)
    generator = load_generator(info.generator_name, info.generator_config)
    atexit.register(generator.close)  # a plugin's hosts
    rate = generator.sample_rate
    targets, targets_name, lookup = _targets_and_lookup(args, generator)
    run = _one_thread_run(args.run)
    scores = run.predict_scores
    scores(targets[:1])  # trace once, outside the timings
    distance = MultiResolutionDistance(sample_rate=rate)
    cost_of_objective(generator, distance)
    common: dict[str, Any] = {
        "generator": generator,
        "distance": distance,
        "scores": scores,
        "lookup": lookup,
    }
    methods, with_budget = _methods(args, run, common)
    rows = []
    for label, method in methods:
        row = measure(label, method, targets, distance=distance, sample_rate=rate)
        rows.append(row)
        print_table(f"{len(targets)} {targets_name} so far:", rows[-1:])
    print_table(f"{len(targets)} {targets_name}, lookup over {lookup.n_examples}:", rows)
    _print_hybrid_against_its_start(rows)
    if args.skip_foreign:
        print(f"machine load at end: {os.getloadavg()}")
        return
    _foreign_tables(args, run, common, with_budget, targets[0])
    print(f"\nmachine load at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
