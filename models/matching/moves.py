"""Search moves for large parameter spaces: steps along ordered levels, and whole parts swapped.

The neighbourhood descent of :mod:`models.matching.search` hears every level of
every parameter at each step: 345 renders for the FM synth, but 9,569 for a
DX7 voice (145 parameters of up to 100 levels), more than a whole budget. Here
the moves are chosen for such spaces:

* :func:`step_options`: an ordered parameter tries steps of 1, 2, 4, ... 32
  classes either way from where it is (the DX7's own integer steps, then
  coarser), plus any classes named for it (the network's likely classes, a
  neighbour's value); an unordered one (the DX7's algorithm, a waveform) tries
  every other choice;
* :func:`stepped_descent`: a block coordinate descent. It hears every move of
  a block of parameters from the current point in one batch, takes the best,
  adds the next best moves of other parameters of the block while they still
  improve, and goes on with the next block (the most uncertain parameters
  first). A sweep over a DX7 voice costs about 1,700 renders and may change
  dozens of parameters, where one full neighbourhood step changes one to three;
* :func:`part_swaps`: replace a whole part of the point (an operator, its
  envelope, the LFO, ...) by that part of a donor (a lookup neighbour, a
  draw from the network): moves no single-parameter step can make.

Every function sees the synth through an :class:`~models.matching.search.Objective`
and stops as soon as its budget is spent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.matching.objective import SAME_SOUND_DB, Objective

__all__ = ["STEPS", "part_swaps", "step_options", "stepped_descent"]

STEPS = (1, 2, 4, 8, 16, 32)  # classes an ordered parameter moves at a time
_MAX_COMBINED = 3  # moves of one block combined per step
_SMALL = 9  # an ordered parameter with this many levels or fewer tries them all


def step_options(
    n_levels: int,
    current: int,
    *,
    ordered: bool,
    extra: np.ndarray | None = None,
    steps: Sequence[int] = STEPS,
) -> np.ndarray:
    """The classes a parameter tries from class ``current``: [k] int64, ``current`` left out.

    Parameters
    ----------
    n_levels : int
    current : int
    ordered : bool
        Unordered parameters, and ordered ones of at most 9 levels, try every class.
    extra : np.ndarray of int, optional
        Classes always tried (the network's likely ones, neighbours' values).
    steps : sequence of int
        Distances in classes an ordered parameter moves, both ways.
    """
    options: np.ndarray
    if not ordered or n_levels <= _SMALL:
        options = np.arange(n_levels)
    else:
        s = np.asarray(steps, dtype=np.int64)
        options = np.concatenate([current - s, current + s])
        options = options[(options >= 0) & (options < n_levels)]
    if extra is not None and len(extra):
        options = np.concatenate([options, np.asarray(extra, dtype=np.int64)])
    options = np.unique(options)
    return options[options != current]


def _block_trials(
    objective: Objective,
    current: np.ndarray,
    block: np.ndarray,
    extra: Sequence[np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every move of the block's parameters from ``current``: trials [T, P] and their owners [T]."""
    ps = objective.parameter_set
    trials, owners = [], []
    for j in block:
        p = ps.parameters[j]
        options = step_options(
            p.n_levels,
            int(current[j]),
            ordered=p.ordered,
            extra=None if extra is None else extra[j],
        )
        rows = np.repeat(current[None, :], options.size, axis=0)
        rows[:, j] = options
        trials.append(rows)
        owners.append(np.full(options.size, j))
    return np.concatenate(trials), np.concatenate(owners)


def stepped_descent(
    objective: Objective,
    start: np.ndarray,
    *,
    order: np.ndarray | None = None,
    extra: Sequence[np.ndarray] | None = None,
    block_size: int = 8,
    max_sweeps: int = 20,
) -> tuple[np.ndarray, float]:
    """Block coordinate descent over :func:`step_options` moves (see the module docstring).

    Parameters
    ----------
    objective : Objective
    start : np.ndarray [P], int
    order : np.ndarray [P], int, optional
        Parameter positions in the order their blocks are visited (default: as declared).
    extra : sequence of P int arrays, optional
        Classes each parameter always tries.
    block_size : int > 0
        Parameters whose moves are heard in one batch.
    max_sweeps : int
        Sweeps over every parameter at most; it stops earlier when a sweep changes nothing.

    Returns
    -------
    indices : np.ndarray [P], int64
    distance : float
    """
    n = len(objective.parameter_set)
    order = np.arange(n) if order is None else np.asarray(order, dtype=np.int64)
    current = np.asarray(start, dtype=np.int64).copy()
    current_d = float(objective.indices(current[None, :])[0])
    for _ in range(max_sweeps):
        improved = False
        for first in range(0, n, block_size):
            if objective.exhausted or current_d <= SAME_SOUND_DB:
                return current, current_d
            trial, owner = _block_trials(
                objective, current, order[first : first + block_size], extra
            )
            d = objective.indices(trial)
            best_of: dict[int, int] = {}  # parameter -> its best improving trial, best first
            for i in np.argsort(d, kind="stable"):
                if not d[i] < current_d:
                    break
                best_of.setdefault(int(owner[i]), int(i))
            if not best_of:
                continue
            moves = list(best_of.items())
            current, current_d = trial[moves[0][1]].copy(), float(d[moves[0][1]])
            improved = True
            for j, i in moves[1:_MAX_COMBINED]:
                if objective.exhausted:
                    break
                combined = current.copy()
                combined[j] = trial[i, j]
                dc = float(objective.indices(combined[None, :])[0])
                if dc < current_d:
                    current, current_d = combined, dc
        if not improved:
            break
    return current, current_d


def part_swaps(
    objective: Objective,
    start: np.ndarray,
    *,
    donors: np.ndarray,
    parts: Sequence[np.ndarray],
    max_rounds: int = 3,
) -> tuple[np.ndarray, float]:
    """Replace whole parts of the point by a donor's, keeping the best, round after round.

    Parameters
    ----------
    objective : Objective
    start : np.ndarray [P], int
    donors : np.ndarray [D, P], int
        Points to take parts from (lookup neighbours, draws from the network).
    parts : sequence of int arrays
        Parameter positions that move together (an operator, an envelope, ...).
    max_rounds : int
        Rounds of every swap at most; it stops after a round that changed nothing.

    Returns
    -------
    indices, distance
        The best point found (the start if nothing beat it).
    """
    current = np.asarray(start, dtype=np.int64).copy()
    current_d = float(objective.indices(current[None, :])[0])
    donors = np.asarray(donors, dtype=np.int64)
    for _ in range(max_rounds):
        if objective.exhausted or not len(donors):
            break
        trials = []
        for part in parts:
            rows = np.repeat(current[None, :], len(donors), axis=0)
            rows[:, part] = donors[:, part]
            trials.append(rows)
        trial = np.concatenate(trials)
        changed = np.any(trial != current[None, :], axis=1)
        if not changed.any():
            break
        trial = trial[changed]
        d = objective.indices(trial)
        best = int(np.argmin(d))
        if not d[best] < current_d:
            break
        current, current_d = trial[best].copy(), float(d[best])
    return current, current_d
