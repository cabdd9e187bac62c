"""Sound matching: predict a synth's parameters for a sound, play them back, measure, save.

:func:`predict_file` reads a sound (WAV, FLAC, OGG, MP3; any sample rate, any
channels), fits it to the run's model (mono, resampled, the part from
``offset_s`` padded or cut to the model's length, and says so), predicts every
parameter, plays the run's synth with the prediction and measures how close
the resynthesis sounds. :func:`predict_segments` does so for several parts of
a long sound, :func:`predict_audio` for an array already at the model's rate
and length, and :func:`predict_example` for a held-out test example of the
run's own dataset, whose true parameters it keeps for comparison.
:func:`write_prediction` writes a :class:`Prediction` as files:

* ``{name}.json``: the predicted parameters (values and class indices), the
  top classes, what was done to the input, the reconstruction metrics;
* ``{name}_input.wav``: the sound as the model heard it;
* ``{name}_resynthesis.wav``: the synth playing the prediction, or the match
  when a matcher refined it (``Prediction.match``,
  :mod:`models.matching.match_sounds`);
* ``{name}_network.wav``: the network's guess, beside a hybrid match;
* ``{name}.png``: both spectrograms, the metrics in the title;
* ``{name}.fxp`` / ``{name}.syx``: the patch as the synth's preset, given the synth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from generators.errors import InverSynthError
from generators.parameters import Parameter, ParameterSet
from generators.validate import check_audio
from models.common.records import write_json_atomic
from models.matching.audio_io import ModelInput, load_for_model, load_segments, write_wav
from models.matching.figures import plot_spectrograms
from models.matching.metrics import compare_audio, format_metrics

if TYPE_CHECKING:
    from models.common.run import Run
    from models.matching.matchers import MatchResult

__all__ = [
    "ParameterPrediction",
    "Prediction",
    "class_verdict",
    "format_prediction",
    "format_value",
    "is_ordered",
    "predict_audio",
    "predict_example",
    "predict_file",
    "predict_segments",
    "unique_stem",
    "write_patch",
    "write_prediction",
]


def is_ordered(parameter: Parameter) -> bool:
    """Whether ``parameter``'s classes are ordered, so that a class distance means something."""
    return parameter.ordered


def class_verdict(parameter: Parameter, true_index: int, predicted_index: int) -> tuple[int, str]:
    """How far a predicted class is from the true one.

    Returns
    -------
    severity : int
        0 right, 1 one class off (ordered parameters), 2 further off or wrong.
    text : str
        ``"right"``, ``"1 class off"``, ``"3 classes off"``, or for an
        unordered parameter (:func:`is_ordered`) ``"wrong"``.
    """
    off = abs(int(predicted_index) - int(true_index))
    if off == 0:
        return 0, "right"
    if not is_ordered(parameter):
        return 2, "wrong"
    return min(off, 2), f"{off} class{'es' if off > 1 else ''} off"


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
    true_indices : np.ndarray [n_parameters], int64, or None
        The true classes, for a sound whose parameters are known (a test example).
    match : MatchResult, or None
        A matcher's refinement (:mod:`models.matching.match_sounds`); then
        ``resynthesis`` and ``metrics`` are the network's guess, the match is final.
    """

    source: str
    input: ModelInput
    scores: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    parameters: list[ParameterPrediction]
    resynthesis: np.ndarray | None = None
    metrics: dict[str, float] | None = None
    true_indices: np.ndarray | None = None
    match: MatchResult | None = None
    files: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        record = self._network_dict()
        if self.match is not None:
            record["method"] = self.match.method
            record["renders"] = int(self.match.renders)
            record["seconds"] = float(self.match.seconds)
            record["network_reconstruction"] = record["reconstruction"]
            record["match"] = self.match.to_dict()
            record["reconstruction"] = _finite_or_none(self.match.metrics)
        return record

    def _network_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "sample_rate": self.input.sample_rate,
            "n_samples": int(self.input.audio.shape[0]),
            "input": {
                "sample_rate": self.input.source_sample_rate,
                "channels": self.input.source_channels,
                "n_samples": self.input.source_n_samples,
                "segment_s": list(self.input.segment_s),
                "changes": list(self.input.notes),
            },
            "parameters": [p.to_dict() for p in self.parameters],
            "indices": [int(i) for i in self.indices],
            "values": [float(v) for v in self.values],
            "true_indices": (
                None if self.true_indices is None else [int(i) for i in self.true_indices]
            ),
            "reconstruction": (_finite_or_none(self.metrics) if self.metrics is not None else None),
            "files": {k: str(v) for k, v in self.files.items()},
        }


def _finite_or_none(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: (v if np.isfinite(v) else None) for k, v in metrics.items()}


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
    offset_s: float = 0.0,
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
    offset_s : float >= 0
        Where the part the model hears starts (seconds into the sound).
    top_k, generator, resynthesize
        As for :func:`predict_audio`.

    Returns
    -------
    Prediction
        ``prediction.input.notes`` says which part was matched and what was
        changed to fit the model.

    Raises
    ------
    InverSynthError
        The file is missing, unreadable, empty, silent or holds NaN samples,
        or ``offset_s`` is past its end.
    """
    sound = load_for_model(
        path, sample_rate=run.sample_rate, n_samples=run.n_samples, offset_s=offset_s
    )
    return predict_audio(
        run, sound, source=str(path), top_k=top_k, generator=generator, resynthesize=resynthesize
    )


def predict_segments(
    run: Run,
    path: str | Path,
    *,
    offset_s: float = 0.0,
    n_segments: int = 1,
    hop_s: float | None = None,
    top_k: int = 3,
    generator: Any = None,
    resynthesize: bool = True,
) -> list[Prediction]:
    """Predict the parameters of several parts of one sound (:func:`load_segments`).

    Parameters
    ----------
    run : models.common.run.Run
    path : path-like
    offset_s : float >= 0
        Start of the first part, seconds.
    n_segments : int > 0
        Parts wanted; those starting after the sound's end are left out.
    hop_s : float > 0, optional
        Seconds between the parts' starts; default the model's length.
    top_k, generator, resynthesize
        As for :func:`predict_audio`.

    Returns
    -------
    list of Prediction
        In time order; ``prediction.input.segment_s`` is the part matched.
    """
    segments = load_segments(
        path,
        sample_rate=run.sample_rate,
        n_samples=run.n_samples,
        offset_s=offset_s,
        n_segments=n_segments,
        hop_s=hop_s,
    )
    own = generator is None and resynthesize
    synth = run.make_generator() if own else generator
    try:
        return [
            predict_audio(
                run, sound, source=str(path), top_k=top_k, generator=synth,
                resynthesize=resynthesize,
            )
            for sound in segments
        ]  # fmt: skip
    finally:
        if own:
            synth.close()


def predict_example(
    run: Run,
    index: int,
    *,
    top_k: int = 3,
    generator: Any = None,
    resynthesize: bool = True,
) -> Prediction:
    """Predict a held-out example of the run's dataset, keeping its true parameters.

    Parameters
    ----------
    run : models.common.run.Run
    index : int
        The example's row in the run's dataset; it must be in the test split
        (the report's "test example N", the demo's ``test_{N:06d}.wav``).
    top_k, generator, resynthesize
        As for :func:`predict_audio`.

    Returns
    -------
    Prediction
        With ``true_indices``.

    Raises
    ------
    InverSynthError
        ``index`` is not a test example, or the dataset is gone or changed.
    """
    test = run.split.indices("test")
    if test.size == 0:
        raise InverSynthError(f"the run {str(run.run_dir)!r} has no test split")
    if int(index) != index or not test[0] <= index <= test[-1]:
        raise InverSynthError(
            f"--example {index!r} is not in the run's test split: its test examples are "
            f"{int(test[0])} to {int(test[-1])}"
        )
    with run.open_dataset() as dataset:
        audio, labels = dataset.read(np.array([int(index)], dtype=np.int64))
        name = ", ".join(Path(p).name for p in dataset.paths)
    samples = check_audio(audio[0], name=f"example {index}", n_samples=run.n_samples)
    sound = ModelInput(samples, run.sample_rate, run.sample_rate, 1, samples.shape[0], [])
    prediction = predict_audio(
        run,
        sound,
        source=f"test example {int(index)} of {name}",
        top_k=top_k,
        generator=generator,
        resynthesize=resynthesize,
    )
    prediction.true_indices = np.asarray(labels[0], dtype=np.int64)
    return prediction


# --------------------------------------------------------------------------
# Display and files
# --------------------------------------------------------------------------


def format_value(value: float, unit: str) -> str:
    """``523.3 Hz``, ``0.25 s``, ``0.6``: 4 significant digits and the unit."""
    text = f"{value:.4g}"
    return f"{text} {unit}" if unit else text


def format_prediction(prediction: Prediction, *, parameter_set: ParameterSet | None = None) -> str:
    """The table printed for one sound.

    With ``prediction.true_indices`` and the run's ``parameter_set``, the
    true value of every parameter and how far off the prediction is
    (:func:`class_verdict`) stand beside the predicted one.
    """
    lines = [prediction.source]
    lines.extend(f"  note: {n}" for n in prediction.input.notes)
    true = prediction.true_indices if parameter_set is not None else None
    match = prediction.match
    head = ["parameter", "predicted"]
    rows = [[p.name, format_value(p.value, p.unit)] for p in prediction.parameters]
    final = prediction.indices
    if match is not None:  # the match first, the network's guess beside it
        head = ["parameter", "matched", "network"]
        final = match.indices
        rows = [
            [p.name, format_value(float(v), p.unit), format_value(p.value, p.unit)]
            for p, v in zip(prediction.parameters, match.values, strict=True)
        ]
    if true is not None and parameter_set is not None:
        head += ["true", ""]
        for row, param, t, p in zip(rows, parameter_set.parameters, true, final, strict=True):
            row += [format_value(param.levels[int(t)], param.unit)]
            row += [class_verdict(param, int(t), int(p))[1]]
    k = len(prediction.parameters[0].top) if prediction.parameters else 0
    head.append(f"top {k} (probability)")
    for row, p in zip(rows, prediction.parameters, strict=True):
        row.append(" | ".join(f"{format_value(v, p.unit)} {100 * q:.0f}%" for _, v, q in p.top))
    widths = [max(len(head[c]), *(len(r[c]) for r in rows)) for c in range(len(head) - 1)]
    for row in [head, *rows]:
        cells = [f"{cell:<{w}}" for cell, w in zip(row[:-1], widths, strict=True)]
        lines.append("  " + "  ".join([*cells, row[-1]]))
    if true is not None:
        right = int(np.sum(true == final))
        lines.append(f"  {right} of {len(true)} parameters right")
    if match is not None:
        lines.append(
            f"  match ({match.method}, {match.renders} renders, {match.seconds:.2f} s): "
            f"{format_metrics(match.metrics)}"
        )
        if prediction.metrics is not None:
            lines.append(f"  network's guess: {format_metrics(prediction.metrics)}")
    elif prediction.metrics is not None:
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


def write_patch(generator: Any, path_stem: Path, values: np.ndarray) -> Path | None:
    """Save a patch as the synth's preset file: ``{stem}.fxp`` (plugin), ``{stem}.syx`` (Dexed).

    Returns None for a synth without a preset format.
    """
    if hasattr(generator, "write_preset"):
        path: Path = generator.write_preset(path_stem.with_suffix(".fxp"), values=values)
        return path
    if hasattr(generator, "write_syx"):
        path = generator.write_syx(path_stem.with_suffix(".syx"), values=values)
        return path
    return None


def write_prediction(
    prediction: Prediction,
    output_dir: str | Path,
    *,
    stem: str | None = None,
    run: Run | None = None,
    plot: bool = True,
    generator: Any = None,
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
    generator : SoundGenerator, optional
        The run's synth: the final patch is also saved as its preset
        (:func:`write_patch`: ``.fxp`` for a plugin, ``.syx`` for Dexed).

    Returns
    -------
    files : dict of str -> Path
        ``json``, ``input``, and when resynthesized ``resynthesis`` and ``plot``;
        ``network`` (the network's guess) for a hybrid match; ``patch``.
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
    final, metrics = prediction.resynthesis, prediction.metrics
    if prediction.match is not None:  # the match is the resynthesis
        final, metrics = prediction.match.audio, prediction.match.metrics
        if prediction.match.method == "hybrid" and prediction.resynthesis is not None:
            files["network"] = write_wav(out / f"{stem}_network.wav", prediction.resynthesis, rate)
    if final is not None:
        files["resynthesis"] = write_wav(out / f"{stem}_resynthesis.wav", final, rate)
        if plot:
            title = Path(prediction.source).name
            start_s, end_s = prediction.input.segment_s
            if start_s > 0 or end_s < prediction.input.source_duration_s:
                title += f", {start_s:.3f} s to {end_s:.3f} s"
            if metrics is not None:
                title += "\n" + format_metrics(metrics)
            files["plot"] = plot_spectrograms(
                prediction.input.audio,
                final,
                sample_rate=rate,
                out=out / f"{stem}.png",
                title=title,
            )
    if generator is not None:
        values = prediction.values if prediction.match is None else prediction.match.values
        patch = write_patch(generator, out / stem, values)
        if patch is not None:
            files["patch"] = patch
    prediction.files = dict(files)
    record = prediction.to_dict()
    if run is not None and prediction.true_indices is not None:
        true_values = run.parameter_set.to_values(prediction.true_indices[None, :])[0]
        record["true_values"] = [float(v) for v in true_values]
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
