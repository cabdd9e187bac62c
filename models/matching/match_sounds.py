"""A trained run's matcher: the network's scores, the run's synth and dataset behind one matcher.

:func:`run_matcher` builds the matcher of a method (:data:`~models.matching.matchers.MATCHERS`)
for a run: the network's scores are the run's (``Run.predict_scores``), the
lookup dataset is ``lookup_dataset`` or the run's own dataset when it still
exists (its index is built once, stored beside it). :func:`match_prediction`
refines a :class:`~models.matching.prediction.Prediction` with it, and
:func:`write_patch` saves the match as a preset the synth loads (``.fxp`` for a
plugin, ``.syx`` for Dexed).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from generators.errors import InverSynthError
from models.matching.lookup import DatasetLookup
from models.matching.matchers import MATCHERS, Matcher, MatchResult, make_matcher
from models.matching.prediction import Prediction

if TYPE_CHECKING:
    from models.common.run import Run

__all__ = [
    "DEFAULT_BUDGET_RENDERS",
    "DEFAULT_BUDGET_S",
    "match_prediction",
    "open_lookup",
    "run_matcher",
]

# The matchers' benchmark budget (benchmarks/matching.py): whichever ends first.
DEFAULT_BUDGET_RENDERS = 2000
DEFAULT_BUDGET_S = 2.0


def open_lookup(
    run: Run,
    generator: Any,
    *,
    method: str,
    lookup_dataset: str | Path | Sequence[str | Path] | None = None,
    exclude_rows: np.ndarray | None = None,
) -> DatasetLookup | None:
    """The lookup a method uses: ``lookup_dataset``, else the run's own dataset if it exists.

    ``network`` and ``search`` use none. ``hybrid`` goes without when neither is
    given; ``lookup`` cannot (:class:`InverSynthError`). ``exclude_rows`` are
    left out (the dataset's own sounds being matched).
    """
    if not MATCHERS[method].needs_lookup and method != "hybrid":
        return None
    source: Any = lookup_dataset
    if source is None:
        paths = run.dataset_paths
        source = paths if paths and all(Path(p).is_file() for p in paths) else None
    if source is None:
        if MATCHERS[method].needs_lookup:
            raise InverSynthError(
                f"the {method!r} method needs a dataset of the {run.generator_name!r} synth: "
                "the run's own dataset is gone; give --lookup_dataset FILE"
            )
        return None
    lookup = DatasetLookup.open(source, generator=generator, progress=False)
    return lookup if exclude_rows is None else lookup.without(exclude_rows)


def run_matcher(
    run: Run,
    *,
    method: str,
    generator: Any,
    lookup_dataset: str | Path | Sequence[str | Path] | None = None,
    continuous: bool = False,
    exclude_rows: np.ndarray | None = None,
) -> Matcher:
    """The matcher of ``method`` for ``run``, playing ``generator`` (``run.make_generator()``).

    Raises
    ------
    InverSynthError
        Unknown method, a lookup dataset of another synth, or ``lookup`` without a dataset.
    """
    if method not in MATCHERS:
        raise InverSynthError(f"unknown matching method {method!r}; known: {sorted(MATCHERS)}")
    lookup = open_lookup(
        run, generator, method=method, lookup_dataset=lookup_dataset, exclude_rows=exclude_rows
    )
    return make_matcher(
        method,
        generator=generator,
        scores=run.predict_scores,
        lookup=lookup,
        continuous=continuous,
    )


def match_prediction(
    prediction: Prediction,
    matcher: Matcher,
    *,
    max_renders: int | None = DEFAULT_BUDGET_RENDERS,
    time_limit_s: float | None = DEFAULT_BUDGET_S,
    seed: int = 0,
) -> MatchResult:
    """Match the sound of ``prediction`` and keep the result in ``prediction.match``.

    The prediction's own ``resynthesis`` and ``metrics`` stay the network's guess.
    """
    result = matcher.match(
        prediction.input.audio, max_renders=max_renders, time_limit_s=time_limit_s, seed=seed
    )
    prediction.match = result
    return result
