"""Sound matching: predict a synth's parameters for your own sounds, and play them back.

``python -m models.predict kick.wav pad.flac --run runs/C6_fm`` reads each sound
(WAV, FLAC, OGG, MP3; any sample rate, any channels), fits it to the model
(mono, resampled, padded or trimmed, and says so), predicts every parameter,
plays the run's synth with the prediction and measures how close the
resynthesis sounds. For each sound it prints a table (parameter, predicted
value with its unit, the three most likely classes) and writes, into
``--output_dir`` (default ``{run}/predictions``):

* ``{name}.json``: the predicted parameters (values and class indices), the
  top classes, what was done to the input, the reconstruction metrics;
* ``{name}_input.wav``: the sound as the model heard it;
* ``{name}_resynthesis.wav``: the synth playing the prediction;
* ``{name}.png``: both spectrograms, the metrics in the title.

A bad file (missing, unreadable, empty, silent, NaN) gets one ``error:`` line
and the others still run; the exit code is 2 if any file failed.

The library API is :func:`predict_file` / :func:`predict_audio` and
:func:`write_prediction`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from generators.cli import env_default, make_parser, positive_int, run_cli
from generators.errors import InverSynthError
from models.common.audio_io import ModelInput, load_for_model, write_wav
from models.common.reconstruction import METRICS, compare_audio, log_magnitude_stft

__all__ = [
    "ParameterPrediction",
    "Prediction",
    "format_metrics",
    "format_prediction",
    "get_parser",
    "main",
    "plot_comparison",
    "predict_audio",
    "predict_file",
    "write_prediction",
]


@dataclass(frozen=True)
class ParameterPrediction:
    """One parameter's prediction.

    Attributes
    ----------
    name, unit : str
    index : int
        Predicted class (the highest score).
    value : float
        The level of that class, in ``unit``.
    top : list of (index, value, probability)
        The most likely classes, best first. Probabilities are the parameter's
        scores scaled to sum to 1 (for the softmax head, the model's own).
    """

    name: str
    unit: str
    index: int
    value: float
    top: list[tuple[int, float, float]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "index": self.index,
            "value": self.value,
            "top": [{"index": i, "value": v, "probability": p} for i, v, p in self.top],
        }


@dataclass
class Prediction:
    """What the model made of one sound.

    Attributes
    ----------
    source : str
        File name (or a label for audio given as an array).
    input : ModelInput
        The sound as the model heard it, and what was changed to get there.
    scores : np.ndarray [n_outputs], float32
    indices : np.ndarray [n_parameters], int64
    values : np.ndarray [n_parameters], float64
    parameters : list of ParameterPrediction
    resynthesis : np.ndarray [n_samples], float32, or None
        The run's synth playing ``values``.
    metrics : dict of str -> float, or None
        :func:`~models.common.reconstruction.compare_audio` of input and resynthesis.
    """

    source: str
    input: ModelInput
    scores: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    parameters: list[ParameterPrediction]
    resynthesis: np.ndarray | None = None
    metrics: dict[str, float] | None = None
    files: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "sample_rate": self.input.sample_rate,
            "n_samples": int(self.input.audio.shape[0]),
            "input": {
                "sample_rate": self.input.source_sample_rate,
                "channels": self.input.source_channels,
                "n_samples": self.input.source_n_samples,
                "changes": list(self.input.notes),
            },
            "parameters": [p.to_dict() for p in self.parameters],
            "indices": [int(i) for i in self.indices],
            "values": [float(v) for v in self.values],
            "reconstruction": (
                {k: (v if np.isfinite(v) else None) for k, v in self.metrics.items()}
                if self.metrics is not None
                else None
            ),
            "files": {k: str(v) for k, v in self.files.items()},
        }


def _parameter_predictions(
    parameter_set: Any, scores: np.ndarray, indices: np.ndarray, top_k: int
) -> list[ParameterPrediction]:
    out: list[ParameterPrediction] = []
    blocks = parameter_set.split_scores(scores[None, :])
    for param, block, index in zip(parameter_set.parameters, blocks, indices, strict=True):
        s = np.clip(block[0].astype(np.float64), 0.0, None)
        total = s.sum()
        p = s / total if total > 0 else np.full(s.shape, 1.0 / s.size)
        order = np.argsort(-s, kind="stable")[: max(1, min(top_k, s.size))]
        out.append(
            ParameterPrediction(
                name=param.name,
                unit=param.unit,
                index=int(index),
                value=float(param.levels[int(index)]),
                top=[(int(i), float(param.levels[int(i)]), float(p[i])) for i in order],
            )
        )
    return out


def predict_audio(
    run: Any,
    sound: ModelInput | np.ndarray,
    *,
    source: str = "audio",
    top_k: int = 3,
    generator: Any = None,
    resynthesize: bool = True,
) -> Prediction:
    """Predict the parameters of one sound already at the model's rate and length.

    Parameters
    ----------
    run : models.common.run.Run
        From :func:`~models.common.run.load_run`.
    sound : ModelInput or np.ndarray [n_samples] float
        An array must be at ``run.sample_rate`` and exactly ``run.n_samples`` long.
    source : str
        A label for the sound (its file name).
    top_k : int > 0
        Classes listed per parameter.
    generator : SoundGenerator, optional
        The run's synth, if already built (``run.make_generator()``); saves
        building it for every sound.
    resynthesize : bool
        Play the prediction on the synth and measure it against the sound.

    Returns
    -------
    Prediction
    """
    if int(top_k) != top_k or top_k <= 0:
        raise InverSynthError(f"top_k must be a positive integer, got {top_k!r}")
    if not isinstance(sound, ModelInput):
        audio = np.asarray(sound, dtype=np.float32)
        if audio.ndim != 1 or audio.shape[0] != run.n_samples:
            raise InverSynthError(
                f"audio must have shape [{run.n_samples}] (the run's n_samples), got {audio.shape}"
            )
        if not np.isfinite(audio).all():
            raise InverSynthError(f"{source}: audio contains NaN or infinite samples")
        sound = ModelInput(audio, run.sample_rate, run.sample_rate, 1, audio.shape[0], [])
    scores = run.predict_scores(sound.audio[None, :])[0]  # [n_outputs]
    parameter_set = run.parameter_set
    indices = parameter_set.decode(scores[None, :])[0]  # [n_parameters]
    values = parameter_set.to_values(indices[None, :])[0]
    prediction = Prediction(
        source=source,
        input=sound,
        scores=scores,
        indices=indices,
        values=values,
        parameters=_parameter_predictions(parameter_set, scores, indices, int(top_k)),
    )
    if resynthesize:
        own = generator is None
        synth = run.make_generator() if own else generator
        try:
            audio_out = np.asarray(synth.render_indices(indices[None, :])[0], dtype=np.float32)
        finally:
            if own:
                synth.close()
        prediction.resynthesis = audio_out
        prediction.metrics = compare_audio(sound.audio, audio_out, sample_rate=run.sample_rate)
    return prediction


def predict_file(
    run: Any,
    path: str | Path,
    *,
    top_k: int = 3,
    generator: Any = None,
    resynthesize: bool = True,
) -> Prediction:
    """Read a sound file, fit it to the run's model and predict its parameters.

    Parameters
    ----------
    run : models.common.run.Run
    path : path-like
        WAV, FLAC, OGG, MP3, ...; any sample rate and channel count.
    top_k, generator, resynthesize
        As for :func:`predict_audio`.

    Returns
    -------
    Prediction
        ``prediction.input.notes`` says what was changed to fit the model.

    Raises
    ------
    InverSynthError
        The file is missing, unreadable, empty, silent or holds NaN samples.
    """
    sound = load_for_model(path, sample_rate=run.sample_rate, n_samples=run.n_samples)
    return predict_audio(
        run, sound, source=str(path), top_k=top_k, generator=generator, resynthesize=resynthesize
    )


# --------------------------------------------------------------------------
# Display and files
# --------------------------------------------------------------------------


def format_value(value: float, unit: str) -> str:
    """``523.3 Hz``, ``0.25 s``, ``0.6``: 4 significant digits and the unit."""
    text = f"{value:.4g}"
    return f"{text} {unit}" if unit else text


def format_metrics(metrics: dict[str, float]) -> str:
    """One line: rho in percent, the others in their units."""
    parts = []
    for key, info in METRICS.items():
        if key not in metrics:
            continue
        v = metrics[key]
        if key.startswith("rho"):
            parts.append(f"{info.label} {100 * v:.1f}%")
        elif not np.isfinite(v):
            parts.append(f"{info.label} undefined")
        else:
            unit = f" {info.unit}" if info.unit else ""
            text = f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.3g}"
            parts.append(f"{info.label} {text}{unit}")
    return ", ".join(parts)


def format_prediction(prediction: Prediction) -> str:
    """The table printed for one sound."""
    lines = [prediction.source]
    lines.extend(f"  note: {n}" for n in prediction.input.notes)
    rows = [
        (
            p.name,
            format_value(p.value, p.unit),
            " | ".join(f"{format_value(v, p.unit)} {100 * q:.0f}%" for _, v, q in p.top),
        )
        for p in prediction.parameters
    ]
    k = len(prediction.parameters[0].top) if prediction.parameters else 0
    head = ("parameter", "predicted", f"top {k} (probability)")
    w0 = max(len(head[0]), *(len(r[0]) for r in rows))
    w1 = max(len(head[1]), *(len(r[1]) for r in rows))
    lines.append(f"  {head[0]:<{w0}}  {head[1]:<{w1}}  {head[2]}")
    lines.extend(f"  {a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows)
    if prediction.metrics is not None:
        lines.append(f"  resynthesis: {format_metrics(prediction.metrics)}")
    return "\n".join(lines)


def plot_comparison(
    reference: np.ndarray,
    estimate: np.ndarray,
    *,
    sample_rate: int,
    out: Any,
    title: str = "",
    labels: tuple[str, str] = ("input", "resynthesis"),
    dpi: int = 100,
) -> Any:
    """Side-by-side log-magnitude spectrograms (the metrics' own representation), as PNG.

    Parameters
    ----------
    reference, estimate : np.ndarray [n_samples], float
    sample_rate : int
        Hz, for the axes.
    out : path or binary file object
        Where the PNG goes.
    title : str
        Figure title (e.g. :func:`format_metrics`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spectrograms = [log_magnitude_stft(x)[0] for x in (reference, estimate)]  # [frames, 257]
    duration_s = len(reference) / sample_rate
    # Fixed margins: constrained layout would cost more than the drawing itself.
    fig = plt.figure(figsize=(10, 3.6))
    top = 0.80 if title else 0.90
    axes = [fig.add_axes((0.07, 0.14, 0.38, top - 0.14))]
    axes.append(fig.add_axes((0.49, 0.14, 0.38, top - 0.14), sharey=axes[0]))
    colorbar_axes = fig.add_axes((0.89, 0.14, 0.015, top - 0.14))
    images = []
    for ax, spec, label in zip(axes, spectrograms, labels, strict=True):
        image = ax.imshow(
            spec.T,
            origin="lower",
            aspect="auto",
            extent=(0.0, duration_s, 0.0, sample_rate / 2000.0),
            vmin=-100.0,
            vmax=0.0,
            cmap="magma",
            interpolation="nearest",
        )
        images.append(image)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (kHz)")
    axes[1].tick_params(labelleft=False)
    fig.colorbar(images[-1], cax=colorbar_axes, label="dB re full scale")
    if title:
        fig.suptitle(title, fontsize=9, y=0.98)
    fig.savefig(out, dpi=dpi, format="png")
    plt.close(fig)
    return out


def _unique_stem(path: Path, taken: set[str]) -> str:
    stem = path.stem or "sound"
    candidate, n = stem, 2
    while candidate in taken:
        candidate, n = f"{stem}-{n}", n + 1
    taken.add(candidate)
    return candidate


def write_prediction(
    prediction: Prediction,
    output_dir: str | Path,
    *,
    stem: str | None = None,
    run: Any = None,
    plot: bool = True,
) -> dict[str, Path]:
    """Write a prediction's JSON, the model's input and the resynthesis (WAV), and the PNG.

    Parameters
    ----------
    prediction : Prediction
    output_dir : path
        Created if needed.
    stem : str, optional
        File name stem; default the sound's file name without extension.
    run : Run, optional
        Recorded in the JSON (run folder, model, synth).
    plot : bool
        Draw the spectrogram comparison.

    Returns
    -------
    files : dict of str -> Path
        ``json``, ``input``, and when resynthesized ``resynthesis`` and ``plot``.
    """
    from models.common.run import write_json_atomic

    out = Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InverSynthError(f"cannot create folder {str(out)!r}: {exc.strerror}") from None
    stem = stem or (Path(prediction.source).stem or "sound")
    rate = prediction.input.sample_rate
    files: dict[str, Path] = {"json": out / f"{stem}.json"}
    files["input"] = write_wav(out / f"{stem}_input.wav", prediction.input.audio, rate)
    if prediction.resynthesis is not None:
        files["resynthesis"] = write_wav(
            out / f"{stem}_resynthesis.wav", prediction.resynthesis, rate
        )
        if plot:
            title = Path(prediction.source).name
            if prediction.metrics is not None:
                title += "\n" + format_metrics(prediction.metrics)
            files["plot"] = plot_comparison(
                prediction.input.audio,
                prediction.resynthesis,
                sample_rate=rate,
                out=out / f"{stem}.png",
                title=title,
            )
    prediction.files = dict(files)
    record = prediction.to_dict()
    if run is not None:
        record = {
            "run_dir": str(run.run_dir),
            "model": run.model_name,
            "generator": run.generator_name,
            "generator_config": run.generator_config,
            **record,
        }
    write_json_atomic(files["json"], record)
    return files


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        prog="python -m models.predict",
        description="Predict a trained model's synth parameters for sound files, play them back "
        "on the synth, and compare.",
    )
    parser.add_argument("sounds", nargs="+", type=Path, help="WAV, FLAC, OGG or MP3 files")
    parser.add_argument(
        "--run",
        type=Path,
        required=env_default("RUN", None) is None,
        default=env_default("RUN", None, Path),
        help="run folder of a trained model ({output_dir}/{run_name})",
    )
    parser.add_argument(
        "--output_dir",
        type=Path,
        default=env_default("PREDICTIONS_DIRECTORY", None, Path),
        help="where the JSON, WAV and PNG files go (default {run}/predictions)",
    )
    parser.add_argument(
        "--top_k", type=positive_int, default=3, help="most likely classes shown per parameter"
    )
    parser.add_argument("--no_plot", action="store_true", help="skip the PNG spectrograms")
    parser.add_argument(
        "--checkpoint",
        choices=("best", "latest"),
        default="best",
        help="model.keras (best validation loss) or latest.keras",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    from models.common.run import load_run

    run = load_run(args.run, checkpoint=args.checkpoint)
    output_dir = args.output_dir or run.run_dir / "predictions"
    print(
        f"model {run.model_name} from {run.run_dir}: {run.parameter_set.n_parameters} parameters "
        f"of the {run.generator_name!r} synth, {run.n_samples / run.sample_rate:g} s at "
        f"{run.sample_rate} Hz"
    )
    generator = run.make_generator()
    failed = 0
    taken: set[str] = set()
    try:
        for path in args.sounds:
            try:
                prediction = predict_file(run, path, top_k=args.top_k, generator=generator)
                files = write_prediction(
                    prediction,
                    output_dir,
                    stem=_unique_stem(Path(path), taken),
                    run=run,
                    plot=not args.no_plot,
                )
            except (InverSynthError, OSError) as exc:
                failed += 1
                message = str(exc) if isinstance(exc, InverSynthError) else exc.strerror or exc
                where = "" if isinstance(exc, InverSynthError) else f"{path}: "
                sys.stdout.flush()  # keep the error next to its file when both go to one log
                print(f"error: {where}{message}", file=sys.stderr, flush=True)
                continue
            print()
            print(format_prediction(prediction))
            print(f"  wrote {', '.join(p.name for p in files.values())} in {output_dir}")
    finally:
        generator.close()
    n = len(args.sounds)
    if failed:
        print(f"\n{n - failed} of {n} sounds matched; {failed} failed", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    run_cli(main)
