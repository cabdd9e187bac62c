"""Search a synth's parameters for the settings that sound closest to a target.

Everything here hears candidates through an
:class:`~models.matching.objective.Objective`: it renders them in batches,
counts the renders against the budget, caches what it has heard and keeps the
best so far, so a search can be cut off anywhere and still return its best.

The search (:func:`search`) spends the budget of the objective it is given; what
is known before listening (starts, candidates, the parameters' priority) is its
:class:`SearchPrior`, how it spends the budget its :class:`SearchPlan`. Over the
class indices the synth was trained with:

1. *starts*: every start given (the network's guess, a lookup's neighbours,
   random patches) is rendered, the first one first; the best few distinct
   ones are kept;
2. *narrow descent*: a neighbourhood descent (below) from each kept start in
   which each parameter only tries its *candidates* (the network's likely
   classes, the neighbours' classes): a few renders a step;
3. *full descent*: the neighbourhood descent over every level of every
   parameter, from the best point so far; optionally moves of two parameters
   at once over every pair of their levels (:func:`pair_moves`);
4. *kicks* (iterated local search) until the budget is spent: change one to
   three parameters of the best point at random and descend again.

The neighbourhood descent (:func:`neighbourhood_descent`) hears every
one-parameter change of the current point in one batch (345 renders for the
FM synth), takes the best, and adds the best change of up to two other
parameters while the combination keeps improving. Plain coordinate descent
(:func:`coordinate_descent`, first improvement in a random order) is kept for
comparison: from FM patches with one, two or three random parameters wrong
(1,500 renders, 20 patches each), it finds the patch 8, 4 and 2 times, the
neighbourhood descent 20, 17 and 9 times; combining at most three changes a
step instead of every improving one raises the four-wrong case from 8 to 14
in 20. On a synth an early change of one parameter often masks the error of
another (a quieter oscillator hides a wrong pitch), and a
first-improvement descent settles there.

With ``SearchPlan(continuous=True)`` a share of the budget goes last to CMA-ES (the
``cma`` package) over continuous values between the levels, started at the
best discrete point: the FM synth and plugins play any value.

The same seed and budget of renders give the same result; a time budget
depends on the machine. The objective reports after every batch of renders to
an optional callback (``on_progress``); an exception raised there ends the
search and propagates (a caller's way to cancel a match).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import InverSynthError
from generators.parameters import ParameterSet
from models.matching.moves import part_swaps, step_options, stepped_descent
from models.matching.objective import SAME_SOUND_DB, Budget, Objective

__all__ = [
    "LARGE_SPACE_LEVELS",
    "SearchPlan",
    "SearchPrior",
    "SearchResult",
    "coordinate_descent",
    "neighbourhood_descent",
    "pair_moves",
    "search",
]

_MAX_COMBINED = 3  # one-parameter moves combined per step (more leads into other basins)
_MAX_IDLE_KICKS = 50
# A space whose every level is more renders than this is searched by steps and parts
# (models.matching.moves): a DX7 voice has 9,569 levels, the FM synth 368.
LARGE_SPACE_LEVELS = 2000
_DONORS = 16  # starts whose parts a large space's best start tries


# --------------------------------------------------------------------------
# Moves
# --------------------------------------------------------------------------


def coordinate_descent(
    objective: Objective,
    start: np.ndarray,
    *,
    rng: np.random.Generator,
    candidates: Sequence[np.ndarray] | None = None,
    max_sweeps: int = 100,
) -> tuple[np.ndarray, float]:
    """Improve one parameter at a time until a whole sweep changes nothing.

    Parameters
    ----------
    objective : Objective
    start : np.ndarray [P], int
        Class indices to start from.
    rng : np.random.Generator
        Orders the parameters of each sweep.
    candidates : sequence of P int arrays, optional
        Classes each parameter may take; default every level.
    max_sweeps : int

    Returns
    -------
    indices : np.ndarray [P], int64
        Where the descent stopped (a local optimum, or where the budget ran out).
    distance : float
    """
    n_levels = objective.parameter_set.n_levels
    current = np.asarray(start, dtype=np.int64).copy()
    current_d = float(objective.indices(current[None, :])[0])
    options = [
        np.arange(n) if candidates is None else np.unique(candidates[j])
        for j, n in enumerate(n_levels)
    ]
    for _ in range(max_sweeps):
        improved = False
        for j in rng.permutation(len(options)):
            levels = options[j][options[j] != current[j]]
            if levels.size == 0:
                continue
            trial = np.repeat(current[None, :], levels.size, axis=0)
            trial[:, j] = levels
            d = objective.indices(trial)
            best = int(np.argmin(d))
            if d[best] < current_d:
                current, current_d = trial[best], float(d[best])
                improved = True
            if objective.exhausted:
                return current, current_d
        if not improved:
            break
    return current, current_d


def neighbourhood_descent(
    objective: Objective,
    start: np.ndarray,
    *,
    candidates: Sequence[np.ndarray] | None = None,
    max_steps: int = 100,
) -> tuple[np.ndarray, float]:
    """Best-improvement descent: hear every one-parameter change, then combine the good ones.

    First-improvement coordinate descent changes parameters in whatever order it
    visits them; on a synth, an early change to one parameter often masks the
    error of another (a louder oscillator hides a wrong pitch), and the descent
    settles there. Here every change of one parameter is heard from the same
    point; the best is taken, then the best change of up to two other
    parameters, in order of how much each helped alone, each kept if the
    combination still improves (one render each). Stops at a point no single
    change improves, or at the target itself.

    Parameters
    ----------
    objective : Objective
    start : np.ndarray [P], int
    candidates : sequence of P int arrays, optional
        Classes each parameter may take; default every level.
    max_steps : int

    Returns
    -------
    indices : np.ndarray [P], int64
    distance : float
    """
    n_levels = objective.parameter_set.n_levels
    options = [
        np.arange(n) if candidates is None else np.unique(candidates[j])
        for j, n in enumerate(n_levels)
    ]
    current = np.asarray(start, dtype=np.int64).copy()
    current_d = float(objective.indices(current[None, :])[0])
    for _ in range(max_steps):
        if current_d <= SAME_SOUND_DB:
            break
        trials, owners = [], []
        for j, levels in enumerate(options):
            levels = levels[levels != current[j]]
            block = np.repeat(current[None, :], levels.size, axis=0)
            block[:, j] = levels
            trials.append(block)
            owners.append(np.full(levels.size, j))
        trial = np.concatenate(trials)
        owner = np.concatenate(owners)
        d = objective.indices(trial)
        # Best change of each parameter, most helpful first.
        best_of: dict[int, int] = {}
        for i in np.argsort(d, kind="stable"):
            if d[i] >= current_d or not np.isfinite(d[i]):
                break
            best_of.setdefault(int(owner[i]), int(i))
        if not best_of:
            break
        moves = list(best_of.items())
        i0 = moves[0][1]
        current, current_d = trial[i0].copy(), float(d[i0])
        for j, i in moves[1:_MAX_COMBINED]:
            if objective.exhausted:
                break
            combined = current.copy()
            combined[j] = trial[i, j]
            dc = float(objective.indices(combined[None, :])[0])
            if dc < current_d:
                current, current_d = combined, dc
        if objective.exhausted:
            break
    return current, current_d


def pair_moves(
    objective: Objective,
    start: np.ndarray,
    *,
    pairs: Sequence[tuple[int, int]],
    candidates: Sequence[np.ndarray],
) -> tuple[np.ndarray, float]:
    """Try changing two parameters at once: every combination of their candidates.

    Parameters
    ----------
    objective : Objective
    start : np.ndarray [P], int
    pairs : sequence of (i, j)
        Parameter positions changed together.
    candidates : sequence of P int arrays
        Classes each parameter may take in these moves.

    Returns
    -------
    indices, distance
        The best point seen (the start if nothing beat it).
    """
    current = np.asarray(start, dtype=np.int64).copy()
    current_d = float(objective.indices(current[None, :])[0])
    for i, j in pairs:
        a, b = np.meshgrid(candidates[i], candidates[j], indexing="ij")
        trial = np.repeat(current[None, :], a.size, axis=0)
        trial[:, i], trial[:, j] = a.ravel(), b.ravel()
        keep = (trial[:, i] != current[i]) & (trial[:, j] != current[j])
        if not keep.any():
            continue
        trial = trial[keep]
        d = objective.indices(trial)
        best = int(np.argmin(d))
        if d[best] < current_d:
            current, current_d = trial[best], float(d[best])
        if objective.exhausted:
            break
    return current, current_d


# --------------------------------------------------------------------------
# The search
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchResult:
    """The best point a search found.

    Attributes
    ----------
    values : np.ndarray [P], float64
    indices : np.ndarray [P], int64
        The class indices (the nearest level of each value if continuous).
    distance : float
        dB, :class:`~models.matching.distance.MultiResolutionDistance` to the target.
    audio : np.ndarray [N], float32
        The best candidate as rendered.
    renders : int
        Candidates rendered.
    seconds : float
    start_distance : float
        Distance of the first start (rendered first).
    start_audio : np.ndarray [N], float32
        The first start as rendered.
    """

    values: np.ndarray
    indices: np.ndarray
    distance: float
    audio: np.ndarray
    renders: int
    seconds: float
    start_distance: float
    start_audio: np.ndarray


@dataclass(frozen=True, kw_only=True)
class SearchPrior:
    """What is known of a sound before listening: where to start and what to try first.

    Attributes
    ----------
    starts : np.ndarray [S, P], int, optional
        Class indices to start from. The first is always rendered first, so
        the result is never farther from the target than ``starts[0]``.
    candidates : sequence of P int arrays, optional
        The classes each parameter tries in the narrow descent (e.g. the
        network's top classes); without them the narrow descent is skipped.
    priority : np.ndarray [P], int, optional
        Parameter positions, the most uncertain first: the order in which a
        large space's stepped descent visits them (default as declared).
    """

    starts: np.ndarray | None = None
    candidates: Sequence[np.ndarray] | None = None
    priority: np.ndarray | None = None


@dataclass(frozen=True, kw_only=True)
class SearchPlan:
    """How a search spends its budget.

    Attributes
    ----------
    n_random_starts : int >= 0
        Random patches added to the starts.
    n_descents : int > 0
        Best distinct starts that get a narrow descent.
    pairs : sequence of (i, j)
        Parameter pairs whose every combination of levels is tried once the
        full descent has settled (:func:`pair_moves`; 225 renders a pair for
        16 levels), e.g. a pitch and a vibrato depth that mask each other.
    continuous : bool
        Spend ``continuous_share`` of the budget last on CMA-ES between the levels.
    continuous_share : float in (0, 1)
    """

    n_random_starts: int = 0
    n_descents: int = 3
    pairs: Sequence[tuple[int, int]] = ()
    continuous: bool = False
    continuous_share: float = 0.3

    def __post_init__(self) -> None:
        if not 0.0 < self.continuous_share < 1.0:
            raise InverSynthError(
                f"continuous_share must be in (0, 1), got {self.continuous_share!r}"
            )


def search(
    objective: Objective,
    *,
    prior: SearchPrior,
    seed: int = 0,
    plan: SearchPlan = SearchPlan(),
) -> SearchResult:
    """Search the synth's settings closest to the objective's target (see the module docstring).

    Parameters
    ----------
    objective : Objective
        The synth, the target and the budget; fresh (nothing heard yet).
    prior : SearchPrior
        Starts, each parameter's candidates, the parameters' priority.
    seed : int
        Orders, random starts and kicks.
    plan : SearchPlan
        Random starts, descents, pair moves, the continuous share.

    Returns
    -------
    SearchResult
    """
    rng = np.random.default_rng(seed)
    parameter_set = objective.parameter_set
    all_starts = _starts(parameter_set, prior.starts, plan.n_random_starts, rng)
    budget = objective.budget
    if plan.continuous:  # the discrete phases get their share; CMA-ES the rest
        objective.budget = _share(budget, 1.0 - plan.continuous_share)
    start_distance = float(objective.indices(all_starts[:1])[0])  # heard first, whatever the budget
    assert objective.best_audio is not None
    start_audio = objective.best_audio
    if int(parameter_set.n_outputs) > LARGE_SPACE_LEVELS:
        _large_space_search(
            objective, all_starts, rng=rng, candidates=prior.candidates, priority=prior.priority
        )
    else:
        _discrete_search(
            objective, all_starts, rng=rng, candidates=prior.candidates,
            n_descents=plan.n_descents, pairs=plan.pairs,
        )  # fmt: skip
    if plan.continuous:
        objective.budget = budget
        _continuous_search(objective, rng=rng)
    assert objective.best_values is not None and objective.best_audio is not None
    return SearchResult(
        values=objective.best_values.copy(),
        indices=_best_indices(objective),
        distance=objective.best_distance,
        audio=objective.best_audio,
        renders=objective.renders,
        seconds=objective.seconds,
        start_distance=start_distance,
        start_audio=start_audio,
    )


def _starts(
    parameter_set: ParameterSet,
    starts: np.ndarray | None,
    n_random_starts: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """The starts given, then ``n_random_starts`` random patches: [S, P] int."""
    rows = []
    if starts is not None and len(starts):
        rows.append(parameter_set.check_indices(np.asarray(starts)))
    if n_random_starts > 0:
        shape = (int(n_random_starts), len(parameter_set))
        rows.append(rng.integers(0, parameter_set.n_levels, size=shape))
    if not rows:
        raise InverSynthError("search needs starts or n_random_starts > 0")
    return np.concatenate(rows, axis=0)


def _share(budget: Budget, share: float) -> Budget:
    """``share`` of a budget (at least one render)."""
    renders = None if budget.renders is None else max(1, round(budget.renders * share))
    seconds = None if budget.seconds is None else budget.seconds * share
    return Budget(renders=renders, seconds=seconds)


def _discrete_search(
    objective: Objective,
    starts: np.ndarray,
    *,
    rng: np.random.Generator,
    candidates: Sequence[np.ndarray] | None,
    n_descents: int,
    pairs: Sequence[tuple[int, int]],
) -> None:
    d = objective.indices(starts)
    kept: list[np.ndarray] = []
    for i in np.argsort(d, kind="stable"):
        if np.isfinite(d[i]) and not any(np.array_equal(starts[i], k) for k in kept):
            kept.append(starts[i])
        if len(kept) >= n_descents:
            break
    if candidates is not None:
        for start in kept:
            if objective.exhausted:
                return
            neighbourhood_descent(objective, start, candidates=candidates)
    if not objective.exhausted:
        neighbourhood_descent(objective, _best_indices(objective))
    if pairs and not objective.exhausted:
        every_level = [np.arange(n) for n in objective.parameter_set.n_levels]
        pair_moves(objective, _best_indices(objective), pairs=pairs, candidates=every_level)
        neighbourhood_descent(objective, _best_indices(objective))
    _kicks(objective, rng=rng)


def parameter_parts(parameter_set: ParameterSet) -> list[np.ndarray]:
    """The parts a search swaps whole: the positions of each reporting group of 2 or more."""
    groups: dict[str, list[int]] = {}
    for j, p in enumerate(parameter_set.parameters):
        if p.group:
            groups.setdefault(p.group, []).append(j)
    return [np.array(cols, dtype=np.int64) for cols in groups.values() if len(cols) > 1]


def _large_space_search(
    objective: Objective,
    starts: np.ndarray,
    *,
    rng: np.random.Generator,
    candidates: Sequence[np.ndarray] | None,
    priority: np.ndarray | None,
) -> None:
    """A space too large to hear every level of (a DX7 voice): parts, steps, kicks.

    The starts are heard; the best takes whole parts (an operator, the LFO)
    of the others (:func:`~models.matching.moves.part_swaps`); a stepped block
    descent follows (:func:`~models.matching.moves.stepped_descent`), the
    parameters in ``priority`` order, each also trying its ``candidates``; kicks
    change one to three parameters by steps and descend again until the budget
    is spent.
    """
    d = objective.indices(starts)
    ranked = starts[np.argsort(d, kind="stable")]
    point, _ = part_swaps(  # the best start takes parts of the next best
        objective,
        ranked[0],
        donors=ranked[1:_DONORS],
        parts=parameter_parts(objective.parameter_set),
    )
    stepped_descent(objective, point, order=priority, extra=candidates)
    ps = objective.parameter_set
    idle = 0
    while not objective.exhausted and idle < _MAX_IDLE_KICKS:
        if objective.best_distance <= SAME_SOUND_DB:
            return
        renders = objective.renders
        point = _best_indices(objective)
        for j in rng.choice(len(ps), size=int(rng.integers(1, 4)), replace=False):
            p = ps.parameters[j]
            options = step_options(p.n_levels, int(point[j]), ordered=p.ordered)
            point[j] = int(rng.choice(options))
        stepped_descent(objective, point, order=priority, extra=candidates, max_sweeps=1)
        idle = idle + 1 if objective.renders == renders else 0


def _best_indices(objective: Objective) -> np.ndarray:
    """The best point's class indices (the nearest levels if it is off them)."""
    if objective.best_indices is not None:
        return objective.best_indices.copy()
    assert objective.best_values is not None
    return objective.parameter_set.nearest_indices(objective.best_values[None, :])[0]


def _kicks(objective: Objective, *, rng: np.random.Generator, max_changed: int = 3) -> None:
    """Iterated local search: change 1-3 parameters of the best point, descend, repeat."""
    n_levels = objective.parameter_set.n_levels
    idle = 0  # kicks in a row that rendered nothing new (a small space, all heard)
    while not objective.exhausted and idle < _MAX_IDLE_KICKS:
        renders = objective.renders
        point = _best_indices(objective)
        n_changed = int(rng.integers(1, max_changed + 1))
        for j in rng.choice(len(n_levels), size=min(n_changed, len(n_levels)), replace=False):
            point[j] = (point[j] + rng.integers(1, n_levels[j])) % n_levels[j]
        neighbourhood_descent(objective, point)
        if objective.best_distance <= SAME_SOUND_DB:
            return  # the target itself: nothing left to find
        idle = idle + 1 if objective.renders == renders else 0


def _continuous_search(objective: Objective, *, rng: np.random.Generator) -> None:
    """CMA-ES over fractional class indices, decoded by linear interpolation between levels.

    Fractional index ``x`` of a parameter plays ``levels[floor(x)]`` moved
    ``frac(x)`` of the way to the next level, so the search moves in steps
    the synth was trained with, and between them.
    """
    import cma  # type: ignore[import-untyped]  # no type information

    n_levels = objective.parameter_set.n_levels
    levels = [np.asarray(p.levels) for p in objective.parameter_set.parameters]
    top = (n_levels - 1).astype(np.float64)

    def decode(x: np.ndarray) -> np.ndarray:  # [B, P] fractional indices -> values
        x = np.clip(x, 0.0, top)
        return np.stack(
            [np.interp(x[:, j], np.arange(n), levels[j]) for j, n in enumerate(n_levels)], axis=1
        )

    options = {
        "bounds": [[0.0] * len(n_levels), top.tolist()],
        "seed": int(rng.integers(1, 2**31 - 1)),
        "verbose": -9,
    }
    start = _best_indices(objective).astype(np.float64)
    es = cma.CMAEvolutionStrategy(start.tolist(), 0.3, options)
    while not objective.exhausted and not es.stop():
        population = np.asarray(es.ask())
        d = objective.values(decode(population))
        if not np.all(np.isfinite(d)):
            break  # the budget ended inside this generation
        es.tell(list(population), d.tolist())
