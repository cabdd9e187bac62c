"""A trained run's matcher, and one call that matches a sound file and writes what it found.

:func:`run_matcher` builds the matcher a
:class:`~models.matching.match_settings.MatchSettings` names (its method of
:data:`~models.matching.matchers.MATCHERS`) for a run: the network's scores are
the run's (``Run.predict_scores``); the lookup (:func:`open_lookup`) is the
settings' ``lookup_dataset``, else the run's own dataset
when it is here (its index is built once, with a message, and stored beside
it), else one rendered from the run's synth when the synth gives the dataset's
examples back exactly (:mod:`models.matching.synth_lookup`: the shipped FM
model's). A method that must go without one of its parts says so, in the
terminal and in every match's record (``"hybrid without a lookup: ..."``).

:func:`match_sound_file` is ``predict``'s whole pipeline for one sound (read,
predict, match, write), the library call behind ``python -m models.predict``
and the web page; :func:`match_and_write` does the same for a sound already
predicted (a part of a long file, a test example); both read the seed, budget
and what to write from the same settings. ``on_progress`` is called
after every batch of the search's renders; an exception raised there ends the
match, propagates, and leaves no file written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.environment import env_default
from core.errors import InverSynthError
from models.common.pretrained import PRETRAINED_FM_RUN
from models.common.run import Run
from models.matching.audio_io import load_for_model
from models.matching.distance import MultiResolutionDistance
from models.matching.lookup import DatasetLookup
from models.matching.match_output import write_prediction
from models.matching.match_result import LookupRecord, MatchResult
from models.matching.match_settings import DEFAULT_SETTINGS, MatchSettings
from models.matching.matchers import MATCHERS, Matcher, SearchMatcher, make_matcher
from models.matching.objective import (
    DEFAULT_BUDGET_RENDERS,
    DEFAULT_BUDGET_S,
    ProgressCallback,
)
from models.matching.pitch import estimate_pitch
from models.matching.prediction import PlayedNote, Prediction, predict_audio
from models.matching.synth_lookup import open_synth_lookup, why_not_renderable

__all__ = [
    "MatchOutcome",
    "match_and_write",
    "match_prediction",
    "match_sound_file",
    "open_lookup",
    "played_note",
    "run_label",
    "run_matcher",
]


def run_label(run: Run) -> str:
    """The run for people: ``the shipped model`` or ``run runs/C6_fm``."""
    try:
        shipped = Path(run.run_dir).resolve() == PRETRAINED_FM_RUN.resolve()
    except OSError:
        shipped = False
    return "the shipped model" if shipped else f"run {run.run_dir}"


@dataclass(frozen=True)
class _Lookup:
    lookup: DatasetLookup | None
    record: LookupRecord | None
    notes: tuple[str, ...] = ()


def _dataset_lookup(
    source: Any, generator: Any, exclude_rows: np.ndarray | None, progress: bool
) -> _Lookup:
    lookup = DatasetLookup.open(source, generator=generator, progress=progress)
    paths = [str(source)] if isinstance(source, (str, Path)) else [str(p) for p in source]
    record = LookupRecord(", ".join(paths), lookup.n_examples, str(lookup.path))
    if exclude_rows is not None:
        lookup = lookup.without(exclude_rows)
        record = LookupRecord(record.dataset, lookup.n_examples, record.index)
    return _Lookup(lookup, record)


def _rendered_lookup(
    run: Run, generator: Any, exclude_rows: np.ndarray | None, data_dir: Path, progress: bool
) -> _Lookup:
    lookup, record = open_synth_lookup(
        run, generator, data_dir=data_dir, label=run_label(run), progress=progress
    )
    if exclude_rows is not None:  # rows given as the dataset's; the index holds no test row
        rendered = np.setdiff1d(
            np.arange(int(run.dataset_identity["n_examples"])), run.split.indices("test")
        )
        positions = np.flatnonzero(np.isin(rendered, exclude_rows))
        if positions.size:
            lookup = lookup.without(positions)
            record = LookupRecord(record.dataset, lookup.n_examples, record.index, True)
    return _Lookup(lookup, record)


def open_lookup(
    run: Run,
    generator: Any,
    *,
    method: str,
    lookup_dataset: str | Path | Sequence[str | Path] | None = None,
    exclude_rows: np.ndarray | None = None,
    data_dir: str | Path | None = None,
    progress: bool = True,
) -> tuple[DatasetLookup | None, LookupRecord | None, tuple[str, ...]]:
    """The lookup a method uses, what it is, and what the method goes without.

    ``lookup_dataset`` when given; else the run's own dataset when its files are
    here; else, for a synth that renders its examples back exactly, the run's
    training examples rendered once and cached in ``data_dir`` (default
    ``INVERSYNTH_DATASET_DIRECTORY``, ``data``). ``network`` and ``search`` use
    none; ``hybrid`` goes without one when none of these is possible, and the
    notes say so; ``lookup`` cannot (:class:`InverSynthError`). ``exclude_rows``
    (rows of the dataset) are left out: the dataset's own sounds being matched.

    Returns
    -------
    lookup : DatasetLookup or None
    record : LookupRecord or None
    notes : tuple of str
        ``("hybrid without a lookup: ...",)`` when the method goes without.
    """
    if not MATCHERS[method].needs_lookup and method != "hybrid":
        return None, None, ()
    if lookup_dataset is not None:
        found = _dataset_lookup(lookup_dataset, generator, exclude_rows, progress)
        return found.lookup, found.record, ()
    paths = run.dataset_paths
    if paths and all(Path(p).is_file() for p in paths):
        found = _dataset_lookup(paths, generator, exclude_rows, progress)
        return found.lookup, found.record, ()
    reason = why_not_renderable(run, generator)
    if reason is None:
        folder = Path(data_dir) if data_dir is not None else env_default(
            "DATASET_DIRECTORY", Path("data"), Path
        )  # fmt: skip
        found = _rendered_lookup(run, generator, exclude_rows, folder, progress)
        return found.lookup, found.record, ()
    names = ", ".join(Path(p).name for p in paths) or "not named"
    why = f"the run's dataset ({names}) is not here and {reason}"
    if MATCHERS[method].needs_lookup:
        raise InverSynthError(
            f"the {method!r} method needs a dataset of the {run.generator_name!r} synth: "
            f"{why}; give --lookup_dataset FILE"
        )
    hint = getattr(generator, "lookup_hint", "")
    note = (
        f"{method} without a lookup: {why}; it starts from the network's guess alone "
        f"(give --lookup_dataset FILE, a dataset of the {run.generator_name!r} synth"
        + (f"; {hint})" if hint else ")")
    )
    return None, None, (note,)


def run_matcher(
    run: Run,
    *,
    generator: Any,
    settings: MatchSettings = DEFAULT_SETTINGS,
    exclude_rows: np.ndarray | None = None,
    data_dir: str | Path | None = None,
    progress: bool = True,
) -> Matcher:
    """The matcher of ``settings.method`` for ``run``, playing ``generator`` (``run.make_generator()``).

    ``matcher.notes`` says what the method goes without; ``matcher.lookup_record``
    what its lookup is (:func:`open_lookup`: ``settings.lookup_dataset``,
    ``exclude_rows``, ``data_dir``). ``progress`` prints a lookup's first build.
    ``settings.workers`` threads score each batch of candidates (give the
    generator as many rendering workers: ``run.make_generator(workers=N)``).

    Raises
    ------
    InverSynthError
        A lookup dataset of another synth, or ``lookup`` without a dataset.
    """
    method = settings.method
    lookup, record, notes = open_lookup(
        run, generator, method=method, lookup_dataset=settings.lookup_dataset,
        exclude_rows=exclude_rows, data_dir=data_dir, progress=progress,
    )  # fmt: skip
    searching = issubclass(MATCHERS[method], SearchMatcher)  # only a search ends between levels
    return make_matcher(
        method,
        generator=generator,
        scores=run.predict_scores,
        lookup=lookup,
        lookup_record=record,
        notes=notes,
        decode=run.decoding,
        distance=MultiResolutionDistance(
            sample_rate=generator.sample_rate, threads=settings.workers
        ),
        **({"continuous": settings.continuous} if searching else {}),
    )


def match_prediction(
    prediction: Prediction,
    matcher: Matcher,
    *,
    max_renders: int | None = DEFAULT_BUDGET_RENDERS,
    time_limit_s: float | None = DEFAULT_BUDGET_S,
    seed: int = 0,
    on_progress: ProgressCallback | None = None,
) -> MatchResult:
    """Match the sound of ``prediction`` and keep the result in ``prediction.match``.

    The prediction's own ``resynthesis`` and ``metrics`` stay the network's guess.
    """
    result = matcher.match(
        prediction.input.audio, max_renders=max_renders, time_limit_s=time_limit_s, seed=seed,
        on_progress=on_progress,
    )  # fmt: skip
    prediction.match = result
    return result


@dataclass(frozen=True)
class MatchOutcome:
    """One sound matched and written.

    Attributes
    ----------
    prediction : Prediction
        The network's guess; ``prediction.match`` is the match.
    match : MatchResult
    record : dict
        The JSON record written (``{stem}.json``).
    files : dict of str -> Path
        Every file written, by kind: ``json``, ``input``, ``resynthesis``,
        ``network`` (when the match differs from the network's guess),
        ``plot`` (with ``plot=True``), ``patch`` (a synth with a preset format).
    """

    prediction: Prediction
    match: MatchResult
    record: dict[str, Any]
    files: dict[str, Path]


def match_and_write(
    run: Run,
    prediction: Prediction,
    *,
    matcher: Matcher,
    output_dir: str | Path,
    stem: str,
    settings: MatchSettings = DEFAULT_SETTINGS,
    on_progress: ProgressCallback | None = None,
) -> MatchOutcome:
    """Match a predicted sound and write its files (:func:`match_sound_file` after reading)."""
    budget = settings.budget
    match = match_prediction(
        prediction, matcher, max_renders=budget.renders, time_limit_s=budget.seconds,
        seed=settings.seed, on_progress=on_progress,
    )  # fmt: skip
    generator = matcher.generator
    if hasattr(generator, "voice_for_note"):  # a synth played at a note: the DX7
        prediction.note = played_note(generator, prediction)
    written = write_prediction(
        prediction, output_dir, stem=stem, run=run, plot=settings.plot, generator=generator,
        output_sample_rate=settings.output_sample_rate,
    )  # fmt: skip
    return MatchOutcome(prediction, match, written.record, written.files)


def played_note(generator: Any, prediction: Prediction) -> PlayedNote:
    """The note a match is to be played at: the sound's pitch (or the synth's own note).

    The sound's pitch comes from :func:`~models.matching.pitch.estimate_pitch`;
    the synth played the match at its own note, and the preset written
    (:meth:`~generators.dexed.synth.DexedGenerator.voice_for_note`) carries the
    difference in its transpose, so the preset played at this note is the match.
    """
    pitch = estimate_pitch(prediction.input.audio, sample_rate=prediction.input.sample_rate)
    wanted = generator.pitch if pitch.note is None else pitch.note
    values = prediction.values if prediction.match is None else prediction.match.values
    _, played = generator.voice_for_note(values, wanted)
    return PlayedNote(midi=int(played), pitch=pitch, synth_note=int(generator.pitch))


def match_sound_file(
    run: Run,
    path: str | Path,
    *,
    matcher: Matcher,
    output_dir: str | Path,
    stem: str,
    settings: MatchSettings = DEFAULT_SETTINGS,
    on_progress: ProgressCallback | None = None,
    offset_s: float = 0.0,
) -> MatchOutcome:
    """Read a sound file, predict its parameters, match it, and write what was found.

    Parameters
    ----------
    run : Run
        From :func:`~models.common.run.load_run`.
    path : path-like
        WAV, FLAC, OGG, MP3, ...; any sample rate and channel count.
    matcher : Matcher
        From :func:`run_matcher`; it plays the run's synth (``matcher.generator``).
    output_dir : path
        Where the files go (created if needed).
    stem : str
        File name stem: ``{stem}.json``, ``{stem}_input.wav``, ...
    settings : MatchSettings
        The seed, budget, top classes, output rate and plot (the matcher's own
        method, lookup and workers are those it was made with).
    on_progress : callable, optional
        Called with a :class:`~models.matching.objective.MatchProgress` after
        every batch of renders; an exception raised there ends the match and
        propagates, and no file is written.
    offset_s : float >= 0
        Where the part the model hears starts, seconds into the sound.

    Returns
    -------
    MatchOutcome

    Raises
    ------
    InverSynthError
        The file is missing, unreadable, empty, silent or holds NaN samples; a
        folder that cannot be written.
    """
    sound = load_for_model(
        path, sample_rate=run.sample_rate, n_samples=run.n_samples, offset_s=offset_s
    )
    prediction = predict_audio(
        run, sound, source=str(path), top_k=settings.top_k, generator=matcher.generator
    )
    return match_and_write(
        run, prediction, matcher=matcher, output_dir=output_dir, stem=stem, settings=settings,
        on_progress=on_progress,
    )  # fmt: skip
