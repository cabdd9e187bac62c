"""The page's one door into the matching library: the calls of ``python -m models.predict``.

Every call the web app makes into :mod:`models.matching` and :mod:`models.common.run`
goes through this module, so that the page runs exactly the command's
pipeline (no second implementation of matching) and a change of that
pipeline's API is one edit here (constants are read from their own modules):

* :func:`describe_run` reads a run folder's ``run.json`` (no model loaded);
* :func:`synth_missing` says whether this machine can play a run's synth;
* :func:`check_sound` reads an upload once to refuse what cannot be matched;
* :class:`LoadedRuns` keeps loaded runs, their synths and matchers, by folder;
* :func:`match_sound` predicts, matches and writes one sound's files, as
  ``models.predict`` does for each file it is given.

A match is asked for by a :class:`~models.matching.match_settings.MatchSettings`,
as the command builds one from its options. Progress: :func:`match_sound` takes
``on_stage`` (called between the steps) and ``on_progress``
(:class:`~models.matching.objective.MatchProgress`, after every batch of renders
of the search); either may raise to cancel, and a match cancelled at a progress
report writes no file (``models.matching.match_sounds.match_sound_file``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from core.errors import InverSynthError
from generators.dexed.engine import require_dexed
from generators.schema import SILENCE_PEAK
from models.common.run import BEST_MODEL, Run, RunInfo, load_run
from models.matching.audio_io import read_audio
from models.matching.legend import synth_label
from models.matching.match_settings import MatchSettings
from models.matching.match_sounds import match_sound_file, run_matcher
from models.matching.matchers import DEFAULT_METHOD, MATCHERS, Matcher
from models.matching.objective import ProgressCallback
from models.matching.sound_metrics import METRICS

__all__ = [
    "METHODS",
    "METRIC_INFO",
    "LoadedRuns",
    "MatchedSound",
    "RunSummary",
    "SoundInfo",
    "StageCallback",
    "check_sound",
    "describe_run",
    "match_sound",
    "synth_missing",
]

METHODS: tuple[str, ...] = tuple(sorted(MATCHERS))
# key -> (label, unit, higher is better), in the order the command prints them.
METRIC_INFO: dict[str, tuple[str, str, bool]] = {
    key: (info.label, info.unit, info.higher_is_better) for key, info in METRICS.items()
}


StageCallback = Callable[[str], None]  # "loading the model", "predicting", ...; may raise


_SYNTH_LABELS = {"fm": "the paper's FM synth", "dexed": "the DX7 (Dexed)"}


@dataclass(frozen=True)
class RunSummary:
    """What the page shows of a run folder before loading it.

    Attributes
    ----------
    model : str
        Architecture (``M1``, ``C6``).
    synth : str
        The generator's registry name (``fm``, ``vst``, ``dexed``).
    synth_label : str
        Its name for people (``the fm synth``, ``amsynth``, ``the DX7 (Dexed)``).
    n_parameters : int
    length_s : float
        Seconds of sound the model hears.
    sample_rate : int
        Hz.
    has_dataset : bool
        The run's own dataset is still there (the ``lookup`` method needs it).
    preset : str
        The suffix of the preset a match is saved as (``.fxp``, ``.syx``), or ``""``.
    """

    model: str
    synth: str
    synth_label: str
    n_parameters: int
    length_s: float
    sample_rate: int
    has_dataset: bool
    preset: str


def describe_run(run_dir: Path) -> RunSummary:
    """Read ``run_dir/run.json`` (and check ``model.keras`` is there) without loading the model.

    Raises
    ------
    InverSynthError
        Not a run folder, a malformed ``run.json``, or no trained model yet.
    """
    info = RunInfo.load(run_dir)
    if not (run_dir / BEST_MODEL).is_file():
        raise InverSynthError(f"run {str(run_dir)!r} has no {BEST_MODEL} yet")
    paths = info.dataset_paths
    presets = {"vst": ".fxp", "dexed": ".syx"}
    return RunSummary(
        model=info.model_name,
        synth=info.generator_name,
        synth_label=_SYNTH_LABELS.get(info.generator_name)
        or synth_label(info.generator_name, info.generator_config),
        n_parameters=info.parameter_set.n_parameters,
        length_s=info.n_samples / info.sample_rate,
        sample_rate=info.sample_rate,
        has_dataset=bool(paths) and all(Path(p).is_file() for p in paths),
        preset=presets.get(info.generator_name, ""),
    )


def synth_missing(run_dir: Path) -> str | None:
    """Why this machine cannot play the run's synth (one line naming the fix), or None.

    The DX7 needs the optional extra ``dexed``; a plugin run needs its plugin file.
    """
    info = RunInfo.load(run_dir)
    if info.generator_name == "dexed":
        try:
            require_dexed()
        except InverSynthError as exc:
            return str(exc)
    if info.generator_name == "vst":
        plugin = str(info.generator_config.get("plugin", ""))
        if not Path(plugin).exists():
            return f"its plugin {plugin!r} is not installed on this machine"
    return None


@dataclass(frozen=True)
class SoundInfo:
    """An upload that can be matched: its length (s), sample rate (Hz), channels and peak."""

    duration_s: float
    sample_rate: int
    channels: int
    peak: float


def check_sound(path: Path, *, name: str, max_duration_s: float) -> SoundInfo:
    """Read an uploaded sound once and refuse what the page cannot match.

    Parameters
    ----------
    path : Path
        The stored upload.
    name : str
        The file name the user gave, for the message.
    max_duration_s : float > 0
        The longest sound accepted, seconds.

    Raises
    ------
    InverSynthError
        Not audio, no samples, too long, NaN or infinite samples, or silent
        (peak below :data:`~generators.schema.SILENCE_PEAK`).
    """
    try:
        audio, rate = read_audio(path)  # [n, channels]
    except InverSynthError:
        raise InverSynthError(
            f"{name!r} is not a sound this page reads (WAV, FLAC, OGG or MP3)"
        ) from None
    if audio.size == 0:
        raise InverSynthError(f"{name!r} contains no audio samples")
    duration_s = audio.shape[0] / rate
    if duration_s > max_duration_s:
        raise InverSynthError(
            f"{name!r} lasts {duration_s:.1f} s; this page takes sounds of at most "
            f"{max_duration_s:g} s (the model hears its first second)"
        )
    if not np.isfinite(audio).all():
        raise InverSynthError(f"{name!r} contains NaN or infinite samples")
    peak = float(np.max(np.abs(audio)))
    if peak < SILENCE_PEAK:
        raise InverSynthError(f"{name!r} is silent (peak {peak:.2g})")
    return SoundInfo(duration_s, int(rate), int(audio.shape[1]), peak)


@dataclass
class _Loaded:
    """A loaded run, its synth and its matchers by method."""

    run: Run
    generator: Any
    matchers: dict[tuple[Any, ...], Matcher] = field(default_factory=dict)

    def matcher(self, settings: MatchSettings) -> Matcher:
        """The matcher of ``settings`` (made once per method, lookup, continuous and workers)."""
        key = (
            settings.method,
            repr(settings.lookup_dataset),
            settings.continuous,
            settings.workers,
        )
        if key not in self.matchers:
            self.matchers[key] = run_matcher(
                self.run,
                generator=self.generator,
                settings=settings,
                # The run's own dataset without its held-out sounds, as models.predict does.
                exclude_rows=self.run.split.indices("test"),
            )
        return self.matchers[key]


class LoadedRuns:
    """Runs loaded by a worker, kept by folder: loading one costs seconds (TensorFlow).

    Use from one thread at a time (the job queue's worker); :meth:`close`
    ends the synths' processes.
    """

    def __init__(self) -> None:
        self._runs: dict[Path, _Loaded] = {}
        self._lock = threading.Lock()

    def is_loaded(self, run_dir: Path) -> bool:
        with self._lock:
            return run_dir.resolve() in self._runs

    def get(self, run_dir: Path) -> _Loaded:
        """The loaded run of ``run_dir``, loading it (model and synth) the first time."""
        key = run_dir.resolve()
        with self._lock:
            loaded = self._runs.get(key)
        if loaded is None:
            run = load_run(key)
            loaded = _Loaded(run, run.make_generator())
            with self._lock:
                self._runs[key] = loaded
        return loaded

    def warm_up(self, run_dir: Path, *, method: str = DEFAULT_METHOD) -> None:
        """Load ``run_dir`` and match one of its synth's sounds with a few renders.

        The first prediction traces the model and the first renders compile the
        synth's code: done here, before any sound is sent, they cost the first
        match nothing.
        """
        loaded = self.get(run_dir)
        indices = loaded.run.parameter_set.sample_indices(seed=0, n_examples=1)
        audio = np.asarray(loaded.generator.render_indices(indices)[0], dtype=np.float32)
        loaded.run.predict_scores(audio[None, :])
        loaded.matcher(MatchSettings(method=method)).match(audio, max_renders=8, seed=0)

    def close(self) -> None:
        with self._lock:
            loaded, self._runs = list(self._runs.values()), {}
        for item in loaded:
            item.generator.close()


@dataclass(frozen=True)
class MatchedSound:
    """One sound matched: the JSON record ``models.predict`` writes, and every file written.

    ``files`` has ``json``, ``input``, ``resynthesis`` (the match), ``plot``,
    ``network`` (the network's guess, for ``hybrid``) and ``patch`` (the preset,
    for a plugin or DX7 run) where written.
    """

    record: dict[str, Any]
    files: dict[str, Path]


def match_sound(
    runs: LoadedRuns,
    run_dir: Path,
    path: Path,
    *,
    settings: MatchSettings,
    output_dir: Path,
    stem: str,
    on_stage: StageCallback | None = None,
    on_progress: ProgressCallback | None = None,
) -> MatchedSound:
    """Predict, match and write one sound as ``python -m models.predict`` does.

    Parameters
    ----------
    runs : LoadedRuns
        The worker's cache of loaded runs.
    run_dir : Path
        The run folder.
    path : Path
        The sound file (its first ``length_s`` seconds are matched).
    settings : MatchSettings
        The method, seed, budget, ... as ``models.predict``'s options give them.
    output_dir : Path
        Where the files go (created).
    stem : str
        File name stem of every file written.
    on_stage : callable, optional
        Told each step's name before it starts; may raise to cancel.
    on_progress : callable, optional
        Called with a :class:`~models.matching.objective.MatchProgress` after every
        batch of renders; may raise to cancel.

    Raises
    ------
    InverSynthError
        A sound or method the run cannot match.
    """
    stage: StageCallback = on_stage or (lambda _: None)
    if not runs.is_loaded(run_dir):
        stage("loading the model")
    loaded = runs.get(run_dir)
    matcher = loaded.matcher(settings)
    stage("matching")
    # One BLAS thread: the search's products are small, and on cores shared with other
    # work (the page's own server, a browser, other jobs) a second BLAS thread waits more
    # than it computes: the same match took about 3 times as long (benchmarks/serve_speed.py).
    with threadpool_limits(limits=1, user_api="blas"):
        outcome = match_sound_file(
            loaded.run, path, matcher=matcher, output_dir=output_dir, stem=stem,
            settings=settings, on_progress=on_progress,
        )  # fmt: skip
    return MatchedSound(record=outcome.record, files=dict(outcome.files))
