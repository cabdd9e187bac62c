"""Sound matching: the distance, the lookup index, the search and the four matchers."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from core.errors import InverSynthError
from generators.dataset import open_dataset
from generators.fm_generator import FMGenerator
from generators.sine_generator import SineGenerator
from generators.writer import DatasetCreator, DatasetPlan
from models.matching.distance import MultiResolutionDistance, Resolution
from models.matching.lookup import DatasetLookup
from models.matching.matchers import MATCHERS, make_matcher
from models.matching.objective import Budget, Objective
from models.matching.search import SearchPlan, SearchPrior, search

SINE_RATE, SINE_SAMPLES = 8192, 2048


def sine() -> SineGenerator:
    return SineGenerator(sample_rate=SINE_RATE, n_samples=SINE_SAMPLES, n_levels=8)


def fm() -> FMGenerator:
    return FMGenerator(n_samples=4096)  # a quarter second keeps the searches fast


def fm_patch(seed: int) -> np.ndarray:
    """A random FM patch whose four oscillators are all clearly heard (amplitude level >= 5)."""
    patches = FMGenerator().parameter_set.sample_indices(seed=seed, n_examples=64)
    audible = patches[(patches[:, 4:8] >= 5).all(axis=1)]
    return audible[0]


def one_hot_scores(parameter_set, indices: np.ndarray):
    """A stand-in network that is sure of the given classes."""

    def scores(audio: np.ndarray) -> np.ndarray:
        return np.repeat(parameter_set.encode(indices[None, :]), audio.shape[0], axis=0)

    return scores


def make_dataset(path: Path, generator, n_examples: int = 40, seed: int = 3) -> Path:
    creator = DatasetCreator(
        generator,
        path=path,
        plan=DatasetPlan(n_examples=n_examples, seed=seed),
        chunk_size=16,
        progress=False,
    )
    return creator.run(overwrite=True)


# --------------------------------------------------------------------------
# Distance
# --------------------------------------------------------------------------


def test_distance_is_zero_for_the_same_sound_and_grows_with_the_difference() -> None:
    gen = fm()
    patch = fm_patch(1)
    near, far = patch.copy(), patch.copy()
    near[0] = (patch[0] + 1) % 16  # one semitone off
    far[0] = (patch[0] + 8) % 16
    audio = gen.render_indices(np.stack([patch, near, far]))
    distance = MultiResolutionDistance(sample_rate=gen.sample_rate)
    d = distance.distance(distance.target(audio[0]), audio)
    assert d[0] == pytest.approx(0.0, abs=1e-6)
    assert d[1] > 0 and d[2] > 0
    # Each candidate's distance does not depend on the others in its batch.
    alone = [distance.distance(distance.target(audio[0]), audio[i : i + 1])[0] for i in range(3)]
    np.testing.assert_allclose(d, alone, rtol=1e-5, atol=1e-6)


def test_level_invariant_distance_ignores_the_level_and_the_plain_one_does_not() -> None:
    gen = fm()
    audio = gen.render_indices(fm_patch(2)[None, :])[0]
    quieter = 0.1 * audio  # -20 dB
    plain = MultiResolutionDistance(sample_rate=gen.sample_rate)
    invariant = MultiResolutionDistance(
        sample_rate=gen.sample_rate, level_invariant=True, dynamic_range_db=80.0
    )
    assert plain.distance(plain.target(audio), quieter[None, :])[0] > 10.0
    assert invariant.distance(invariant.target(audio), quieter[None, :])[0] < 1.0


def test_distance_refuses_bad_settings_and_mismatched_lengths() -> None:
    with pytest.raises(InverSynthError, match="n_bands"):
        Resolution(n_fft=64, hop_length=32, n_bands=40)
    with pytest.raises(InverSynthError, match="dynamic_range_db"):
        MultiResolutionDistance(sample_rate=8000, dynamic_range_db=0.0)
    distance = MultiResolutionDistance(sample_rate=8000)
    target = distance.target(np.zeros(4096))
    with pytest.raises(InverSynthError, match="length"):
        distance.distance(target, np.zeros((2, 2048)))


# --------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------


def test_search_recovers_a_sine_synth_patch_from_random_starts() -> None:
    gen = sine()
    truth = np.array([5, 2])
    target = gen.render_indices(truth[None, :])[0]
    distance = MultiResolutionDistance(sample_rate=SINE_RATE)
    objective = Objective(
        render=gen.render,
        parameter_set=gen.parameter_set,
        distance=distance,
        target=distance.target(target),
        budget=Budget(renders=60),
    )
    result = search(objective, prior=SearchPrior(), seed=1, plan=SearchPlan(n_random_starts=2))
    np.testing.assert_array_equal(result.indices, truth)
    assert result.distance == pytest.approx(0.0, abs=1e-6)
    assert result.renders <= 60


@pytest.mark.parametrize("changed", [(0,), (5, 20)])
def test_search_recovers_an_fm_patch_reachable_within_its_budget(changed: tuple[int, ...]) -> None:
    gen = FMGenerator()  # the whole second: every parameter is heard
    truth = fm_patch(7)
    start = truth.copy()
    for j in changed:
        start[j] = (truth[j] + 5) % 16
    distance = MultiResolutionDistance(sample_rate=gen.sample_rate)
    objective = Objective(
        render=gen.render,
        parameter_set=gen.parameter_set,
        distance=distance,
        target=distance.target(gen.render_indices(truth[None, :])[0]),
        budget=Budget(renders=800),
    )
    result = search(objective, prior=SearchPrior(starts=start[None, :]), seed=0)
    np.testing.assert_array_equal(result.indices, truth)
    assert result.renders <= 800


def test_objective_never_renders_more_than_its_budget_and_caches() -> None:
    gen = sine()
    distance = MultiResolutionDistance(sample_rate=SINE_RATE)
    calls: list[int] = []

    def render(values: np.ndarray) -> np.ndarray:
        calls.append(values.shape[0])
        return gen.render(values)

    objective = Objective(
        render=render,
        parameter_set=gen.parameter_set,
        distance=distance,
        target=distance.target(gen.render_indices(np.array([[1, 1]]))[0]),
        budget=Budget(renders=5),
        batch_size=3,
    )
    grid = np.array([[i, j] for i in range(3) for j in range(3)])
    d = objective.indices(grid)
    assert sum(calls) == objective.renders == 5 and max(calls) <= 3
    assert np.isfinite(d).sum() == 5 and objective.exhausted
    again = objective.indices(grid[:5])  # heard already: no render
    np.testing.assert_array_equal(again, d[:5])
    assert sum(calls) == 5


# --------------------------------------------------------------------------
# Lookup
# --------------------------------------------------------------------------


def test_lookup_returns_the_examples_own_row_and_keeps_its_index(tmp_path: Path) -> None:
    gen = sine()
    path = make_dataset(tmp_path / "s_data.hdf5", gen)
    lookup = DatasetLookup.open(path, generator=gen)
    assert lookup.built and lookup.path.is_file()
    with open_dataset(path) as ds:
        audio, labels = ds.read(np.arange(ds.n_examples))
    # An example whose patch no other example shares.
    unique = [i for i in range(len(labels)) if (labels == labels[i]).all(axis=1).sum() == 1]
    row = unique[len(unique) // 2]
    nearest = lookup.query(audio[row], k=3)
    assert nearest.rows[0] == row and nearest.distances[0] == pytest.approx(0.0, abs=1e-3)
    np.testing.assert_array_equal(nearest.labels[0], labels[row])
    assert np.all(np.diff(nearest.distances) >= 0)
    assert not DatasetLookup.open(path, generator=gen).built  # the stored index is used


def test_lookup_rebuilds_a_stale_index(tmp_path: Path) -> None:
    gen = sine()
    path = make_dataset(tmp_path / "s_data.hdf5", gen, seed=3)
    first = DatasetLookup.open(path, generator=gen)
    make_dataset(path, gen, seed=4)  # another dataset under the same name
    second = DatasetLookup.open(path, generator=gen)
    assert second.built
    assert not np.array_equal(first.labels, second.labels)


def test_lookup_of_another_synth_is_refused_in_one_line(tmp_path: Path) -> None:
    path = make_dataset(tmp_path / "s_data.hdf5", sine())
    with pytest.raises(InverSynthError, match="'sine' synth") as info:
        DatasetLookup.open(path, generator=fm())
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------
# Matchers
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fm_lookup(tmp_path_factory: pytest.TempPathFactory) -> DatasetLookup:
    gen = fm()
    path = make_dataset(tmp_path_factory.mktemp("fm") / "fm_data.hdf5", gen, n_examples=64)
    return DatasetLookup.open(path, generator=gen)


@pytest.mark.parametrize("method", sorted(MATCHERS))
@pytest.mark.parametrize("budget", [1, 37])
def test_every_matcher_respects_its_budget_and_is_repeatable(
    method: str, budget: int, fm_lookup: DatasetLookup
) -> None:
    gen = fm()
    truth = fm_patch(11)
    target = gen.render_indices(truth[None, :])[0]
    guess = (truth + 3) % 16
    rendered: list[int] = []

    class Counting(FMGenerator):
        def render(self, values: np.ndarray) -> np.ndarray:
            rendered.append(len(values))
            return super().render(values)

    matcher = make_matcher(
        method,
        generator=Counting(n_samples=gen.n_samples),
        scores=one_hot_scores(gen.parameter_set, guess),
        lookup=fm_lookup,
    )
    first = matcher.match(target, max_renders=budget, seed=5)
    assert first.renders == sum(rendered) <= budget
    assert first.method == method and first.audio.shape == target.shape
    assert first.distance <= first.start_distance
    again = matcher.match(target, max_renders=budget, seed=5)
    np.testing.assert_array_equal(first.indices, again.indices)
    assert first.distance == again.distance
    if method in ("network", "hybrid"):
        np.testing.assert_array_equal(first.start_indices, guess)


def test_time_budget_is_kept() -> None:
    gen = fm()
    matcher = make_matcher("search", generator=gen)
    target = gen.render_indices(fm_patch(3)[None, :])[0]
    matcher.match(target, max_renders=2)  # compile and warm up outside the timing
    result = matcher.match(target, time_limit_s=0.4)
    # Only a batch started before the limit may end after it: slack for a loaded machine.
    assert result.seconds < 2 * 0.4
    assert result.renders > 8  # the first timed batch, then as many as fit
    spent = matcher.match(target, time_limit_s=1e-9)  # over before it starts
    assert spent.renders == 1 and spent.audio.shape == target.shape


def test_hybrid_is_never_worse_than_the_network_and_finds_the_sound_near_its_guess() -> None:
    gen = FMGenerator()
    for seed in range(4):
        truth = fm_patch(100 + seed)
        target = gen.render_indices(truth[None, :])[0]
        guess = truth.copy()
        wrong = 3 + 5 * seed  # the network is wrong about one parameter
        guess[wrong] = (truth[wrong] + 7) % 16
        matcher = make_matcher(
            "hybrid", generator=gen, scores=one_hot_scores(gen.parameter_set, guess)
        )
        result = matcher.match(target, max_renders=900, seed=seed)
        assert result.distance <= result.start_distance
        assert (
            result.metrics["log_spectral_distance"] <= result.start_metrics["log_spectral_distance"]
        )
        # The target's own sound (a parameter the sound does not depend on may differ:
        # a sustain level the envelope never reaches before the note-off).
        assert result.distance == pytest.approx(0.0, abs=1e-6)
        assert result.metrics["log_spectral_distance"] < 1e-3


def test_continuous_search_stays_in_range_and_within_budget() -> None:
    gen = sine()
    target = gen.render(np.array([[300.0, 0.5]]))[0]  # between the levels
    matcher = make_matcher("search", generator=gen, continuous=True)
    result = matcher.match(target, max_renders=200, seed=0)
    assert result.renders <= 200
    low = [p.levels[0] for p in gen.parameter_set.parameters]
    high = [p.levels[-1] for p in gen.parameter_set.parameters]
    assert np.all(result.values >= low) and np.all(result.values <= high)
    discrete = make_matcher("search", generator=gen).match(target, max_renders=200, seed=0)
    assert result.distance <= discrete.distance


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "telepathy"}, "unknown matching method 'telepathy'"),
        ({"method": "network"}, "needs the network's scores"),
        ({"method": "lookup"}, "needs a lookup dataset"),
    ],
)
def test_bad_matcher_requests_are_refused_in_one_line(kwargs: dict, match: str) -> None:
    with pytest.raises(InverSynthError, match=match) as info:
        make_matcher(kwargs["method"], generator=sine())
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("budget", "match"),
    [
        ({"max_renders": 0}, r"max_renders must be an integer in \[1, 1000000\], got 0"),
        ({"max_renders": -3}, "got -3"),
        ({"max_renders": 10**9}, "got 1000000000"),  # a budget no match ends
        ({"time_limit_s": 0.0}, r"time_limit_s must be in \(0, 86400\] seconds"),
        ({"time_limit_s": 1e9}, "got 1000000000.0"),
        ({"max_renders": None}, "give a budget"),  # neither: the default is renders
    ],
)
def test_bad_budgets_are_refused_in_one_line(budget: dict, match: str) -> None:
    gen = sine()
    matcher = make_matcher("search", generator=gen)
    with pytest.raises(InverSynthError, match=match) as info:
        matcher.match(gen.render_indices(np.array([[1, 1]]))[0], **budget)
    assert "\n" not in str(info.value)


def test_a_sound_of_the_wrong_length_is_refused() -> None:
    matcher = make_matcher("search", generator=sine())
    with pytest.raises(
        InverSynthError, match=r"shape \[2048\] \(the '\w+' synth's length at \d+ Hz\)"
    ):
        matcher.match(np.zeros(100), max_renders=5)
    with pytest.raises(InverSynthError, match="the sound to match contains NaN"):
        matcher.match(np.full(2048, np.nan), max_renders=5)


# --------------------------------------------------------------------------
# Progress and cancelling
# --------------------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(MATCHERS))
def test_progress_is_reported_after_every_batch_and_can_cancel(method: str) -> None:
    from models.matching.objective import MatchProgress

    gen = fm()
    target = gen.render_indices(fm_patch(5)[None, :])[0]
    lookup_audio = gen.render_indices(gen.parameter_set.sample_indices(seed=1, n_examples=4))
    kwargs = {
        "generator": gen,
        "scores": one_hot_scores(gen.parameter_set, fm_patch(6)),
        "batch_size": 16,
    }
    if MATCHERS[method].needs_lookup:
        kwargs["lookup"] = _in_memory_lookup(gen, lookup_audio)
    matcher = make_matcher(method, **kwargs)
    seen: list[MatchProgress] = []
    result = matcher.match(target, max_renders=50, seed=2, on_progress=seen.append)
    assert seen and seen[-1].renders == result.renders
    assert [p.renders for p in seen] == sorted(p.renders for p in seen)
    assert all(b.renders - a.renders <= 16 for a, b in itertools.pairwise(seen))
    assert seen[-1].best_distance_db == pytest.approx(result.distance)
    assert all(0 <= p.seconds <= result.seconds for p in seen)

    class CancelledError(Exception):
        pass

    calls: list[int] = []

    def cancel(progress: MatchProgress) -> None:
        calls.append(progress.renders)
        raise CancelledError

    with pytest.raises(CancelledError):
        matcher.match(target, max_renders=50, seed=2, on_progress=cancel)
    assert len(calls) == 1  # nothing rendered after the callback said stop


def _in_memory_lookup(gen, audio: np.ndarray) -> DatasetLookup:
    from models.matching.lookup import index_features

    labels = gen.parameter_set.sample_indices(seed=1, n_examples=audio.shape[0])
    return DatasetLookup(
        parameter_set=gen.parameter_set,
        sample_rate=gen.sample_rate,
        features=index_features(audio, sample_rate=gen.sample_rate).astype(np.float16),
        labels=labels.astype(np.int16),
        path=Path("in-memory.index.npz"),
        built=True,
    )


def test_the_default_budget_is_renders_so_a_match_does_not_depend_on_the_clock() -> None:
    from models.matching.objective import DEFAULT_BUDGET_RENDERS, DEFAULT_BUDGET_S

    assert DEFAULT_BUDGET_S is None and DEFAULT_BUDGET_RENDERS > 0
    gen = sine()
    matcher = make_matcher("search", generator=gen)
    target = gen.render_indices(np.array([[3, 5]]))[0]
    result = matcher.match(target, seed=4)
    assert result.budget_renders == DEFAULT_BUDGET_RENDERS and result.budget_s is None
    assert result.seed == 4 and result.to_dict()["budget_s"] is None
