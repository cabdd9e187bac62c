"""Sound matching: predict a synth's parameters for a sound, play them back, measure.

:func:`predict_file` reads a sound (WAV, FLAC, OGG, MP3; any sample rate, any
channels), fits it to the run's model (mono, resampled, the part from
``offset_s`` padded or cut to the model's length, and says so), predicts every
parameter, plays the run's synth with the prediction and measures how close
the resynthesis sounds. :func:`predict_segments` does so for several parts of
a long sound, :func:`predict_audio` for an array already at the model's rate
and length, and :func:`predict_example` for a held-out test example of the
run's own dataset, whose true parameters it keeps for comparison.

A matcher refines a :class:`Prediction` (``Prediction.match``,
:mod:`models.matching.match_sounds`); :mod:`models.matching.match_output`
writes it as files and :mod:`models.matching.match_text` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.checks import check_audio
from core.errors import InverSynthError
from generators.parameters import Parameter, ParameterSet
from models.matching.audio_io import ModelInput, load_for_model, load_segments
from models.matching.legend import with_descriptions
from models.matching.pitch import Pitch, note_name
from models.matching.sound_metrics import compare_audio

if TYPE_CHECKING:
    from models.common.run import Run
    from models.matching.match_result import MatchResult

__all__ = [
    "ParameterPrediction",
    "PlayedNote",
    "Prediction",
    "class_verdict",
    "format_value",
    "predict_audio",
    "predict_example",
    "predict_file",
    "predict_segments",
]


@dataclass(frozen=True)
class PlayedNote:
    """The note a match's preset is played at, and the pitch it came from.

    Attributes
    ----------
    midi : int
        The MIDI note (60 = C4).
    pitch : Pitch
        The sound's estimated pitch (``pitch.midi`` None: no pitch found, the
        synth's own note is kept).
    synth_note : int
        The note the synth played while matching; the preset's transpose
        carries the difference.
    """

    midi: int
    pitch: Pitch
    synth_note: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "midi": self.midi,
            "name": note_name(self.midi),
            "pitch": self.pitch.to_dict(),
            "synth_note": self.synth_note,
        }


def class_verdict(parameter: Parameter, true_index: int, predicted_index: int) -> tuple[int, str]:
    """How far a predicted class is from the true one.

    Returns
    -------
    severity : int
        0 right, 1 one class off (ordered parameters), 2 further off or wrong.
    text : str
        ``"right"``, ``"1 class off"``, ``"3 classes off"``, or for an
        unordered parameter (``Parameter.ordered`` false) ``"wrong"``.
    """
    off = abs(int(predicted_index) - int(true_index))
    if off == 0:
        return 0, "right"
    if not parameter.ordered:
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
    group, description : str
        The parameter's reporting group and what it does (``""``: not said).
    """

    name: str
    unit: str
    index: int
    value: float
    top: list[tuple[int, float, float]]
    group: str = ""
    description: str = ""


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
        :func:`~models.matching.sound_metrics.compare_audio` of input and resynthesis.
    true_indices : np.ndarray [n_parameters], int64, or None
        The true classes, for a sound whose parameters are known (a test example).
    match : MatchResult, or None
        A matcher's refinement (:mod:`models.matching.match_sounds`); then
        ``resynthesis`` and ``metrics`` are the network's guess, the match is final.
    note : PlayedNote, optional
        For a synth played at a note (the DX7): the note the match's preset is to
        be played at, from the sound's pitch
        (:func:`~models.matching.match_sounds.played_note`).
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
    note: PlayedNote | None = None


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
                group=param.group,
                description=param.description,
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
    indices = run.decode(scores[None, :])[0]  # [n_parameters]
    values = parameter_set.to_values(indices[None, :])[0]
    described = with_descriptions(
        parameter_set, generator=generator, generator_name=run.generator_name,
        generator_config=run.generator_config,
    )  # fmt: skip
    prediction = Prediction(
        source=source,
        input=sound,
        scores=scores,
        indices=indices,
        values=values,
        parameters=_parameter_predictions(described, scores, indices, int(top_k)),
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


def format_value(value: float, unit: str) -> str:
    """``523.3 Hz``, ``0.25 s``, ``0.6``: 4 significant digits and the unit."""
    text = f"{value:.4g}"
    return f"{text} {unit}" if unit else text
