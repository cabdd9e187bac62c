"""The matching methods on a run's evaluated sounds: Table 4, one row per method.

:func:`match_evaluated` matches the first ``n_examples`` sounds a run's
evaluation predicted (``predictions.npz``) with each method of
:data:`~models.matching.matchers.MATCHERS`, and random patches drawn as the
chance row of :mod:`models.evaluation.resynthesis` draws them, and summarizes
every reconstruction metric and the matchers' multi-resolution distance. It
needs no TensorFlow: the network's scores of a sound are those the evaluation
saved. The lookup (``lookup`` and ``hybrid``) is the evaluated dataset without
the evaluated sounds, so that no method finds a sound by having it.

``network`` here is the network's guess alone (one render), as in the rest of
the evaluation; the others spend the budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from core.checks import check_positive_int
from core.errors import InverSynthError
from generators.sound_generator import load_generator
from models.common.run import RunInfo
from models.evaluation.evaluation_folder import Matches, MatchingRecord, Predictions
from models.matching.distance import MultiResolutionDistance
from models.matching.lookup import DatasetLookup
from models.matching.matchers import MATCHERS, make_matcher
from models.matching.objective import DEFAULT_BUDGET_RENDERS, DEFAULT_BUDGET_S
from models.matching.sound_metrics import (
    METRICS,
    MetricSummary,
    compare_audio,
    format_metric,
    metric_heading,
    summarize,
)

__all__ = [
    "CHANCE_ROW",
    "DISTANCE_KEY",
    "MatchingOptions",
    "format_matching_table",
    "match_evaluated",
]

DISTANCE_KEY = "distance_db"
CHANCE_ROW = "random patch"


def check_methods(methods: Sequence[str]) -> tuple[str, ...]:
    """The methods, each known and named once."""
    unknown = [m for m in methods if m not in MATCHERS]
    if unknown or not methods:
        raise InverSynthError(
            f"--methods must name some of {sorted(MATCHERS)}, got {list(methods)!r}"
        )
    return tuple(dict.fromkeys(methods))


@dataclass(frozen=True, kw_only=True)
class MatchingOptions:
    """Which matching methods an evaluation measures, on how many sounds, with what budget.

    Attributes
    ----------
    methods : tuple of str
        Methods of :data:`~models.matching.matchers.MATCHERS`; empty: none.
    n_examples : int > 0
        Sounds matched: the first of the evaluated ones (``--match_examples``).
    max_renders, time_limit_s : int, float (seconds) or None
        Each search's budget per sound: renders, and a time limit, whichever
        ends first (``--budget_renders``, ``--budget_s``).
    seed : int
        The matchers' seed (sound ``i`` is matched with ``seed + i``).
    """

    methods: tuple[str, ...] = ("network",)
    n_examples: int = 50
    max_renders: int | None = DEFAULT_BUDGET_RENDERS
    time_limit_s: float | None = DEFAULT_BUDGET_S
    seed: int = 0


class _Tally:
    """What the matchers found, sound by sound: metrics, cost and class indices."""

    def __init__(self, methods: Sequence[str], n: int, n_parameters: int) -> None:
        self.per: dict[str, dict[str, list[float]]] = {m: {} for m in (*methods, CHANCE_ROW)}
        self.renders: dict[str, list[int]] = {m: [] for m in methods}
        self.seconds: dict[str, list[float]] = {m: [] for m in methods}
        self.found = {m: np.zeros((n, n_parameters), dtype=np.int64) for m in methods}

    def record(self, options: MatchingOptions) -> MatchingRecord:
        return MatchingRecord(
            n_examples=next(iter(self.found.values())).shape[0],
            max_renders=options.max_renders,
            time_limit_s=options.time_limit_s,
            seed=int(options.seed),
            methods={
                m: summarize({k: np.asarray(v) for k, v in self.per[m].items()}) for m in self.per
            },
            renders_mean={m: float(np.mean(v)) for m, v in self.renders.items()},
            seconds_mean={m: float(np.mean(v)) for m, v in self.seconds.items()},
        )


def match_evaluated(
    info: RunInfo,
    dataset_paths: list[str],
    predictions: Predictions,
    *,
    options: MatchingOptions,
    chance_seed: int,
    progress: bool = False,
) -> tuple[MatchingRecord, Matches]:
    """Match the first ``options.n_examples`` evaluated sounds with every method.

    Parameters
    ----------
    info : RunInfo
    dataset_paths : list of str
        The evaluated dataset (its sounds are the targets; the lookup's index).
    predictions : Predictions
        The evaluation's; the network's scores of a sound are its row's.
    options : MatchingOptions
    chance_seed : int
        The random patches' seed, as the reconstruction's chance row draws them.
    progress : bool

    Returns
    -------
    record : MatchingRecord
        ``methods[name]`` per method, and ``methods["random patch"]``.
    matches : Matches
        The class indices each method found.
    """
    from generators.dataset import open_dataset

    methods = check_methods(options.methods)
    check_positive_int(options.n_examples, "--match_examples")
    chosen = predictions.take(slice(0, options.n_examples))
    n = len(chosen)
    chance_indices = info.parameter_set.sample_indices(seed=chance_seed, start=0, n_examples=n)
    tally = _Tally(methods, n, len(info.parameter_set))
    generator = load_generator(info.generator_name, info.generator_config)
    try:
        rate = generator.sample_rate
        distance = MultiResolutionDistance(sample_rate=rate)
        lookup = (
            DatasetLookup.open(dataset_paths, generator=generator, progress=progress).without(
                predictions.example_indices
            )
            if any(m in ("lookup", "hybrid") for m in methods)
            else None
        )
        row = [0]

        def scores(audio: np.ndarray) -> np.ndarray:  # the evaluation's scores of this sound
            return np.repeat(chosen.scores[row[0]][None, :], audio.shape[0], axis=0)

        matchers = {
            m: make_matcher(m, generator=generator, distance=distance, scores=scores, lookup=lookup)
            for m in methods
        }
        with open_dataset(dataset_paths) as dataset:
            for i in tqdm(range(n), unit="sound", desc="matching", disable=not progress):
                row[0] = i
                audio, _ = dataset.read(chosen.example_indices[i : i + 1])
                target = np.asarray(audio[0], dtype=np.float32)
                _match_one(i, target, matchers, tally, options)
                chance_audio = generator.render_indices(chance_indices[i : i + 1])[0]
                chance_metrics = compare_audio(target, chance_audio, sample_rate=rate)
                chance_d = distance.distance(distance.target(target), chance_audio[None, :])[0]
                _append(tally.per[CHANCE_ROW], {**chance_metrics, DISTANCE_KEY: float(chance_d)})
    finally:
        generator.close()
    return tally.record(options), Matches(
        example_indices=chosen.example_indices.copy(), indices=tally.found
    )


def _match_one(
    i: int, target: np.ndarray, matchers: dict[str, Any], tally: _Tally, options: MatchingOptions
) -> None:
    """Sound ``i`` matched by every method: the network's guess once, the others their budget."""
    for m, matcher in matchers.items():
        budget: dict[str, Any] = (
            {"max_renders": 1}
            if m == "network"
            else {"max_renders": options.max_renders, "time_limit_s": options.time_limit_s}
        )
        result = matcher.match(target, seed=options.seed + i, **budget)
        _append(tally.per[m], {**result.metrics, DISTANCE_KEY: result.distance})
        tally.renders[m].append(result.renders)
        tally.seconds[m].append(result.seconds)
        tally.found[m][i] = result.indices


def _append(into: dict[str, list[float]], values: dict[str, float]) -> None:
    for key, value in values.items():
        into.setdefault(key, []).append(float(value))


def _heading(key: str) -> str:
    return "MR dist (dB)" if key == DISTANCE_KEY else metric_heading(key)


def format_matching_table(record: MatchingRecord, *, split: str | None = None) -> str:
    """Table 4 with one row per method: mean and median of each metric, and the cost."""
    first = next(iter(record.methods.values()))
    keys = [k for k in (*METRICS, DISTANCE_KEY) if k in first]
    heads = [_heading(k) for k in keys]
    widths = [max(len(h), 8) for h in heads]
    sounds = f"{split} sounds" if split not in (None, "?") else "sounds"
    budget = ", ".join(
        part
        for part in (
            f"{record.max_renders} renders" if record.max_renders else "",
            f"{record.time_limit_s:g} s" if record.time_limit_s else "",
        )
        if part
    )
    lines = [
        f"Matching {record.n_examples} {sounds}, at most {budget} per sound "
        "(rho: higher is better; others: lower is better)"
    ]
    label_width = max(len(f"{label} median") for label in record.methods) + 1
    lines.append(
        " " * label_width
        + "".join(f"{h:>{w + 2}}" for h, w in zip(heads, widths, strict=True))
        + "  renders  seconds"
    )
    for label, block in record.methods.items():
        for field_name in ("mean", "median"):
            cost = ""
            if field_name == "mean" and label in record.renders_mean:
                cost = f"{record.renders_mean[label]:>9.0f}{record.seconds_mean[label]:>9.2f}"
            lines.append(
                f"{label + ' ' + field_name:<{label_width}}"
                + "".join(
                    f"{_cell(block.get(k), field_name, k):>{w + 2}}"
                    for k, w in zip(keys, widths, strict=True)
                )
                + cost
            )
    return "\n".join(lines)


def _cell(stats: MetricSummary | None, field: str, key: str) -> str:
    return format_metric(key, None if stats is None else stats.stat(field))
