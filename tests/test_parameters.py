"""Parameter sets: sampling, values, one-hot encoding and JSON, for arbitrary inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InverSynthError
from generators.parameters import Parameter, ParameterSet, example_uniforms

level_counts = st.lists(st.integers(min_value=2, max_value=20), min_size=1, max_size=8)


def make_set(counts: list[int]) -> ParameterSet:
    return ParameterSet(
        Parameter.linear(f"p{i}", low=-1.5 * i, high=3.0 + i, n_levels=n)
        for i, n in enumerate(counts)
    )


@st.composite
def set_and_indices(draw: st.DrawFn) -> tuple[ParameterSet, np.ndarray]:
    counts = draw(level_counts)
    batch = draw(st.integers(min_value=1, max_value=10))
    rows = [[draw(st.integers(0, n - 1)) for n in counts] for _ in range(batch)]
    return make_set(counts), np.array(rows, dtype=np.int64)


@given(set_and_indices())
def test_encode_then_decode_returns_the_indices(case: tuple[ParameterSet, np.ndarray]) -> None:
    pset, idx = case
    one_hot = pset.encode(idx)
    assert one_hot.shape == (idx.shape[0], sum(p.n_levels for p in pset.parameters))
    assert np.all(one_hot.sum(axis=1) == pset.n_parameters)
    np.testing.assert_array_equal(pset.decode(one_hot), idx)


@given(set_and_indices(), st.integers(0, 2**31))
def test_decode_takes_the_argmax_within_each_parameter(
    case: tuple[ParameterSet, np.ndarray], seed: int
) -> None:
    pset, idx = case
    rng = np.random.default_rng(seed)
    scores = rng.random((idx.shape[0], pset.n_outputs)) * 0.5
    scores += pset.encode(idx)  # the true class gets the highest score of its slice
    np.testing.assert_array_equal(pset.decode(scores), idx)


@given(set_and_indices())
def test_json_round_trip_is_exact(case: tuple[ParameterSet, np.ndarray]) -> None:
    pset, idx = case
    again = ParameterSet.from_json(pset.to_json())
    assert again == pset
    np.testing.assert_array_equal(again.to_values(idx), pset.to_values(idx))


@given(set_and_indices())
def test_values_map_back_to_their_indices(case: tuple[ParameterSet, np.ndarray]) -> None:
    pset, idx = case
    np.testing.assert_array_equal(pset.nearest_indices(pset.to_values(idx)), idx)


def test_linear_levels_sit_on_the_range_ends() -> None:
    p = Parameter.linear("cutoff_hz", low=200.0, high=4000.0, n_levels=16)
    assert p.levels[0] == 200.0 and p.levels[-1] == 4000.0
    np.testing.assert_allclose(np.diff(p.levels), 3800.0 / 15)


def test_note_levels_are_semitones_from_a4() -> None:
    p = Parameter.notes("f", base_hz=440.0, n_levels=16)
    assert p.levels[0] == 440.0
    assert p.levels[12] == pytest.approx(880.0)
    assert p.levels[15] == pytest.approx(1046.502, abs=1e-3)  # C6


def test_sampling_is_batch_independent() -> None:
    pset = make_set([16] * 23)
    whole = pset.sample_indices(seed=7, start=0, n_examples=256)
    halves = np.concatenate(
        [
            pset.sample_indices(seed=7, start=0, n_examples=128),
            pset.sample_indices(seed=7, start=128, n_examples=128),
        ]
    )
    np.testing.assert_array_equal(whole, halves)
    assert not np.array_equal(whole, pset.sample_indices(seed=8, start=0, n_examples=256))


def test_sampling_is_uniform_and_independent() -> None:
    pset = make_set([16, 16, 5])
    idx = pset.sample_indices(seed=1, start=0, n_examples=40_000)
    for j, n in enumerate([16, 16, 5]):
        counts = np.bincount(idx[:, j], minlength=n)
        expected = len(idx) / n
        chi2 = float(np.sum((counts - expected) ** 2 / expected))
        assert chi2 < 3 * n, f"parameter {j}: chi2 {chi2:.1f} for {n} classes"
    # Two parameters are independent: their joint histogram is flat too.
    joint = np.bincount(idx[:, 0] * 16 + idx[:, 1], minlength=256)
    chi2 = float(np.sum((joint - len(idx) / 256) ** 2 / (len(idx) / 256)))
    assert chi2 < 2 * 256


def test_uniforms_lie_in_the_unit_interval_and_streams_differ() -> None:
    u0 = example_uniforms(seed=3, start=10, n_examples=1000, n_draws=4, stream=0)
    u1 = example_uniforms(seed=3, start=10, n_examples=1000, n_draws=4, stream=1)
    assert u0.min() >= 0.0 and u0.max() < 1.0
    assert abs(float(np.corrcoef(u0.ravel(), u1.ravel())[0, 1])) < 0.05


@pytest.mark.parametrize(
    "bad",
    [
        lambda: Parameter("x", (1.0,)),
        lambda: Parameter("", (1.0, 2.0)),
        lambda: Parameter("x", (1.0, float("nan"))),
        lambda: ParameterSet([Parameter("x", (1.0, 2.0)), Parameter("x", (3.0, 4.0))]),
        lambda: make_set([4]).to_values(np.array([[4]])),
        lambda: make_set([4]).to_values(np.array([[0, 1]])),
        lambda: make_set([4]).decode(np.zeros((1, 5))),
        lambda: make_set([4]).index("nope"),
        lambda: ParameterSet.from_json("{not json"),
        lambda: ParameterSet.from_json('{"parameters": [{"levels": [1, 2]}]}'),
    ],
)
def test_bad_input_raises_the_package_error(bad) -> None:
    with pytest.raises(InverSynthError):
        bad()


@settings(max_examples=30)
@given(st.integers(0, 2**40), st.integers(0, 10**9), st.integers(1, 50))
def test_uniforms_of_a_slice_equal_the_same_rows_of_a_longer_draw(
    seed: int, start: int, n: int
) -> None:
    long = example_uniforms(seed=seed, start=start, n_examples=n + 5, n_draws=3)
    part = example_uniforms(seed=seed, start=start + 5, n_examples=n, n_draws=3)
    np.testing.assert_array_equal(long[5:], part)


def test_groups_round_trip_and_default_by_name() -> None:
    pset = ParameterSet(
        [
            Parameter.linear("cutoff_hz", low=200, high=4000, n_levels=4),  # no group given
            Parameter.linear("drive", low=0, high=1, n_levels=3, group="Distortion"),
            Parameter.linear("mix", low=0, high=1, n_levels=2, group=""),
            Parameter.linear("tone", low=0, high=1, n_levels=2, group="Distortion"),
        ]
    )
    assert [p.group for p in pset.parameters] == ["Filter", "Distortion", "", "Distortion"]
    assert pset.groups == {"Filter": ["cutoff_hz"], "Distortion": ["drive", "tone"]}
    back = ParameterSet.from_json(pset.to_json())
    assert [p.group for p in back.parameters] == [p.group for p in pset.parameters]
    # A file written before parameters carried a group: each gets its name's default.
    old = pset.to_dict()
    for p in old["parameters"]:
        del p["group"]
    assert [p.group for p in ParameterSet.from_dict(old).parameters] == ["Filter", "", "", ""]
    # The group is for reports: it never makes a dataset incompatible with a model.
    assert ParameterSet.from_dict(old) == pset


@pytest.mark.parametrize("group", ["All", " Filter", "Filter\n", 3])
def test_bad_groups_are_refused(group: object) -> None:
    with pytest.raises(InverSynthError, match="group"):
        Parameter("x", (0.0, 1.0), group=group)  # type: ignore[arg-type]


def test_fm_groups_are_the_ones_its_old_files_get() -> None:
    # Runs and datasets of the FM synth written before parameters carried their
    # group must report the same groups as new ones.
    from generators.fm_parameters import FM_PARAMETERS

    assert all(p.group for p in FM_PARAMETERS.parameters)
    old = FM_PARAMETERS.to_dict()
    for p in old["parameters"]:
        del p["group"]
    assert ParameterSet.from_dict(old).groups == FM_PARAMETERS.groups
    assert list(FM_PARAMETERS.groups) == [
        "Notes", "Oscillator amplitude", "Amplitude LFO", "Frequency LFO", "Amplitude ADSR",
        "Filter", "Gate",
    ]  # fmt: skip


def test_descriptions_round_trip_and_are_absent_in_old_files() -> None:
    described = Parameter.linear("cutoff_hz", low=200, high=4000, n_levels=4, description="cutoff")
    plain = Parameter.linear("cutoff_hz", low=200, high=4000, n_levels=4)
    assert described.description == "cutoff" and plain.description == ""
    assert described == plain  # for people: never what makes two parameters differ
    assert described.to_dict()["description"] == "cutoff"
    assert "description" not in plain.to_dict()  # a set without them writes what it always did
    assert Parameter.from_dict(described.to_dict()).description == "cutoff"
    assert Parameter.from_dict(plain.to_dict()).description == ""
    with pytest.raises(InverSynthError, match="description"):
        Parameter("x", (0.0, 1.0), description="two\nlines")


def test_every_fm_parameter_says_what_it_does() -> None:
    from generators.fm_parameters import FM_PARAMETERS

    descriptions = {p.name: p.description for p in FM_PARAMETERS.parameters}
    assert all(descriptions.values())
    # The paper's group names mislead where the LFOs are concerned: the text says what they are.
    assert "pitch" in descriptions["B_sine"] and "not the sound's" in descriptions["B_sine"]
    assert "low-pass" in descriptions["cutoff_hz"]


def test_a_dataset_made_before_descriptions_is_the_same_dataset(tmp_path) -> None:
    # The shipped model's run.json names its dataset by a fingerprint taken before
    # parameters carried descriptions; the same dataset made today must have it.
    import json

    from generators.dataset import open_dataset
    from generators.fm_generator import FMGenerator
    from generators.writer import DatasetCreator, DatasetPlan
    from models.common.pretrained import PRETRAINED_FM_RUN

    path = DatasetCreator(
        FMGenerator(),
        path=tmp_path / "fm_data.hdf5",
        plan=DatasetPlan(n_examples=4, seed=3),
        chunk_size=4,
        progress=False,
    ).run()
    with open_dataset(path) as dataset:
        identity = dataset.identity
    shipped = json.loads((PRETRAINED_FM_RUN / "run.json").read_text())["dataset"]["identity"]
    assert "description" not in json.dumps(shipped)
    assert {
        k: v for k, v in identity.items() if k not in ("seed", "n_examples", "fingerprint")
    } == {k: v for k, v in shipped.items() if k not in ("seed", "n_examples", "fingerprint")}


def _nudged(parameter_set: ParameterSet, relative: float) -> ParameterSet:
    """The set with every level moved by ``relative`` (as another CPU may compute them)."""
    return ParameterSet(
        Parameter(p.name, [v * (1 + relative) + (relative if v == 0 else 0) for v in p.levels],
                  p.unit, p.spacing, p.group)
        for p in parameter_set.parameters
    )  # fmt: skip


def test_parameter_sets_of_two_cpus_match_within_the_stated_tolerance():
    from generators.fm_generator import FMGenerator
    from generators.parameters import LEVEL_RTOL

    fm = FMGenerator().parameter_set
    last_digit = _nudged(fm, 4e-16)  # AVX-512 against AVX2: 932.3275230361796 vs ...799
    assert last_digit != fm  # exact equality would refuse it
    assert last_digit.matches(fm) and fm.matches(last_digit)
    assert not _nudged(fm, 100 * LEVEL_RTOL).matches(fm)  # a real difference still counts
    other_name = ParameterSet([Parameter("x", [0.0, 1.0]), *fm.parameters[1:]])
    assert not other_name.matches(fm)


def test_note_levels_are_the_same_on_every_cpu():
    # Computed with scalar powers: NumPy's vectorised power differs in the last digit
    # with AVX-512. The shipped model's run.json was written on an AVX2 machine.
    notes = Parameter.notes("f", base_hz=440.0, n_levels=16)
    assert notes.levels[13] == 932.3275230361799
    assert notes.levels[12] == 880.0


def test_median_decoding_takes_the_middle_of_an_ordered_parameter_and_the_top_of_a_choice():
    ordered = Parameter("rate", [0.0, 1.0, 2.0, 3.0, 4.0])
    choice = Parameter("wave", [0.0, 1.0, 2.0, 3.0, 4.0], ordered=False)
    ps = ParameterSet([ordered, choice])
    # Two peaks at the ends with mass between: the argmax picks an end, the median the middle.
    block = [0.35, 0.1, 0.1, 0.1, 0.35]
    scores = np.array([block + block])
    assert ps.decode(scores).tolist() == [[0, 0]]
    assert ps.decode_median(scores).tolist() == [[2, 0]]
    # Unnormalised sigmoid scores are normalised per parameter first.
    assert ps.decode_median(np.array([[0, 0, 0, 0.9, 0.9, *block]])).tolist() == [[3, 0]]


def test_dx7_parameters_carry_the_meaning_of_the_engine_table() -> None:
    import os
    from pathlib import Path

    try:
        import dexed  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("dexed-py missing")  # CI has the extra; a skip there would hide it
        pytest.skip("dexed-py missing (uv sync --extra dexed)")
    from generators.dexed.engine import engine_parameter
    from generators.dexed.synth import DexedGenerator

    config = Path(__file__).resolve().parents[1] / "plugin_config" / "dexed_small.json"
    for p in DexedGenerator(dexed_config=config).parameter_set.parameters:
        assert p.description and p.description == engine_parameter(p.name)[1].meaning


def test_evenly_spaced_and_note_levels_are_ordered_whatever_the_name():
    # Only a parameter that declares nothing (an older file) is judged by its name.
    assert Parameter.linear("filter_mode", low=0.0, high=1.0, n_levels=4).ordered
    assert Parameter.notes("osc_type", n_levels=4).ordered
    assert not Parameter("filter_mode", [0.0, 1.0]).ordered
