"""Sound matching: predict a synth's parameters for a sound, play them back, measure, save.

:func:`predict_file` reads a sound (WAV, FLAC, OGG, MP3; any sample rate, any
channels), fits it to the run's model (mono, resampled, padded or trimmed, and
says so), predicts every parameter, plays the run's synth with the prediction
and measures how close the resynthesis sounds (:func:`predict_audio` does the
same for an array already at the model's rate and length).
:func:`write_prediction` writes a :class:`Prediction` as files:

* ``{name}.json``: the predicted parameters (values and class indices), the
  top classes, what was done to the input, the reconstruction metrics;
* ``{name}_input.wav``: the sound as the model heard it;
* ``{name}_resynthesis.wav``: the synth playing the prediction;
* ``{name}.png``: both spectrograms, the metrics in the title.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from generators.errors import InverSynthError
from generators.parameters import ParameterSet
from generators.validate import check_audio
from models.common.records import write_json_atomic
from models.matching.audio_io import ModelInput, load_for_model, write_wav
from models.matching.figures import plot_spectrograms
from models.matching.metrics import compare_audio, format_metrics

if TYPE_CHECKING:
    from models.common.run import Run

__all__ = [
    "ParameterPrediction",
    "Prediction",
    "format_prediction",
    "format_value",
    "predict_audio",
    "predict_file",
    "unique_stem",
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
        :func:`~models.matching.metrics.compare_audio` of input and resynthesis.
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
    parameter_set: ParameterSet, scores: np.ndarray, indices: np.ndarray, top_k: int
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
    run: Run,
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
        audio = check_audio(sound, name=source, n_samples=run.n_samples)
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
    run: Run,
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


def unique_stem(path: Path, taken: set[str]) -> str:
    """``path``'s file name stem, numbered (``kick-2``) when ``taken`` has it; added to ``taken``."""
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
    run: Run | None = None,
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
            files["plot"] = plot_spectrograms(
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
