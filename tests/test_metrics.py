"""The paper's metrics: hand-computed cases, chance levels, groups, and the Keras versions."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InverSynthError
from generators.parameters import Parameter, ParameterSet
from models.common.metrics import (
    ALL_GROUP,
    Evaluation,
    evaluate_scores,
    group_parameters,
    keras_metrics,
    true_class_ranks,
)


def two_parameters() -> ParameterSet:
    # Unequal level counts, so any mix-up between parameters' blocks shows.
    return ParameterSet(
        [
            Parameter.linear("cutoff_hz", low=200, high=4000, n_levels=4),
            Parameter.linear("q", low=0.1, high=10, n_levels=3),
        ]
    )


def test_ranks_count_higher_scores_and_break_ties_like_argmax() -> None:
    scores = np.array(
        [
            [0.1, 0.7, 0.2, 0.0],  # true 1 is the highest -> 0
            [0.1, 0.7, 0.2, 0.0],  # true 2 is second -> 1
            [0.1, 0.7, 0.2, 0.0],  # true 3 is last -> 3
            [0.5, 0.5, 0.5, 0.5],  # all tied: rank = index
            [0.5, 0.5, 0.5, 0.5],
        ]
    )
    true = np.array([1, 2, 3, 0, 2])
    np.testing.assert_array_equal(true_class_ranks(scores, true), [0, 1, 3, 0, 2])
    # rank 0 exactly when argmax finds the true class
    assert ((true_class_ranks(scores, true) == 0) == (scores.argmax(1) == true)).all()


def test_hand_computed_case() -> None:
    ps = two_parameters()
    # example 0: cutoff true 0, scores rank it 2nd, argmax 1; q true 2, ranked 1st
    # example 1: cutoff true 3, ranked last (rank 3), argmax 0; q true 0, ranked 2nd (rank 1), argmax 1
    scores = np.array(
        [
            [0.3, 0.9, 0.1, 0.0, 0.1, 0.2, 0.8],
            [0.9, 0.5, 0.4, 0.1, 0.3, 0.6, 0.1],
        ]
    )
    true = np.array([[0, 2], [3, 0]])
    ev = evaluate_scores(ps, scores, true)
    cutoff, q = ev.parameters
    # cutoff ranks: [1, 3]; argmax [1, 0]
    assert cutoff.top_k == (0.0, 0.5, 0.5, 1.0, 1.0)
    assert cutoff.mae == pytest.approx((1 + 3) / 2)
    assert cutoff.mpr == pytest.approx(100 * (1 - (1 / 3 + 3 / 3) / 2))
    # q ranks: [0, 1]; argmax [2, 1]
    assert q.top_k == (0.5, 1.0, 1.0, 1.0, 1.0)
    assert q.mae == pytest.approx((0 + 1) / 2)
    assert q.mpr == pytest.approx(100 * (1 - (0 / 2 + 1 / 2) / 2))
    assert ev.groups["Filter"].mpr == pytest.approx((cutoff.mpr + q.mpr) / 2)
    assert ev.groups[ALL_GROUP].top_k[0] == pytest.approx(0.25)
    assert ev.n_examples == 2
    table = ev.to_dict()
    assert table["parameters"][0]["top3"] == 0.5
    assert table["groups"]["Filter"]["parameters"] == ["cutoff_hz", "q"]


def test_perfect_reversed_and_random_scores() -> None:
    ps = two_parameters()
    rng = np.random.default_rng(0)
    true = np.stack([rng.integers(0, 4, 5000), rng.integers(0, 3, 5000)], axis=1)
    one_hot = ps.encode(true)
    perfect = evaluate_scores(ps, one_hot, true)
    assert all(p.mpr == 100.0 and p.top1 == 1.0 and p.mae == 0.0 for p in perfect.parameters)
    # Scores that rank the true class last: MPR 0.
    worst = evaluate_scores(ps, 1.0 - one_hot + 1e-3 * rng.random(one_hot.shape), true)
    assert all(p.mpr == pytest.approx(0.0) for p in worst.parameters)
    # Random scores: chance, MPR 50 and top-k = k / L.
    chance = evaluate_scores(ps, rng.random(one_hot.shape), true)
    for p in chance.parameters:
        assert p.mpr == pytest.approx(50.0, abs=2.0)
        assert p.top1 == pytest.approx(1 / p.n_levels, abs=0.03)
        assert p.top_k[p.n_levels - 1] == 1.0


def test_bad_shapes_are_refused() -> None:
    ps = two_parameters()
    with pytest.raises(InverSynthError, match="shape"):
        evaluate_scores(ps, np.zeros((2, 6)), np.zeros((2, 2), dtype=int))
    with pytest.raises(InverSynthError, match="examples"):
        evaluate_scores(ps, np.zeros((3, 7)), np.zeros((2, 2), dtype=int))
    with pytest.raises(InverSynthError, match="out of range"):
        evaluate_scores(ps, np.zeros((1, 7)), np.array([[4, 0]]))


def test_groups_of_fm_names_and_of_other_synths() -> None:
    fm_names = [
        *(f"f_{w}" for w in ("sine", "saw", "tri", "sqr")),
        *(f"A_{w}" for w in ("sine", "saw", "tri", "sqr")),
        *(f"B_{w}" for w in ("sine", "saw", "tri", "sqr")),
        *(f"v_{w}" for w in ("sine", "saw", "tri", "sqr")),
        "attack_s", "decay_s", "sustain", "release_s", "cutoff_hz", "q", "gate_hz",
    ]  # fmt: skip
    groups = group_parameters(fm_names)
    assert groups["Notes"] == ["f_sine", "f_saw", "f_tri", "f_sqr"]
    assert groups["Oscillator amplitude"] == ["A_sine", "A_saw", "A_tri", "A_sqr"]
    assert groups["Amplitude LFO"] == ["B_sine", "B_saw", "B_tri", "B_sqr"]
    assert groups["Frequency LFO"] == ["v_sine", "v_saw", "v_tri", "v_sqr"]
    assert groups["Amplitude ADSR"] == ["attack_s", "decay_s", "sustain", "release_s"]
    assert groups["Filter"] == ["cutoff_hz", "q"]
    assert groups["Gate"] == ["gate_hz"]
    assert len(groups[ALL_GROUP]) == 23
    # Every FM parameter is in exactly one group besides "All".
    members = [n for g, ns in groups.items() if g != ALL_GROUP for n in ns]
    assert sorted(members) == sorted(fm_names)
    assert group_parameters(["frequency_hz", "amplitude"]) == {
        ALL_GROUP: ["frequency_hz", "amplitude"]
    }


def test_keras_metrics_agree_with_numpy() -> None:
    ps = ParameterSet(
        [
            Parameter.linear("a", low=0, high=1, n_levels=5),
            Parameter.linear("b", low=0, high=1, n_levels=2),
            Parameter.linear("c", low=0, high=1, n_levels=8),
        ]
    )
    rng = np.random.default_rng(3)
    true = np.stack([rng.integers(0, n, 64) for n in ps.n_levels], axis=1)
    scores = rng.random((64, ps.n_outputs)).astype(np.float32)
    # Make some predictions right so accuracy is neither 0 nor chance.
    scores[:20] += 2 * ps.encode(true[:20])
    expected = evaluate_scores(ps, scores, true)
    accuracy, mae = keras_metrics(ps.n_levels.tolist())
    y_true = ps.encode(true)
    for metric in (accuracy, mae):
        metric.update_state(y_true[:40], scores[:40])
        metric.update_state(y_true[40:], scores[40:])
    assert float(accuracy.result()) == pytest.approx(expected.groups[ALL_GROUP].top1, abs=1e-6)
    assert float(mae.result()) == pytest.approx(expected.groups[ALL_GROUP].mae, abs=1e-5)
    # A whole-vector accuracy would differ: argmax over all 15 outputs is one class per example.
    whole = float(np.mean(scores.argmax(1) == y_true.argmax(1)))
    assert abs(whole - float(accuracy.result())) > 0.05
    config = accuracy.get_config()
    assert type(accuracy).from_config(config).n_levels == [5, 2, 8]


def test_groups_come_from_the_parameter_set_in_the_papers_order() -> None:
    ps = ParameterSet(
        [
            Parameter.linear("x", low=0, high=1, n_levels=3, group="Gate"),
            Parameter.linear("y", low=0, high=1, n_levels=3, group="Mine"),
            Parameter.linear("cutoff_hz", low=200, high=4000, n_levels=4),  # its default: Filter
            Parameter.linear("z", low=0, high=1, n_levels=2, group=""),  # only in "All"
        ]
    )
    groups = group_parameters(ps)
    assert groups == {"Filter": ["cutoff_hz"], "Gate": ["x"], "Mine": ["y"], ALL_GROUP: ps.names}
    assert list(groups) == ["Filter", "Gate", "Mine", ALL_GROUP]  # the paper's groups first
    rng = np.random.default_rng(1)
    true = np.stack([rng.integers(0, n, 50) for n in ps.n_levels], axis=1)
    ev = evaluate_scores(ps, rng.random((50, ps.n_outputs)), true)
    assert list(ev.groups) == list(groups)
    assert ev.groups["Gate"].mpr == ev.parameters[0].mpr
    # What metrics.json holds reads back as the same evaluation.
    assert Evaluation.from_dict(ev.to_dict()) == ev
