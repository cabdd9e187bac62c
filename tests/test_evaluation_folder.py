"""The evaluation folder's files: typed records that read back what they wrote."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.errors import InverSynthError
from generators.parameters import Parameter, ParameterSet
from models.common.metrics import evaluate_scores
from models.evaluation.evaluation_folder import (
    METRICS_FILE,
    RECONSTRUCTION_JSON,
    MetricsRecord,
    Predictions,
    ReconstructionRecord,
    default_evaluation_dir,
    evaluation_dataset_paths,
    read_metrics,
    read_reconstruction,
)
from models.matching.sound_metrics import METRICS, summarize


def _metrics_record() -> MetricsRecord:
    ps = ParameterSet(
        [
            Parameter.linear("cutoff_hz", low=200, high=4000, n_levels=4),
            Parameter.linear("q", low=0.1, high=10, n_levels=3),
        ]
    )
    rng = np.random.default_rng(0)
    true = np.stack([rng.integers(0, n, 20) for n in ps.n_levels], axis=1)
    return MetricsRecord(
        model="C6",
        run_dir="runs/C6_x",
        dataset_paths=["data/x_data.hdf5"],
        dataset_identity={"fingerprint": "abc", "generator": "x"},
        split="test",
        evaluation=evaluate_scores(ps, rng.random((20, ps.n_outputs)), true),
    )


def test_metrics_record_round_trips_and_reads_like_its_file(tmp_path: Path) -> None:
    record = _metrics_record()
    record.write(tmp_path / METRICS_FILE)
    back = read_metrics(tmp_path)
    assert back == record
    data = json.loads((tmp_path / METRICS_FILE).read_text())
    assert list(data)[:5] == ["model", "run_dir", "dataset", "split", "n_examples"]
    assert data["groups"]["Filter"]["parameters"] == ["cutoff_hz", "q"]
    assert back["groups"]["All"]["mpr"] == record.evaluation.groups["All"].mpr
    assert back.test_set == "abc/test"
    assert evaluation_dataset_paths(tmp_path, ["other"]) == ["data/x_data.hdf5"]


def test_missing_or_malformed_files_say_so(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "r"
    folder = default_evaluation_dir(run_dir)
    assert folder == run_dir / "evaluation"
    assert default_evaluation_dir(run_dir, "d/fresh_data.hdf5") == run_dir / "evaluation_fresh"
    with pytest.raises(
        InverSynthError, match=r"evaluate the run first \(python -m models\.evaluate"
    ):
        read_metrics(folder)
    with pytest.raises(InverSynthError, match="evaluate the run first"):
        Predictions.load(folder)
    assert evaluation_dataset_paths(folder, ["default"]) == ["default"]
    assert read_reconstruction(folder) is None
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    for read in (read_metrics, Predictions.load):
        with pytest.raises(InverSynthError, match=r"'.*notes\.txt' is a file, not a folder$"):
            read(a_file)
    folder.mkdir(parents=True)
    (folder / METRICS_FILE).write_text('{"model": "C6"}')
    with pytest.raises(InverSynthError, match="malformed"):
        read_metrics(folder)
    (folder / RECONSTRUCTION_JSON).write_text("not json")
    with pytest.raises(InverSynthError, match="not valid JSON"):
        read_reconstruction(folder)


def test_reconstruction_record_round_trips_with_and_without_chance(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    values = {key: rng.random(6) for key in METRICS}
    values["spectral_convergence"][0] = np.inf  # undefined: left out and counted
    record = ReconstructionRecord(
        model="C6",
        run_dir="runs/C6_x",
        generator="fm",
        dataset_paths=["data/x_data.hdf5"],
        n_examples=6,
        summary=summarize(values),
        chance=summarize({key: 2 * v for key, v in values.items()}),
        chance_seed=7,
    )
    record.write(tmp_path / RECONSTRUCTION_JSON)
    back = read_reconstruction(tmp_path)
    assert back == record
    assert back is not None and back.summary["spectral_convergence"].n_excluded == 1
    written = json.loads((tmp_path / RECONSTRUCTION_JSON).read_text())
    assert set(written["definitions"]) == set(METRICS) and written["chance_seed"] == 7
    assert written["summary"]["rho_stft"]["median"] == record.summary["rho_stft"].median
    without = ReconstructionRecord(
        model="C6", run_dir="r", generator="fm", dataset_paths=[], n_examples=6,
        summary=summarize(values),
    )  # fmt: skip
    assert "chance" not in without and "chance" not in without.to_dict()
    assert ReconstructionRecord.from_json(without.to_json()) == without


def test_predictions_round_trip_and_refuse_ragged_arrays(tmp_path: Path) -> None:
    predictions = Predictions(
        np.arange(5, dtype=np.int64),
        np.zeros((5, 2), dtype=np.int64),
        np.random.default_rng(0).random((5, 7)).astype(np.float32),
    )
    path = predictions.save(tmp_path)
    assert path.name == "predictions.npz" and not list(tmp_path.glob(".*"))
    back = Predictions.load(tmp_path)
    for a, b in zip(
        (back.example_indices, back.true_indices, back.scores),
        (predictions.example_indices, predictions.true_indices, predictions.scores),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    assert len(back.take(slice(0, 3))) == 3
    with pytest.raises(InverSynthError, match="length"):
        Predictions(np.arange(4), np.zeros((5, 2)), np.zeros((5, 7)))
    np.savez(
        tmp_path / "predictions.npz",
        example_indices=np.arange(4),
        true_indices=np.zeros((5, 2)),
        scores=np.zeros((5, 7)),
    )
    with pytest.raises(InverSynthError, match="malformed"):
        Predictions.load(tmp_path)
