"""The settings of a match, declared once: :class:`MatchSettings`.

How a sound is matched (the method, its budget, seed, lookup, continuous
search and rendering workers) and what is written of it (the network's top
classes, the WAVs' rate, the spectrograms). ``python -m models.predict``
builds one from its options, the web page from its form, and a library caller
by hand; :func:`~models.matching.match_sounds.run_matcher` and
:func:`~models.matching.match_sounds.match_sound_file` read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InverSynthError
from models.matching.match_output import check_output_rate
from models.matching.matchers import DEFAULT_METHOD, MATCHERS
from models.matching.objective import Budget

__all__ = ["DEFAULT_SETTINGS", "MatchSettings"]


@dataclass(frozen=True, kw_only=True)
class MatchSettings:
    """How a sound is matched and what is written of it; checked when made.

    Attributes
    ----------
    method : str
        A matcher of :data:`~models.matching.matchers.MATCHERS` (default ``hybrid``).
    seed : int
        The matcher's seed: the same seed and renders give the same match.
    budget : Budget
        Renders per sound, and an optional time limit in seconds.
    lookup_dataset : path or sequence of paths, optional
        A dataset of the run's synth for ``lookup`` and ``hybrid`` (default:
        the run's own, see :func:`~models.matching.match_sounds.open_lookup`).
    continuous : bool
        Let the search end between the levels.
    workers : int > 0
        Threads that score a batch of candidates (give the synth as many:
        ``run.make_generator(workers=N)``).
    top_k : int > 0
        The network's most likely classes recorded per parameter.
    output_sample_rate : None, "model", "input" or int
        Rate of the WAVs written, Hz (default the model's).
    plot : bool
        Draw the spectrograms (``{stem}.png``).

    Raises
    ------
    InverSynthError
        An unknown method, a seed that is not an integer, a bad budget, count or rate.
    """

    method: str = DEFAULT_METHOD
    seed: int = 0
    budget: Budget = field(default_factory=Budget)
    lookup_dataset: str | Path | Sequence[str | Path] | None = None
    continuous: bool = False
    workers: int = 1
    top_k: int = 3
    output_sample_rate: int | str | None = None
    plot: bool = True

    def __post_init__(self) -> None:
        if self.method not in MATCHERS:
            raise InverSynthError(
                f"unknown matching method {self.method!r}; known: {sorted(MATCHERS)}"
            )
        if isinstance(self.seed, bool) or int(self.seed) != self.seed:
            raise InverSynthError(f"seed must be an integer, got {self.seed!r}")
        for name in ("workers", "top_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value <= 0:
                raise InverSynthError(f"{name} must be a positive integer, got {value!r}")
        check_output_rate(self.output_sample_rate)  # before any match, not after it


DEFAULT_SETTINGS = MatchSettings()  # the command's defaults: hybrid, seed 0, the default budget
