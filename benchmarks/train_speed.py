"""Training speed: the input pipeline (HDF5 vs memory), and settings that may train faster.

``--settings``: each setting (batch size with a scaled learning rate, XLA,
oneDNN on/off, thread counts, bfloat16 where the CPU has it, another model)
runs in a worker process of its own (environment variables and thread pools
are fixed when TensorFlow starts), which builds its model once and then waits.
Short timed segments run one at a time, interleaved with the paper's setting
(batch 16, Adam 1e-3, today's defaults): A, B1, A, B2, A, ..., so each
candidate's ratio is taken against the mean of the two baseline segments
around it, and load from other processes, which hits neighbours alike,
cancels out. The medians over ``--rounds`` rounds are printed with the load
average before and after::

    uv run python -m benchmarks.train_speed --settings             # every setting, C6
    uv run python -m benchmarks.train_speed --settings b64 xla --rounds 5

Without ``--settings`` (the input pipeline): for each model, short training segments alternate between the streaming HDF5
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
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from generators.dataset import open_dataset
from generators.fm_generator import FMGenerator
from generators.sound_generator import load_generator
from generators.writer import DatasetCreator, DatasetPlan
from models.common.data import Shuffle, make_dataset, make_memory_dataset
from models.common.speed import bfloat16_support, configure_threads, resolve_learning_rate
from models.common.training import compile_model

# name -> what differs from the paper's setting (batch 16, Adam 1e-3, C6, float32,
# oneDNN on, TensorFlow's thread counts, no XLA). "learning_rate": "scaled" is
# 1e-3 * sqrt(batch / 16) (models.common.speed).
SETTINGS: dict[str, dict[str, Any]] = {
    "paper": {},
    "b32": {"batch_size": 32, "learning_rate": "scaled"},
    "b64": {"batch_size": 64, "learning_rate": "scaled"},
    "b128": {"batch_size": 128, "learning_rate": "scaled"},
    "xla": {"jit_compile": True},
    "b64_xla": {"batch_size": 64, "learning_rate": "scaled", "jit_compile": True},
    "onednn_off": {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}},
    "b64_onednn_off": {
        "batch_size": 64,
        "learning_rate": "scaled",
        "env": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    },
    "threads_2_1": {"intra_op": 2, "inter_op": 1},
    "threads_1_1": {"intra_op": 1, "inter_op": 1},
    "bf16": {"bfloat16": True},
    "M1": {"model": "M1"},  # ours (models.common.own_models), not the paper's network
    "M1_b32": {"model": "M1", "batch_size": 32, "learning_rate": "scaled"},
    "M1_b64": {"model": "M1", "batch_size": 64, "learning_rate": "scaled"},
}


def make_data(folder: Path, n_examples: int, synth: str) -> Path:

    generator = load_generator(synth, {})
    path = folder / f"{synth}_data.hdf5"
    DatasetCreator(
        generator,
        path=path,
        plan=DatasetPlan(n_examples=n_examples, seed=0),
        workers=2,
        progress=False,
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
    parser.add_argument(
        "--settings",
        nargs="*",
        default=None,
        help=f"compare these settings with the paper's (none named: all); known: {list(SETTINGS)}",
    )
    parser.add_argument("--model", default="C6", help="model of the --settings comparison")
    parser.add_argument(
        "--rounds", type=int, default=3, help="--settings: rounds of A, B1, A, B2, ..., A"
    )
    parser.add_argument(
        "--steps", type=int, default=40, help="--settings: training steps per timed segment"
    )
    parser.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    return parser


def _default_synth() -> str:
    return FMGenerator.name


def _pipeline_alone(dataset: Any, indices: np.ndarray, batch_size: int) -> None:
    """The pipeline on its own, without a model: how fast can it feed at all?"""
    start = time.perf_counter()
    for _ in make_dataset(dataset, indices, batch_size=batch_size, shuffle=Shuffle(seed=2)):
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
    # Deferred, as in every function here that builds a model: Keras and TensorFlow.
    import keras

    from models.common.architectures import build_model

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
        hdf5 = make_dataset(dataset, sub, batch_size=args.batch_size, shuffle=Shuffle(seed=1))
        memory = make_memory_dataset(
            audio[sub], one_hot[sub], batch_size=args.batch_size, shuffle=True, seed=1
        )
        h_rates.append(epoch_rate(model, hdf5, len(sub)))
        m_rates.append(epoch_rate(model, memory, len(sub)))
    return h_rates, m_rates


# --------------------------------------------------------------------------
# --settings: one worker process per setting
# --------------------------------------------------------------------------


def _worker(setting: dict[str, Any], synth: str, n_examples: int) -> None:
    """Build the setting's model, say "ready", then time one segment per "run" line on stdin."""
    configure_threads(intra_op=setting.get("intra_op"), inter_op=setting.get("inter_op"))
    # Deferred: TensorFlow reads its thread settings when it is first imported.
    import keras
    import tensorflow as tf

    from models.common.architectures import build_model

    if setting.get("bfloat16"):
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    generator = load_generator(synth, {})
    ps = generator.parameter_set
    indices, audio, _ = generator.render_examples(seed=0, start=0, n_examples=n_examples)
    one_hot = ps.encode(indices).astype(np.float32)
    batch_size = int(setting.get("batch_size", 16))
    learning_rate = resolve_learning_rate(setting.get("learning_rate", 1e-3), batch_size=batch_size)
    keras.utils.set_random_seed(0)
    n_levels = ps.n_levels.tolist()
    model = build_model(
        setting.get("model", "C6"), n_levels=n_levels, n_samples=generator.n_samples
    )
    compile_model(
        model,
        head="sigmoid",
        learning_rate=learning_rate,
        n_levels=n_levels,
        jit=bool(setting.get("jit_compile", False)),
    )
    data = (
        tf.data.Dataset.from_tensor_slices((audio.astype(np.float32), one_hot))
        .shuffle(n_examples, seed=1)
        .repeat()
        .batch(batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    steps = int(setting["steps"])
    model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)  # trace and warm up
    print(json.dumps({"ready": True, "learning_rate": learning_rate}), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        start = time.perf_counter()
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
        rate = steps * batch_size / (time.perf_counter() - start)
        print(json.dumps({"rate": rate}), flush=True)


class _Probe:
    """A worker process holding one setting's model."""

    def __init__(self, name: str, setting: dict[str, Any], args: argparse.Namespace) -> None:
        self.name = name
        self.setting = {**setting, "model": setting.get("model", args.model)}
        batch_size = int(setting.get("batch_size", 16))
        # About the same number of examples per segment whatever the batch size.
        self.setting["steps"] = max(4, round(args.steps * 16 / batch_size))
        env = {**os.environ, **setting.get("env", {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.train_speed", "--_worker",
             json.dumps(self.setting), "--synth", args.synth, "--examples", str(args.examples)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, env=env,
        )  # fmt: skip
        self.learning_rate = float("nan")
        self.rates: list[float] = []

    def _reply(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"setting {self.name}: the worker ended (exit {self.proc.wait()})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def wait_ready(self) -> None:
        self.learning_rate = float(self._reply()["learning_rate"])

    def run(self) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        rate = float(self._reply()["rate"])
        self.rates.append(rate)
        return rate

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def _chosen_settings(names: list[str]) -> dict[str, dict[str, Any]]:

    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        raise SystemExit(f"error: unknown settings {unknown}; known: {list(SETTINGS)}")
    chosen = {n: SETTINGS[n] for n in (names or list(SETTINGS)) if n != "paper"}
    ok, why = bfloat16_support()
    if "bf16" in chosen and not ok:
        print(f"bf16 skipped: {why}")
        del chosen["bf16"]
    return chosen


def compare_settings(args: argparse.Namespace) -> None:
    """The paper's setting against each of ``args.settings``, interleaved (module docstring)."""
    chosen = _chosen_settings(args.settings)
    print(f"load average (1/5/15 min) before: {_load()} on {os.cpu_count()} CPUs", flush=True)
    base = _Probe("paper", SETTINGS["paper"], args)
    probes = [_Probe(name, setting, args) for name, setting in chosen.items()]
    try:
        for probe in [base, *probes]:
            probe.wait_ready()
        ratios: dict[str, list[float]] = {p.name: [] for p in probes}
        for _ in range(args.rounds):
            before = base.run()
            for probe in probes:
                rate = probe.run()
                after = base.run()
                ratios[probe.name].append(rate / ((before + after) / 2))
                before = after
    finally:
        for probe in [base, *probes]:
            probe.close()
    print(f"load average after: {_load()}")
    print(
        f"{'setting':<16} {'model':<6} {'batch':>5} {'lr':>9} {'ex/s':>8} {'ratio':>6}"
        f"  (medians of {args.rounds} rounds; ratio to the neighbouring paper segments)"
    )
    for probe in [base, *probes]:
        s = probe.setting
        ratio = float(np.median(ratios[probe.name])) if probe is not base else 1.0
        print(
            f"{probe.name:<16} {s['model']:<6} {int(s.get('batch_size', 16)):>5} "
            f"{probe.learning_rate:>9.2e} {np.median(probe.rates):>8.1f} {ratio:>6.2f}",
            flush=True,
        )


def main() -> None:
    args = _parser().parse_args()
    synth = args.synth = args.synth or _default_synth()
    if args._worker is not None:
        _worker(json.loads(args._worker), synth, args.examples)
        return
    if args.settings is not None:
        compare_settings(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = make_data(Path(tmp), args.examples, synth)
        print(
            f"dataset: {args.examples} {synth} examples, made in {time.perf_counter() - t0:.1f} s"
        )

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
