"""The whole path in a few minutes on a laptop CPU: ``python -m models.demo``.

1. makes a small dataset of the paper's FM synth (``{output_dir}/data``);
2. trains the paper's C6 on it for a few epochs (``{output_dir}/runs/C6_fm_demo``);
3. evaluates it on the held-out test split (the paper's metrics, Table 3);
4. resynthesizes every test prediction and measures it (Table 4);
5. matches a few held-out sounds, written as WAV files, and one sound the
   synth did not make (a 44.1 kHz stereo plucked string), as
   ``python -m models.predict`` does (``{output_dir}/predictions``);
6. writes the listening report (``.../evaluation/report.html``);

and prints where everything is. A model trained this briefly on this little
data is far from the paper's (200,000 examples, 100 epochs); the point is to
see every step work, and to get the commands for the real thing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from generators.cli import env_default, make_parser, positive_int, run_cli
from generators.errors import InverSynthError
from models.reconstruct import add_workers_argument

__all__ = ["get_parser", "main", "run_demo"]

RUN_NAME_SUFFIX = "demo"


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"


def plucked_string(
    *, sample_rate: int = 44100, seconds: float = 1.5, freq_hz: float = 392.0
) -> np.ndarray:
    """A Karplus-Strong plucked string, stereo: a sound from outside the synth.

    Returns
    -------
    audio : np.ndarray [n_samples, 2], float32
    """
    n = round(sample_rate * seconds)
    period = round(sample_rate / freq_hz)
    rng = np.random.default_rng(7)
    buffer = rng.uniform(-1.0, 1.0, period)
    out = np.empty(n)
    for i in range(n):
        out[i] = buffer[i % period]
        buffer[i % period] = 0.996 * 0.5 * (buffer[i % period] + buffer[(i + 1) % period])
    out *= 0.8 / np.max(np.abs(out))
    return np.stack([out, 0.9 * out], axis=1).astype(np.float32)


class _Stages:
    """Wall time of each step, printed as it finishes."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.times: dict[str, float] = {}
        self._t = self.start

    def begin(self, title: str) -> None:
        print(f"\n=== {title}", flush=True)
        self._t = time.monotonic()

    def end(self, key: str) -> float:
        elapsed = time.monotonic() - self._t
        self.times[key] = elapsed
        print(f"--- {key}: {_minutes(elapsed)}", flush=True)
        return elapsed

    @property
    def total(self) -> float:
        return time.monotonic() - self.start


def run_demo(
    *,
    output_dir: str | Path = "demo",
    synth: str = "fm",
    model: str = "C6",
    num_examples: int = 2000,
    epochs: int = 8,
    batch_size: int = 16,
    workers: int = 2,
    n_matches: int = 3,
    n_report: int = 6,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the demo (see the module docstring); returns the paths and figures it printed.

    Parameters
    ----------
    output_dir : path
        Everything goes here; the demo's own dataset and run folder are replaced.
    synth : {"fm", "sine"}
        The paper's FM synth, or the one-sine toy synth (for a quick check).
    model : str
        Architecture (C1-C6, C6XL, CE2E, CE2E_2D).
    num_examples, epochs, batch_size : int
        Dataset size (split 80/10/10), training epochs, minibatch.
    workers : int
        Rendering processes.
    n_matches : int
        Held-out test sounds matched as files.
    n_report : int
        Test sounds in the listening report.
    seed : int
        Dataset and training seed.
    """
    for name, value in (
        ("num_examples", num_examples),
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("workers", workers),
        ("n_matches", n_matches),
        ("n_report", n_report),
    ):
        if int(value) != value or value <= 0:
            raise InverSynthError(f"--{name} must be a positive integer, got {value!r}")
    if num_examples < 50:
        raise InverSynthError(f"--num_examples must be at least 50, got {num_examples}")
    if synth not in ("fm", "sine"):
        raise InverSynthError(f"--synth must be fm or sine, got {synth!r}")
    out = Path(output_dir)
    stages = _Stages()
    run_name = f"{model}_{synth}_{RUN_NAME_SUFFIX}"
    run_dir = out / "runs" / run_name
    if run_dir.exists():
        if not (run_dir / "run.json").is_file():
            raise InverSynthError(
                f"{str(run_dir)!r} exists but is not a run folder; move it or choose another "
                "--output_dir"
            )
        shutil.rmtree(run_dir)  # the demo's own run of an earlier call

    # 1. Dataset -----------------------------------------------------------------
    from generators.schema import dataset_path
    from generators.synth import load_generator
    from generators.writer import DatasetCreator

    stages.begin(f"1/6 dataset: {num_examples} examples of the {synth!r} synth")
    generator = load_generator(synth, {})
    data_path = dataset_path(out / "data", f"{synth}_demo")
    DatasetCreator(
        generator, path=data_path, n_examples=num_examples, seed=seed, workers=workers
    ).run(overwrite=True)
    generator.close()
    print(f"dataset: {data_path}")
    stages.end("dataset")

    # 2. Training (TensorFlow from here on; the rendering workers never import it)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    stages.begin(f"2/6 training {model} for {epochs} epochs")
    from models.common.training import TrainConfig, train

    train(
        TrainConfig(
            model=model,
            dataset=[str(data_path)],
            output_dir=out / "runs",
            run_name=run_name,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            patience=0,
            verbose=2,
        )
    )
    stages.end("training")

    # 3. Evaluation ----------------------------------------------------------------
    stages.begin("3/6 evaluation on the held-out test split")
    from models.common.run import load_run
    from models.evaluate import evaluate_run

    run = load_run(run_dir)
    evaluation = evaluate_run(run_dir, run=run, progress=False)
    stages.end("evaluation")

    # 4. Reconstruction ----------------------------------------------------------------
    stages.begin("4/6 resynthesis of every test prediction")
    from models.reconstruct import evaluate_reconstruction

    reconstruction = evaluate_reconstruction(run_dir, workers=workers, progress=False)
    stages.end("reconstruction")

    # 5. Sound matching from files -------------------------------------------------
    stages.begin(f"5/6 matching {n_matches} held-out sounds and one foreign sound")
    from models.common.audio_io import write_wav
    from models.predict import format_metrics, format_prediction, predict_file, write_prediction

    sounds_dir = out / "sounds"
    sounds_dir.mkdir(parents=True, exist_ok=True)
    test_indices = run.split.indices("test")
    picks = test_indices[np.linspace(0, test_indices.size - 1, n_matches).astype(int)]
    paths: list[tuple[Path, np.ndarray | None]] = []
    with run.open_dataset() as dataset:
        audio, labels = dataset.read(picks)
    for i, index in enumerate(picks):
        path = write_wav(sounds_dir / f"test_{int(index):06d}.wav", audio[i], run.sample_rate)
        paths.append((path, labels[i]))
    import soundfile as sf

    foreign = sounds_dir / "plucked_string_44k_stereo.wav"
    sf.write(foreign, plucked_string(), 44100, subtype="PCM_16")
    paths.append((foreign, None))
    predictions_dir = out / "predictions"
    synth_for_matching = run.make_generator()
    try:
        for n, (path, true) in enumerate(paths):
            prediction = predict_file(run, path, generator=synth_for_matching)
            write_prediction(prediction, predictions_dir, run=run)
            print()
            if n == 0 or true is None:
                print(format_prediction(prediction))
            else:
                print(f"{path}\n  resynthesis: {format_metrics(prediction.metrics or {})}")
            if true is not None:
                right = int(np.sum(prediction.indices == true))
                print(f"  {right} of {len(true)} parameters exactly right")
    finally:
        synth_for_matching.close()
    print(f"predictions: {predictions_dir} (JSON, input and resynthesis WAV, PNG per sound)")
    stages.end("matching")

    # 6. Listening report ----------------------------------------------------------------
    stages.begin("6/6 listening report")
    from models.report import write_report

    report = write_report(run_dir, n_examples=n_report, seed=seed)
    print(f"report: {report}")
    stages.end("report")

    mpr = float(evaluation["metrics"]["groups"]["All"]["mpr"])
    rho = reconstruction["summary"]["rho_stft"]["mean"]
    rho_chance = reconstruction.get("chance", {}).get("rho_stft", {}).get("mean")
    total = stages.total
    print(f"\nDemo finished in {_minutes(total)}. What it made, in {out}/:")
    rows = [
        ("dataset", f"{data_path} ({num_examples} examples, {_minutes(stages.times['dataset'])})"),
        (
            "model",
            f"{run_dir / 'model.keras'} ({epochs} epochs, {_minutes(stages.times['training'])})",
        ),
        (
            "accuracy",
            f"{run_dir / 'evaluation' / 'metrics.json'}: mean percentile rank {mpr:.1f} "
            "(50 = chance, 100 = perfect"
            + (
                "; the paper's C6: 77.81 after 100 epochs on 200,000 examples)"
                if synth == "fm"
                else ")"
            ),
        ),
        (
            "resynthesis",
            f"{run_dir / 'evaluation' / 'reconstruction.json'}: rho_STFT mean {100 * rho:.1f}%"
            + (f" (random patches: {100 * rho_chance:.1f}%)" if rho_chance is not None else ""),
        ),
        ("matches", f"{predictions_dir}/ (from {sounds_dir}/)"),
        ("report", f"{report}  <- open it in a browser and listen"),
    ]
    for key, text in rows:
        print(f"  {key:<12} {text}")
    print(
        "\nThe real experiment (hours on a CPU, much less on a GPU):\n"
        "  uv run python -m generators.fm_generator --num_examples 200000 --name fm\n"
        "  uv run python -m models.spectrogram_cnn --model C6 --dataset_name fm"
        "   # then evaluates, resynthesizes, reports\n"
        "  uv run python -m models.predict my_sound.wav --run runs/C6_fm"
    )
    return {
        "dataset": data_path,
        "run_dir": run_dir,
        "report": report,
        "predictions_dir": predictions_dir,
        "mpr": mpr,
        "rho_stft": rho,
        "rho_stft_chance": rho_chance,
        "seconds": dict(stages.times, total=total),
    }


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        prog="python -m models.demo",
        description="The whole InverSynth path in a few minutes: dataset, training, evaluation, "
        "resynthesis, sound matching, listening report.",
    )
    parser.add_argument(
        "--output_dir",
        type=Path,
        default=env_default("DEMO_DIRECTORY", Path("demo"), Path),
        help="where everything goes",
    )
    parser.add_argument("--synth", choices=("fm", "sine"), default="fm", help="synth to invert")
    parser.add_argument("--model", default="C6", help="architecture (C1-C6, C6XL, CE2E)")
    parser.add_argument("--num_examples", type=positive_int, default=2000, help="dataset size")
    parser.add_argument("--epochs", type=positive_int, default=8, help="training epochs")
    parser.add_argument("--batch_size", type=positive_int, default=16, help="minibatch")
    add_workers_argument(parser)
    parser.add_argument(
        "--n_report", type=positive_int, default=6, help="test sounds in the listening report"
    )
    parser.add_argument("--seed", type=int, default=0, help="dataset and training seed")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    run_demo(
        output_dir=args.output_dir,
        synth=args.synth,
        model=args.model,
        num_examples=args.num_examples,
        epochs=args.epochs,
        batch_size=args.batch_size,
        workers=args.workers,
        n_report=args.n_report,
        seed=args.seed,
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
