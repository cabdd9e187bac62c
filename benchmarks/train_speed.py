"""Training speed fed from HDF5 versus from memory: is the input pipeline ever the bottleneck?

For each model, short training segments alternate between the streaming HDF5
pipeline (:func:`models.common.data.make_dataset`, shuffled) and the same
examples held in memory (``from_tensor_slices``, shuffled); the medians of
``--pairs`` pairs are reported, so that load from other processes, which
hits both alike, cancels out. Target: HDF5 reaches at least 95 % of the
in-memory examples/s. The pipeline's own speed, without a model, is printed
first.

    uv run python -m benchmarks.train_speed                  # C6, C6XL, CE2E
    uv run python -m benchmarks.train_speed --models C1 --pairs 3

The dataset is made by the FM synth when it is available (else the sine
synth) in a temporary folder, so its pages are in the OS cache like those of a
dataset being trained on for the second epoch onwards.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def make_data(folder: Path, n_examples: int, synth: str) -> Path:
    from generators.synth import load_generator
    from generators.writer import DatasetCreator

    generator = load_generator(synth, {})
    path = folder / f"{synth}_data.hdf5"
    DatasetCreator(
        generator, path=path, n_examples=n_examples, seed=0, workers=2, progress=False
    ).run()
    return path


def epoch_rate(model: Any, data: Any, n_examples: int) -> float:
    start = time.perf_counter()
    model.fit(data, epochs=1, verbose=0)
    return n_examples / (time.perf_counter() - start)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["C6", "C6XL", "CE2E"])
    parser.add_argument("--examples", type=int, default=1024, help="examples in the dataset")
    parser.add_argument("--segment", type=int, default=256, help="examples per timed segment")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--pairs", type=int, default=6, help="HDF5/memory segment pairs per model")
    parser.add_argument("--synth", default=None, help="fm (default when available) or sine")
    return parser


def _default_synth() -> str:
    try:
        import generators.fm_generator  # noqa: F401

        return "fm"
    except ImportError:
        return "sine"


def _pipeline_alone(dataset: Any, indices: np.ndarray, batch_size: int) -> None:
    """The pipeline on its own, without a model: how fast can it feed at all?"""
    from models.common.data import make_dataset

    start = time.perf_counter()
    for _ in make_dataset(dataset, indices, batch_size=batch_size, shuffle=True, seed=2):
        pass
    print(f"HDF5 pipeline alone: {len(indices) / (time.perf_counter() - start):.0f} ex/s")


def _pairs(
    name: str,
    dataset: Any,
    audio: np.ndarray,
    one_hot: np.ndarray,
    args: argparse.Namespace,
    rng: np.random.Generator,
) -> tuple[list[float], list[float]]:
    """Examples/s of ``--pairs`` alternating HDF5 and in-memory segments of one model."""
    import keras

    from models.common.architectures import build_model
    from models.common.data import make_dataset, make_memory_dataset
    from models.common.training import compile_model

    n_levels = dataset.parameter_set.n_levels.tolist()
    keras.utils.set_random_seed(0)
    model = build_model(name, n_levels=n_levels, n_samples=dataset.n_samples)
    compile_model(model, head="sigmoid", learning_rate=1e-4, n_levels=n_levels, jit=False)
    warm = make_memory_dataset(audio[:64], one_hot[:64], batch_size=args.batch_size)
    model.fit(warm, epochs=1, verbose=0)  # trace and warm up
    indices = np.arange(dataset.n_examples)
    h_rates, m_rates = [], []
    for _ in range(args.pairs):
        # Short, alternating segments on the same examples: load from other
        # processes then hits both sources alike.
        sub = np.sort(rng.choice(indices, size=args.segment, replace=False))
        hdf5 = make_dataset(dataset, sub, batch_size=args.batch_size, shuffle=True, seed=1)
        memory = make_memory_dataset(
            audio[sub], one_hot[sub], batch_size=args.batch_size, shuffle=True, seed=1
        )
        h_rates.append(epoch_rate(model, hdf5, len(sub)))
        m_rates.append(epoch_rate(model, memory, len(sub)))
    return h_rates, m_rates


def main() -> None:
    args = _parser().parse_args()
    synth = args.synth or _default_synth()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = make_data(Path(tmp), args.examples, synth)
        print(
            f"dataset: {args.examples} {synth} examples, made in {time.perf_counter() - t0:.1f} s"
        )
        from generators.dataset import open_dataset

        with open_dataset(path) as dataset:
            indices = np.arange(dataset.n_examples)
            audio, labels = dataset.read(indices)
            one_hot = dataset.parameter_set.encode(labels)
            _pipeline_alone(dataset, indices, args.batch_size)
            print(
                f"{'model':<6} {'HDF5 ex/s':>10} {'memory ex/s':>12} {'ratio':>7}  (medians of {args.pairs} pairs)"
            )
            rng = np.random.default_rng(0)
            for name in args.models:
                h_rates, m_rates = _pairs(name, dataset, audio, one_hot, args, rng)
                ratio = float(np.median(np.array(h_rates) / np.array(m_rates)))
                print(
                    f"{name:<6} {np.median(h_rates):>10.1f} {np.median(m_rates):>12.1f} "
                    f"{100 * ratio:>6.1f}%",
                    flush=True,
                )


if __name__ == "__main__":
    main()
