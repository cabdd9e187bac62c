"""What a matcher found for one sound: :class:`MatchResult`, and the lookup it used.

Kept apart from the matchers (:mod:`models.matching.matchers`) so that what reads
a match (its record, the files written, the report) needs no matcher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["LookupRecord", "MatchResult"]


@dataclass(frozen=True)
class LookupRecord:
    """The lookup a matcher used, as its record says.

    Attributes
    ----------
    dataset : str
        The dataset's file(s), or what the examples were rendered from.
    n_examples : int
        Examples the lookup holds.
    index : str
        Its index file.
    rendered : bool
        Rendered from the synth rather than read from a dataset file.
    """

    dataset: str
    n_examples: int
    index: str
    rendered: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "n_examples": int(self.n_examples),
            "index": self.index,
            "rendered": bool(self.rendered),
        }


@dataclass(frozen=True)
class MatchResult:
    """A match of one sound.

    Attributes
    ----------
    method : str
        The matcher's name.
    values : np.ndarray [P], float64
        Parameter values to play.
    indices : np.ndarray [P], int64
        Their class indices (the nearest level of each, if continuous).
    distance : float
        dB, the multi-resolution distance of the match to the sound.
    audio : np.ndarray [N], float32
        The match, rendered.
    renders : int
        Sounds rendered to find it.
    seconds : float
        Wall time of the match.
    metrics : dict of str -> float
        Reconstruction metrics of the match (``compare_audio``).
    start_indices : np.ndarray [P], int64
        The method's first guess (the network's for ``network`` and ``hybrid``).
    start_distance : float
    start_metrics : dict of str -> float
        Reconstruction metrics of the first guess.
    seed : int
        The matcher's seed.
    budget_renders : int or None
        The render budget asked for.
    budget_s : float or None
        The time limit asked for, seconds (None: none).
    lookup : LookupRecord or None
        The lookup the method used (None: it used none).
    notes : tuple of str
        What the method ran without (``"hybrid without a lookup: ..."``).
    """

    method: str
    values: np.ndarray
    indices: np.ndarray
    distance: float
    audio: np.ndarray
    renders: int
    seconds: float
    metrics: dict[str, float]
    start_indices: np.ndarray
    start_distance: float
    start_metrics: dict[str, float]
    seed: int = 0
    budget_renders: int | None = None
    budget_s: float | None = None
    lookup: LookupRecord | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (no audio)."""
        return {
            "method": self.method,
            "values": [float(v) for v in self.values],
            "indices": [int(i) for i in self.indices],
            "distance_db": float(self.distance),
            "renders": int(self.renders),
            "seconds": float(self.seconds),
            "metrics": {k: float(v) for k, v in self.metrics.items()},
            "start_indices": [int(i) for i in self.start_indices],
            "start_distance_db": float(self.start_distance),
            "start_metrics": {k: float(v) for k, v in self.start_metrics.items()},
            "seed": int(self.seed),
            "budget_renders": self.budget_renders,
            "budget_s": self.budget_s,
            "lookup": None if self.lookup is None else self.lookup.to_dict(),
            "notes": list(self.notes),
        }
