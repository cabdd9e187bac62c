"""Sound matchers: a sound in, synth settings out, four ways behind one interface.

=========  ===================================================================
method     what it does with a budget of B renders
=========  ===================================================================
network    the network's most likely class of every parameter; with B > 1,
           B - 1 more patches drawn from its per-parameter probabilities,
           the closest kept
lookup     the B nearest examples of a dataset by the index feature
           (:mod:`models.matching.lookup`), rendered and ranked by the distance
search     :func:`~models.matching.search.search` from random patches
hybrid     the network's guess, patches drawn from it and the lookup's
           neighbours start the search; the network's top classes and the
           neighbours' classes are each parameter's candidates in its narrow
           descent. The default. Its first render is the network's guess and
           the best is kept, so it is never farther from the target than the
           network alone
=========  ===================================================================

Every matcher returns a :class:`MatchResult` (values, class indices, distance,
renders used, seconds, and the reconstruction metrics of its first guess and
of its match), takes a budget of renders and/or seconds per sound, and gives
the same result for the same seed and budget of renders. The default budget is
:data:`DEFAULT_BUDGET_RENDERS` renders and no time limit, so the same sound
gives the same match on any machine under any load; a time limit
(``time_limit_s``) is an optional cap. ``on_progress`` is called after every
batch of renders (:class:`~models.matching.objective.MatchProgress`); what it
raises ends the match and propagates.

The network enters as a callable ``scores(audio [B, N]) -> [B, n_outputs]``:
per-parameter class probabilities in the layout of
``ParameterSet.encode`` (``Run.predict_scores`` of a trained run), so this
module never imports TensorFlow.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from core.checks import check_audio
from core.errors import InverSynthError
from generators.parameters import DECODINGS
from models.matching.distance import MultiResolutionDistance
from models.matching.lookup import DatasetLookup
from models.matching.match_result import LookupRecord, MatchResult
from models.matching.objective import (
    DEFAULT_BUDGET_RENDERS,
    DEFAULT_BUDGET_S,
    Budget,
    Objective,
    ProgressCallback,
)
from models.matching.search import SearchPlan, SearchPrior, search
from models.matching.sound_metrics import compare_audio

__all__ = [
    "DEFAULT_METHOD",
    "MATCHERS",
    "HybridMatcher",
    "LookupMatcher",
    "Matcher",
    "NetworkMatcher",
    "ScoreFunction",
    "SearchMatcher",
    "make_matcher",
]

ScoreFunction = Callable[[np.ndarray], np.ndarray]  # audio [B, N] -> scores [B, n_outputs]

DEFAULT_METHOD = "hybrid"
_MIN_RELATIVE_PROBABILITY = 0.1  # a candidate class is at least this likely relative to the top
# A budget of time alone (no renders) still needs a count: the network draws at most
# _MAX_DRAWS patches, the lookup ranks at most _MAX_NEIGHBOURS examples.
_MAX_DRAWS = 4096
_MAX_NEIGHBOURS = 256


class Matcher(abc.ABC):
    """Finds the synth settings closest to a sound.

    Parameters
    ----------
    generator : SoundGenerator
        The synth to play: ``render``, ``parameter_set``, ``sample_rate``,
        ``n_samples``, ``name``.
    distance : MultiResolutionDistance, optional
        The objective; default :class:`MultiResolutionDistance` at the synth's rate.
    scores : callable, optional
        ``audio [B, N] -> scores [B, n_outputs]``, the network's per-parameter
        class probabilities (``network`` and ``hybrid`` need it).
    lookup : DatasetLookup, optional
        A dataset of the same synth (``lookup`` needs it, ``hybrid`` uses it).
    batch_size : int > 0
        Candidates per render call.
    lookup_record : LookupRecord, optional
        What ``lookup`` is, for the record; default its index file.
    notes : sequence of str
        Parts the method runs without, said with every match
        (``"hybrid without a lookup: ..."``).
    """

    name: ClassVar[str]
    needs_scores: ClassVar[bool] = False
    needs_lookup: ClassVar[bool] = False

    def __init__(
        self,
        *,
        generator: Any,
        distance: MultiResolutionDistance | None = None,
        scores: ScoreFunction | None = None,
        lookup: DatasetLookup | None = None,
        batch_size: int = 64,
        lookup_record: LookupRecord | None = None,
        notes: Sequence[str] = (),
        decode: str = "argmax",
    ) -> None:
        if self.needs_scores and scores is None:
            raise InverSynthError(
                f"the {self.name!r} matcher needs the network's scores (a trained run)"
            )
        if self.needs_lookup and lookup is None:
            raise InverSynthError(f"the {self.name!r} matcher needs a lookup dataset")
        if lookup is not None and not lookup.parameter_set.matches(generator.parameter_set):
            raise InverSynthError(
                f"the lookup dataset's parameters ({lookup.parameter_set.n_parameters}) are not "
                f"those of the {generator.name!r} synth ({generator.parameter_set.n_parameters})"
            )
        if int(batch_size) != batch_size or batch_size <= 0:
            raise InverSynthError(f"batch_size must be a positive integer, got {batch_size!r}")
        if decode not in DECODINGS:
            raise InverSynthError(f"decode must be one of {DECODINGS}, got {decode!r}")
        self.decode = decode
        self.generator = generator
        self.parameter_set = generator.parameter_set
        self.distance = distance or MultiResolutionDistance(sample_rate=generator.sample_rate)
        self.scores = scores
        self.lookup = lookup
        self.batch_size = int(batch_size)
        if lookup_record is None and lookup is not None:
            path = str(lookup.path)
            lookup_record = LookupRecord(path, lookup.n_examples, path)
        self.lookup_record = lookup_record if lookup is not None else None
        self.notes = tuple(notes)

    def match(
        self,
        audio: np.ndarray,
        *,
        max_renders: int | None = DEFAULT_BUDGET_RENDERS,
        time_limit_s: float | None = DEFAULT_BUDGET_S,
        seed: int = 0,
        on_progress: ProgressCallback | None = None,
    ) -> MatchResult:
        """Match one sound.

        Parameters
        ----------
        audio : np.ndarray [n_samples], float
            At the synth's sample rate and length.
        max_renders : int > 0, optional
            Never render more sounds than this.
        time_limit_s : float > 0, optional
            Start no render batch that would end after this (the network's and
            the lookup's time count). At least one budget.
        seed : int
        on_progress : callable, optional
            Called with a :class:`~models.matching.objective.MatchProgress`
            after every batch of renders; an exception raised there ends the
            match and propagates.

        Returns
        -------
        MatchResult
        """
        budget = Budget(renders=max_renders, seconds=time_limit_s)  # checked before anything
        if isinstance(seed, bool) or int(seed) != seed:
            raise InverSynthError(f"seed must be an integer, got {seed!r}")
        x = check_audio(
            audio,
            name="the sound to match",
            n_samples=self.generator.n_samples,
            length_reason=(
                f"the {self.generator.name!r} synth's length at {self.generator.sample_rate} Hz"
            ),
        )
        start_s = time.monotonic()
        found = self._match(
            x,
            budget=budget,
            start_s=start_s,
            rng=np.random.default_rng(int(seed)),
            on_progress=on_progress,
        )
        seconds = time.monotonic() - start_s
        rate = self.generator.sample_rate
        start_audio = found.start_audio
        return MatchResult(
            method=self.name,
            values=found.values,
            indices=found.indices,
            distance=found.distance,
            audio=found.audio,
            renders=found.renders,
            seconds=seconds,
            metrics=compare_audio(x, found.audio, sample_rate=rate),
            start_indices=found.start_indices,
            start_distance=found.start_distance,
            start_metrics=compare_audio(x, start_audio, sample_rate=rate),
            seed=int(seed),
            budget_renders=None if max_renders is None else int(max_renders),
            budget_s=None if time_limit_s is None else float(time_limit_s),
            lookup=self.lookup_record,
            notes=self.notes,
        )

    def _objective(
        self,
        audio: np.ndarray,
        *,
        budget: Budget,
        on_progress: ProgressCallback | None,
        start_s: float,
    ) -> Objective:
        """The objective of one match: the budget's time counts from ``start_s`` (the network's
        and the lookup's time count)."""
        return Objective(
            render=self.generator.render,
            parameter_set=self.parameter_set,
            distance=self.distance,
            target=self.distance.target(audio),
            budget=Budget(renders=budget.renders, seconds=_time_left(budget.seconds, start_s)),
            batch_size=self.batch_size,
            on_progress=on_progress,
            started_s=start_s,
        )

    def _probabilities(self, audio: np.ndarray) -> list[np.ndarray]:
        """The network's class probabilities of each parameter, each summing to 1."""
        assert self.scores is not None
        scores = np.asarray(self.scores(audio[None, :]), dtype=np.float64)
        if scores.shape != (1, self.parameter_set.n_outputs):
            raise InverSynthError(
                f"the network's scores must have shape [1, {self.parameter_set.n_outputs}], "
                f"got {scores.shape}"
            )
        out = []
        for block in self.parameter_set.split_scores(scores):
            p = np.clip(np.nan_to_num(block[0]), 0.0, None)
            total = p.sum()
            out.append(p / total if total > 0 else np.full(p.shape, 1.0 / p.size))
        return out

    def _guess(self, probabilities: Sequence[np.ndarray]) -> np.ndarray:
        """The network's guess [P] int64: each parameter's most likely class, or with
        ``decode="median"`` the median class of each ordered parameter (the run's choice)."""
        guess = np.array([int(np.argmax(p)) for p in probabilities], dtype=np.int64)
        if self.decode == "median":
            for j, (p, parameter) in enumerate(
                zip(probabilities, self.parameter_set.parameters, strict=True)
            ):
                if parameter.ordered:
                    guess[j] = min(int(np.sum(np.cumsum(p) < 0.5)), p.size - 1)
        return guess

    @abc.abstractmethod
    def _match(
        self,
        audio: np.ndarray,
        *,
        budget: Budget,
        start_s: float,
        rng: np.random.Generator,
        on_progress: ProgressCallback | None,
    ) -> _Found:
        """The method itself."""


@dataclass(frozen=True)
class _Found:
    values: np.ndarray
    indices: np.ndarray
    distance: float
    audio: np.ndarray
    renders: int
    start_indices: np.ndarray
    start_distance: float
    start_audio: np.ndarray


def _time_left(time_limit_s: float | None, start_s: float) -> float | None:
    """Seconds of the budget left; a tiny positive number once spent (one render still happens)."""
    if time_limit_s is None:
        return None
    return max(1e-9, time_limit_s - (time.monotonic() - start_s))


def _found_from_ranking(objective: Objective, candidates: np.ndarray) -> _Found:
    """Render candidates in order (the first always), keep the closest; the first is the start."""
    first_d = float(objective.indices(candidates[:1])[0])
    assert objective.best_audio is not None
    first_audio = objective.best_audio
    objective.indices(candidates[1:])
    assert objective.best_values is not None and objective.best_indices is not None
    assert objective.best_audio is not None
    return _Found(
        values=objective.best_values.copy(),
        indices=objective.best_indices.copy(),
        distance=objective.best_distance,
        audio=objective.best_audio,
        renders=objective.renders,
        start_indices=np.asarray(candidates[0], dtype=np.int64),
        start_distance=first_d,
        start_audio=first_audio,
    )


def _sample_patches(
    probabilities: Sequence[np.ndarray], n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` patches, each parameter drawn from its class probabilities: [n, P] int64."""
    out = np.empty((n, len(probabilities)), dtype=np.int64)
    for j, p in enumerate(probabilities):
        out[:, j] = rng.choice(p.size, size=n, p=p)
    return out


class NetworkMatcher(Matcher):
    """The network's guess; with more renders, also patches drawn from its probabilities."""

    name = "network"
    needs_scores = True

    def _match(
        self,
        audio: np.ndarray,
        *,
        budget: Budget,
        start_s: float,
        rng: np.random.Generator,
        on_progress: ProgressCallback | None,
    ) -> _Found:
        probabilities = self._probabilities(audio)
        guess = self._guess(probabilities)
        n_draws = (budget.renders or _MAX_DRAWS) - 1
        patches = np.concatenate([guess[None, :], _sample_patches(probabilities, n_draws, rng)])
        objective = self._objective(audio, budget=budget, on_progress=on_progress, start_s=start_s)
        return _found_from_ranking(objective, patches)


class LookupMatcher(Matcher):
    """The dataset examples nearest by the index feature, re-ranked by the distance."""

    name = "lookup"
    needs_lookup = True

    def _match(
        self,
        audio: np.ndarray,
        *,
        budget: Budget,
        start_s: float,
        rng: np.random.Generator,
        on_progress: ProgressCallback | None,
    ) -> _Found:
        assert self.lookup is not None
        k = min(budget.renders or _MAX_NEIGHBOURS, self.lookup.n_examples)
        neighbours = self.lookup.query(audio, k=k)
        objective = self._objective(audio, budget=budget, on_progress=on_progress, start_s=start_s)
        return _found_from_ranking(objective, neighbours.labels)


class SearchMatcher(Matcher):
    """The search alone, from random patches.

    Parameters
    ----------
    n_random_starts : int > 0
        Random patches rendered first; the best few are descended from.
    continuous : bool
        Let the search end between the levels (CMA-ES over continuous values).
    **kwargs
        As :class:`Matcher`.
    """

    name = "search"

    def __init__(
        self, *, n_random_starts: int = 16, continuous: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.continuous = bool(continuous)
        if int(n_random_starts) != n_random_starts or n_random_starts <= 0:
            raise InverSynthError(
                f"n_random_starts must be a positive integer, got {n_random_starts!r}"
            )
        self.n_random_starts = int(n_random_starts)

    def _starts(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(
            0, self.parameter_set.n_levels, size=(self.n_random_starts, len(self.parameter_set))
        )

    def _candidates(self, audio: np.ndarray) -> list[np.ndarray] | None:
        return None

    def _priority(self, audio: np.ndarray) -> np.ndarray | None:
        """Parameter positions in the order a large space's descent visits them (None: as declared)."""
        return None

    def _match(
        self,
        audio: np.ndarray,
        *,
        budget: Budget,
        start_s: float,
        rng: np.random.Generator,
        on_progress: ProgressCallback | None,
    ) -> _Found:
        starts = self._starts(audio, rng)
        prior = SearchPrior(
            starts=starts, candidates=self._candidates(audio), priority=self._priority(audio)
        )
        seed = int(rng.integers(0, 2**31 - 1))
        objective = self._objective(audio, budget=budget, on_progress=on_progress, start_s=start_s)
        result = search(
            objective, prior=prior, seed=seed, plan=SearchPlan(continuous=self.continuous)
        )
        return _Found(
            values=result.values,
            indices=result.indices,
            distance=result.distance,
            audio=result.audio,
            renders=result.renders,
            start_indices=np.asarray(starts[0], dtype=np.int64),
            start_distance=result.start_distance,
            start_audio=result.start_audio,
        )


class HybridMatcher(SearchMatcher):
    """The network's guess and the lookup's neighbours seed the search (the default method).

    Parameters
    ----------
    n_network_draws : int >= 0
        Patches drawn from the network's probabilities, added to the starts.
    n_neighbours : int >= 0
        Lookup neighbours added to the starts (when a lookup is given).
    top_k : int > 0
        The network's most likely classes of each parameter among its candidates
        (those at least a tenth as likely as the most likely one).
    **kwargs
        As :class:`Matcher`.
    """

    name = "hybrid"
    needs_scores = True

    def __init__(
        self,
        *,
        n_network_draws: int = 8,
        n_neighbours: int = 32,
        top_k: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(n_random_starts=1, **kwargs)
        for key, value, low in (
            ("n_network_draws", n_network_draws, 0),
            ("n_neighbours", n_neighbours, 0),
            ("top_k", top_k, 1),
        ):
            if int(value) != value or value < low:
                raise InverSynthError(f"{key} must be an integer >= {low}, got {value!r}")
        self.n_network_draws = int(n_network_draws)
        self.n_neighbours = int(n_neighbours)
        self.top_k = int(top_k)
        self._cached: tuple[bytes, list[np.ndarray], np.ndarray | None] | None = None

    def _prior(self, audio: np.ndarray) -> tuple[list[np.ndarray], np.ndarray | None]:
        """The network's probabilities and the neighbours' labels of this sound (computed once)."""
        key = audio.tobytes()
        if self._cached is None or self._cached[0] != key:
            probabilities = self._probabilities(audio)
            labels = None
            if self.lookup is not None and self.n_neighbours > 0:
                labels = self.lookup.query(audio, k=self.n_neighbours).labels
            self._cached = (key, probabilities, labels)
        return self._cached[1], self._cached[2]

    def _starts(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        probabilities, labels = self._prior(audio)
        guess = self._guess(probabilities)
        argmax = np.array([int(np.argmax(p)) for p in probabilities], dtype=np.int64)
        rows = [guess[None, :], argmax[None, :]]  # the same row twice costs one render
        rows.append(_sample_patches(probabilities, self.n_network_draws, rng))
        if labels is not None:
            rows.append(labels)
        return np.concatenate(rows, axis=0)

    def _candidates(self, audio: np.ndarray) -> list[np.ndarray] | None:
        probabilities, labels = self._prior(audio)
        out = []
        for j, p in enumerate(probabilities):
            top = np.argsort(-p, kind="stable")[: self.top_k]
            top = top[p[top] >= _MIN_RELATIVE_PROBABILITY * p[top[0]]]  # not the unlikely ones
            near = labels[: max(1, self.n_neighbours // 8), j] if labels is not None else top
            out.append(np.unique(np.concatenate([top, near])))
        return out

    def _priority(self, audio: np.ndarray) -> np.ndarray | None:
        """The parameters the network is least sure of first (its top class least likely)."""
        probabilities, _ = self._prior(audio)
        confidence = np.array([float(np.max(p)) for p in probabilities])
        return np.argsort(confidence, kind="stable")


MATCHERS: dict[str, type[Matcher]] = {
    cls.name: cls for cls in (NetworkMatcher, LookupMatcher, SearchMatcher, HybridMatcher)
}


def make_matcher(method: str = DEFAULT_METHOD, **kwargs: Any) -> Matcher:
    """The matcher registered as ``method`` (:data:`MATCHERS`), built with ``kwargs``.

    Raises
    ------
    InverSynthError
        Unknown method, or a matcher missing what it needs (scores, lookup).
    """
    if method not in MATCHERS:
        raise InverSynthError(f"unknown matching method {method!r}; known: {sorted(MATCHERS)}")
    return MATCHERS[method](**kwargs)
