"""Matching on the DX7: every method on held-out real voices, random patches and acoustic notes.

Rows (each sound matched at the run's synth, its note C4; one process, ``--workers``
threads render and score):

* a random voice of the training collection;
* the lookup: the nearest training voice by the index feature (one render);
* the network alone: its guess (the run's decoding);
* CMA-ES from random starts over the same space (``cma``, restarted whenever it
  stops), at ``--time_limit_s`` and at ``--long_time_limit_s``: what a matcher
  without a network or a lookup does, as spiegelib's genetic and evolutionary
  searches do;
* hybrid at ``--time_limit_s``, without a lookup (what the shipped model does
  with no voice collection on the machine) and with the training voices as its
  lookup.

For each: renders and seconds per sound, mean rho_STFT (%), LSD (dB) and the
multi-resolution distance (dB), and the candidates per second of the hybrid
against the engine's own render rate in the same run.

``--sounds DIR`` instead matches the acoustic notes listed in ``DIR/manifest.csv``
(``file,instrument,midi_note``) with this run's hybrid and with the shipped FM
model's, at the same time limit, and prints both per instrument.

    OPENBLAS_NUM_THREADS=1 uv run python -m benchmarks.dexed_matching --run models/pretrained/dexed_M1 \\
        --held_out_dataset data/dx7heldout_data.hdf5 --lookup_dataset data/dx7train_data.hdf5
    uv run python -m benchmarks.dexed_matching --run models/pretrained/dexed_M1 --sounds NOTES_DIR
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cma  # type: ignore[import-untyped]  # no type information
import numpy as np

from generators.dataset import open_dataset
from generators.dexed.voices import TRAINING, VoiceCollection
from models.common.pretrained import pretrained_run_dir
from models.common.run import load_run
from models.matching.audio_io import load_for_model
from models.matching.distance import MultiResolutionDistance
from models.matching.match_settings import MatchSettings
from models.matching.match_sounds import run_matcher
from models.matching.objective import Budget, Objective
from models.matching.sound_metrics import reconstruction_metrics

HELD_OUT_SEED = 987654  # which held-out voices and random patches, the same in every run


class Row:
    """One method's matches: renders, seconds, audio per sound."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.renders: list[int] = []
        self.seconds: list[float] = []
        self.audio: list[np.ndarray] = []

    def add(self, audio: np.ndarray, renders: int, seconds: float) -> None:
        self.audio.append(np.asarray(audio, dtype=np.float32))
        self.renders.append(int(renders))
        self.seconds.append(float(seconds))

    def line(self, targets: np.ndarray, distance: MultiResolutionDistance, rate: int) -> str:
        matched = np.stack(self.audio)
        m = reconstruction_metrics(
            targets[: len(matched)].astype(np.float64), matched.astype(np.float64), sample_rate=rate
        )
        d = [
            float(distance.distance(distance.target(t), a[None, :])[0])
            for t, a in zip(targets[: len(matched)], matched, strict=True)
        ]
        return (
            f"| {self.label} | {len(matched)} | {np.mean(self.renders):,.0f} | "
            f"{np.mean(self.seconds):.2f} ({np.max(self.seconds):.2f}) | "
            f"{100 * np.mean(m['rho_stft']):.1f} | {np.mean(m['log_spectral_distance']):.2f} | "
            f"{np.mean(d):.2f} |"
        )


def cmaes(
    generator: Any,
    distance: MultiResolutionDistance,
    target: np.ndarray,
    *,
    time_limit_s: float,
    seed: int,
) -> tuple[np.ndarray, int, float]:
    """CMA-ES over [0, 1] per parameter (its classes evenly spaced), from random starts, restarted."""
    ps = generator.parameter_set
    top = (ps.n_levels - 1).astype(np.float64)
    objective = Objective(
        render=generator.render, parameter_set=ps, distance=distance,
        target=distance.target(target), budget=Budget(renders=None, seconds=time_limit_s),
        batch_size=64,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    while not objective.exhausted:
        options = {"bounds": [0.0, 1.0], "seed": int(rng.integers(1, 2**31 - 1)), "verbose": -9}
        es = cma.CMAEvolutionStrategy(rng.random(len(ps)).tolist(), 0.3, options)
        while not objective.exhausted and not es.stop():
            population = np.asarray(es.ask())
            d = objective.indices(np.rint(np.clip(population, 0.0, 1.0) * top).astype(np.int64))
            if not np.all(np.isfinite(d)):
                break  # the budget ended inside this generation
            es.tell(list(population), d.tolist())
    assert objective.best_audio is not None
    return objective.best_audio, objective.renders, objective.seconds


def _targets(args: argparse.Namespace, generator: Any) -> dict[str, np.ndarray]:
    """Held-out real voices and random patches that sound, [n, n_samples] each."""
    rng = np.random.default_rng(HELD_OUT_SEED)
    with open_dataset(args.held_out_dataset) as ds:
        rows = np.sort(
            rng.choice(ds.n_examples, size=min(args.n_sounds, ds.n_examples), replace=False)
        )
        held, _ = ds.read(rows)
    ps = generator.parameter_set
    drawn = ps.sample_indices(seed=HELD_OUT_SEED, n_examples=20 * args.n_random)
    audio = generator.render_indices(drawn)
    sounding = audio[np.max(np.abs(audio), axis=1) > 0.01][: args.n_random]
    return {"held-out real voices": held, "random patches that sound": sounding}


def _rows(
    args: argparse.Namespace, run: Any, generator: Any
) -> dict[str, Callable[[np.ndarray, int], tuple[np.ndarray, int, float]]]:

    distance = MultiResolutionDistance(sample_rate=generator.sample_rate, threads=args.workers)
    training = VoiceCollection.load(args.collection).part(TRAINING)
    plain = run_matcher(
        run, generator=generator, settings=MatchSettings(workers=args.workers), progress=False
    )
    plain.lookup, plain.lookup_record = None, None  # no lookup: the shipped model alone
    looked = run_matcher(
        run, generator=generator, progress=False,
        settings=MatchSettings(lookup_dataset=args.lookup_dataset, workers=args.workers),
    )  # fmt: skip
    lookup = run_matcher(
        run, generator=generator, progress=False, settings=MatchSettings(
            method="lookup", lookup_dataset=args.lookup_dataset, workers=args.workers
        ),
    )  # fmt: skip
    network = run_matcher(
        run, generator=generator, settings=MatchSettings(method="network"), progress=False
    )
    limit = args.time_limit_s

    def match(
        matcher: Any, **budget: Any
    ) -> Callable[[np.ndarray, int], tuple[np.ndarray, int, float]]:
        def run_one(x: np.ndarray, seed: int) -> tuple[np.ndarray, int, float]:
            r = matcher.match(x, seed=seed, **budget)
            return r.audio, r.renders, r.seconds

        return run_one

    def random_voice(x: np.ndarray, seed: int) -> tuple[np.ndarray, int, float]:
        t0 = time.perf_counter()
        voice = training[np.random.default_rng(seed).integers(len(training))]
        return generator.render_voices(voice[None, :])[0], 1, time.perf_counter() - t0

    return {
        "random voice of the collection": random_voice,
        "lookup: nearest training voice": match(lookup, max_renders=1),
        "network alone": match(network, max_renders=1),
        f"CMA-ES from random starts, {limit:g} s": lambda x, s: cmaes(
            generator, distance, x, time_limit_s=limit, seed=s
        ),
        f"CMA-ES from random starts, {args.long_time_limit_s:g} s": lambda x, s: cmaes(
            generator, distance, x, time_limit_s=args.long_time_limit_s, seed=s
        ),
        f"hybrid, {limit:g} s, no lookup (the shipped model alone)": match(
            plain, max_renders=None, time_limit_s=limit
        ),
        f"hybrid, {limit:g} s, the training voices as lookup": match(
            looked, max_renders=None, time_limit_s=limit
        ),
    }


def engine_rate(generator: Any) -> float:
    """Voices rendered per second by the generator (its threads), on the collection's kind of voice."""
    ps = generator.parameter_set
    values = ps.to_values(ps.sample_indices(seed=1, n_examples=256))
    generator.render(values[:8])
    t0 = time.perf_counter()
    generator.render(values)
    return 256 / (time.perf_counter() - t0)


def voices_benchmark(args: argparse.Namespace) -> None:

    run = load_run(args.run)
    generator = run.make_generator(workers=args.workers)
    distance = MultiResolutionDistance(sample_rate=generator.sample_rate)
    print(f"engine: {engine_rate(generator):,.0f} voices/s with {args.workers} thread(s)")
    methods = _rows(args, run, generator)
    for name, targets in _targets(args, generator).items():
        print(f"\n{name}\n")
        print(
            "| method | sounds | renders/sound | s/sound (max) | rho_STFT % | LSD dB | multi-res dB |"
        )
        print("|---|---|---|---|---|---|---|")
        for label, method in methods.items():
            long_row = label == f"CMA-ES from random starts, {args.long_time_limit_s:g} s"
            n = args.n_long if long_row else len(targets)
            row = Row(label)
            for i, x in enumerate(targets[:n]):
                row.add(*method(x, i))
            print(row.line(targets, distance, generator.sample_rate), flush=True)
            if label.startswith("hybrid"):
                rate = np.sum(row.renders) / np.sum(row.seconds)
                print(f"  ({rate:,.0f} candidates/s rendered and scored)", flush=True)


def acoustic_benchmark(args: argparse.Namespace) -> None:
    """This run's hybrid against the shipped FM model's on acoustic notes of known pitch."""
    manifest = list(csv.DictReader((args.sounds / "manifest.csv").open()))
    results: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for label, run_dir in (("DX7", args.run), ("FM", pretrained_run_dir("fm"))):
        run = load_run(run_dir)
        generator = run.make_generator(workers=args.workers)
        matcher = run_matcher(
            run, generator=generator, settings=MatchSettings(workers=args.workers)
        )
        for row in manifest:
            sound = load_for_model(
                args.sounds / row["file"], sample_rate=run.sample_rate, n_samples=run.n_samples
            )
            r = matcher.match(sound.audio, max_renders=None, time_limit_s=args.time_limit_s, seed=0)
            per = results.setdefault(row["instrument"], {}).setdefault(label, [])
            per.append((100 * r.metrics["rho_stft"], r.metrics["log_spectral_distance"]))
        generator.close()
    print("| instrument | notes | DX7 hybrid rho_STFT % / LSD dB | FM hybrid rho_STFT % / LSD dB |")
    print("|---|---|---|---|")
    every: dict[str, list[tuple[float, float]]] = {"DX7": [], "FM": []}
    for instrument, by in results.items():
        cells = []
        for label in ("DX7", "FM"):
            every[label] += by[label]
            rho, lsd = np.mean(by[label], axis=0)
            cells.append(f"{rho:.1f} / {lsd:.2f}")
        print(f"| {instrument} | {len(by['DX7'])} | {cells[0]} | {cells[1]} |")
    cells = [
        f"**{np.mean(every[k], axis=0)[0]:.1f} / {np.mean(every[k], axis=0)[1]:.2f}**"
        for k in ("DX7", "FM")
    ]
    print(f"| **all** | {len(every['DX7'])} | {cells[0]} | {cells[1]} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.dexed_matching", description=__doc__
    )
    parser.add_argument("--run", type=Path, default=Path("models/pretrained/dexed_M1"))
    parser.add_argument("--held_out_dataset", type=Path, default=Path("data/dx7heldout_data.hdf5"))
    parser.add_argument("--lookup_dataset", type=Path, default=Path("data/dx7train_data.hdf5"))
    parser.add_argument("--collection", type=Path, default=Path("data/dx7_voices.npz"))
    parser.add_argument("--n_sounds", type=int, default=100, help="held-out voices")
    parser.add_argument("--n_random", type=int, default=50, help="random patches that sound")
    parser.add_argument("--n_long", type=int, default=25, help="sounds of the long CMA-ES row")
    parser.add_argument("--time_limit_s", type=float, default=2.0)
    parser.add_argument("--long_time_limit_s", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2, help="threads that render and score")
    parser.add_argument("--sounds", type=Path, default=None, help="a folder of acoustic notes")
    args = parser.parse_args(argv)
    if args.sounds is not None:
        acoustic_benchmark(args)
    else:
        voices_benchmark(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
