"""Hearing candidates against a target within a budget: the objective every matcher searches.

An :class:`Objective` renders candidate patches in batches through one callable,
``render(values [B, P]) -> audio [B, N]`` (:meth:`SoundGenerator.render`),
scores them by the multi-resolution distance of :mod:`models.matching.distance`,
counts the renders against its :class:`Budget` (never more than its renders; no
new batch once its seconds would be passed), caches what it has already heard
and keeps the best so far, so a search can be cut off anywhere and still return
its best. After every batch it reports to an optional callback
(:data:`ProgressCallback`) with a :class:`MatchProgress`; an exception raised
there ends the search and propagates (a caller's way to cancel a match).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.errors import InverSynthError
from generators.parameters import ParameterSet
from models.matching.distance import MultiResolutionDistance, Target

__all__ = [
    "BUDGET_REFERENCE_S",
    "DEFAULT_BUDGET_RENDERS",
    "DEFAULT_BUDGET_S",
    "MAX_BUDGET_RENDERS",
    "MAX_BUDGET_S",
    "MIN_BUDGET_S",
    "SAME_SOUND_DB",
    "Budget",
    "MatchProgress",
    "Objective",
    "ProgressCallback",
    "Render",
    "check_budget",
]

Render = Callable[[np.ndarray], np.ndarray]  # values [B, P] float -> audio [B, N] float32

_FIRST_BATCH = 8  # renders timed before a time budget trusts its estimate
SAME_SOUND_DB = 1e-3  # a distance this small is the target itself (float32 rounding)

# The default budget of a match, one definition for every command and benchmark: a
# number of renders, so the result does not depend on the machine or its load, sized
# so that the default match of one 1 s FM sound takes about BUDGET_REFERENCE_S on a
# 2-core machine (README's figures were taken at that time budget). No time limit by
# default; a time limit caps the renders where the user asks.
BUDGET_REFERENCE_S = 2.0
DEFAULT_BUDGET_RENDERS = 4000
DEFAULT_BUDGET_S: float | None = None
# The largest budget a match takes: a million renders is minutes with the FM synth and
# hours with a plugin, a day of seconds any real need; beyond them a typo runs for ever.
MAX_BUDGET_RENDERS = 1_000_000
MIN_BUDGET_S, MAX_BUDGET_S = 0.01, 86_400.0


@dataclass(frozen=True, kw_only=True)
class Budget:
    """What one match may spend: renders, seconds, or both (whichever ends first).

    Attributes
    ----------
    renders : int > 0, optional
        Never render more candidates than this (default :data:`DEFAULT_BUDGET_RENDERS`).
    seconds : float > 0, optional
        Start no batch of renders that would end after this many seconds
        (default :data:`DEFAULT_BUDGET_S`: none).

    Raises
    ------
    InverSynthError
        Neither budget, or one that is not positive.
    """

    renders: int | None = DEFAULT_BUDGET_RENDERS
    seconds: float | None = DEFAULT_BUDGET_S

    def __post_init__(self) -> None:
        check_budget(max_renders=self.renders, time_limit_s=self.seconds)


@dataclass(frozen=True)
class MatchProgress:
    """Where a match stands after a batch of renders.

    Attributes
    ----------
    renders : int
        Sounds rendered so far.
    best_distance_db : float
        dB, the multi-resolution distance of the best so far to the target.
    seconds : float
        Wall time since the match started.
    """

    renders: int
    best_distance_db: float
    seconds: float


# Called after every batch of renders; an exception raised in it cancels the match.
ProgressCallback = Callable[[MatchProgress], None]


class Objective:
    """Render candidates, score them against the target, count and cache, keep the best.

    Parameters
    ----------
    render : callable
        ``values [B, P] -> audio [B, N]``.
    parameter_set : ParameterSet
        The synth's parameters (levels of each).
    distance : MultiResolutionDistance
    target : Target
        ``distance.target(audio)``.
    budget : Budget
        Renders and seconds the objective may spend (the seconds estimated
        from the renders so far).
    batch_size : int > 0
        Candidates rendered per call of ``render``.
    on_progress : callable, optional
        Called with a :class:`MatchProgress` after every batch; what it raises propagates.
    started_s : float, optional
        ``time.monotonic()`` when the match started (the progress's seconds count
        from it); default now.
    """

    def __init__(
        self,
        *,
        render: Render,
        parameter_set: ParameterSet,
        distance: MultiResolutionDistance,
        target: Target,
        budget: Budget,
        batch_size: int = 64,
        on_progress: ProgressCallback | None = None,
        started_s: float | None = None,
    ) -> None:
        self.render = render
        self.parameter_set = parameter_set
        self.distance = distance
        self.target = target
        self.budget = budget  # replaced whole where a search spends it in shares
        self.batch_size = int(batch_size)
        self.renders = 0
        self.best_distance = math.inf
        self.best_values: np.ndarray | None = None  # [P] float64
        self.best_indices: np.ndarray | None = None  # [P] int64, None if off the levels
        self.best_audio: np.ndarray | None = None  # [N] float32, the best candidate's audio
        self._cache: dict[bytes, float] = {}
        self._levels = [np.asarray(p.levels) for p in parameter_set.parameters]
        self._start_s = time.monotonic()
        self._seconds_per_render: float | None = None
        self.on_progress = on_progress
        self._match_start_s = self._start_s if started_s is None else float(started_s)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self._start_s

    def remaining(self) -> int:
        """Renders still allowed (by count, and by time at the measured rate)."""
        max_renders, time_limit_s = self.budget.renders, self.budget.seconds
        left = math.inf if max_renders is None else max_renders - self.renders
        if time_limit_s is not None:
            time_left = time_limit_s - self.seconds
            if time_left <= 0:
                # Whatever the clock, one sound is heard: a search always has an answer.
                return int(min(left, 1)) if self.renders == 0 else 0
            if self._seconds_per_render is None:
                left = min(left, _FIRST_BATCH)
            else:
                left = min(left, math.floor(time_left / self._seconds_per_render))
        return int(min(left, 2**62))

    @property
    def exhausted(self) -> bool:
        return self.remaining() <= 0

    def indices(self, indices: np.ndarray) -> np.ndarray:
        """Distances of candidates given as class indices [B, P]; ``inf`` for those not rendered."""
        idx = np.asarray(indices, dtype=np.int64)
        values = np.empty(idx.shape, dtype=np.float64)
        for j, levels in enumerate(self._levels):
            values[:, j] = levels[idx[:, j]]
        return self._evaluate(values, idx)

    def values(self, values: np.ndarray) -> np.ndarray:
        """Distances of candidates given as parameter values [B, P]; ``inf`` for those not rendered."""
        return self._evaluate(np.asarray(values, dtype=np.float64), None)

    def _evaluate(self, values: np.ndarray, indices: np.ndarray | None) -> np.ndarray:
        out = np.full(values.shape[0], math.inf)
        keys = [row.tobytes() for row in values]
        todo: list[int] = []
        seen: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            if key in self._cache:
                out[i] = self._cache[key]
            elif key not in seen:
                seen[key] = i
                todo.append(i)
        done = 0
        while done < len(todo):
            n = min(self.batch_size, len(todo) - done, self.remaining())
            if n <= 0:
                break
            rows = todo[done : done + n]
            t0 = time.monotonic()
            audio = self.render(values[rows])
            d = self.distance.distance(self.target, audio)
            self._time(time.monotonic() - t0, n)
            self.renders += n
            for row, (i, dist) in enumerate(zip(rows, d, strict=True)):
                self._cache[keys[i]] = float(dist)
                out[i] = float(dist)
                if dist < self.best_distance:
                    self.best_distance = float(dist)
                    self.best_values = values[i].copy()
                    self.best_indices = None if indices is None else indices[i].copy()
                    self.best_audio = np.array(audio[row], dtype=np.float32)
            done += n
            if self.on_progress is not None:
                seconds = time.monotonic() - self._match_start_s
                self.on_progress(MatchProgress(self.renders, self.best_distance, seconds))
        for i, key in enumerate(keys):  # duplicates within the batch
            if not np.isfinite(out[i]) and key in self._cache:
                out[i] = self._cache[key]
        return out

    def _time(self, seconds: float, n: int) -> None:
        per = seconds / n
        if self._seconds_per_render is None:
            self._seconds_per_render = per
        else:  # smoothed, but a slower batch counts at once: overrunning is worse
            self._seconds_per_render = max(per, 0.7 * self._seconds_per_render + 0.3 * per)


def check_budget(*, max_renders: int | None, time_limit_s: float | None) -> None:
    """At least one budget, each positive."""
    if max_renders is None and time_limit_s is None:
        raise InverSynthError("give a budget: max_renders, time_limit_s or both")
    if max_renders is not None and (
        isinstance(max_renders, bool)
        or int(max_renders) != max_renders
        or not 0 < max_renders <= MAX_BUDGET_RENDERS
    ):
        raise InverSynthError(
            f"max_renders must be an integer in [1, {MAX_BUDGET_RENDERS}], got {max_renders!r}"
        )
    if time_limit_s is not None and not (
        isinstance(time_limit_s, (int, float))
        and np.isfinite(time_limit_s)
        and 0 < time_limit_s <= MAX_BUDGET_S
    ):
        raise InverSynthError(
            f"time_limit_s must be in (0, {MAX_BUDGET_S:g}] seconds, got {time_limit_s!r}"
        )
