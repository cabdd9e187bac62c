"""A run's evaluation folder: its files, what is in them (typed), reading and writing them.

``{run_dir}/evaluation`` (``evaluation_{dataset name}`` for another dataset):

========================  ===================================================  =====================
file                      what                                                 written by
========================  ===================================================  =====================
``metrics.json``          :class:`MetricsRecord`: top-k accuracy, MAE and MPR   ``models.evaluate``
                          per parameter and per group, which examples
``per_parameter.csv``     one row per parameter (the same figures)             ``models.evaluate``
``predictions.npz``       :class:`Predictions`: example indices, true class    ``models.evaluate``
                          indices, the model's scores
``*.png``                 training curves, per-parameter metrics, top-k per    ``models.evaluate``
                          group (:data:`PLOT_FILES`)
``reconstruction.json``   :class:`ReconstructionRecord`: every reconstruction  ``models.reconstruct``
                          metric's statistics, model vs random patches
``reconstruction.csv``    one row of reconstruction metrics per example        ``models.reconstruct``
``report.html``           the listening report                                 ``models.report``
========================  ===================================================  =====================

Every file is written to a temporary name and renamed.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from generators.errors import InverSynthError
from models.common.metrics import Evaluation
from models.common.records import JsonRecord
from models.common.run import EVALUATION_DIR
from models.matching.metrics import METRICS, REPRESENTATION, MetricSummary

__all__ = [
    "EVALUATION_DIR",
    "METRICS_FILE",
    "PER_PARAMETER_CSV",
    "PLOT_FILES",
    "PREDICTIONS_FILE",
    "RECONSTRUCTION_CSV",
    "RECONSTRUCTION_JSON",
    "REPORT_FILE",
    "MetricsRecord",
    "Predictions",
    "ReconstructionRecord",
    "default_evaluation_dir",
    "evaluation_dataset_paths",
    "read_metrics",
    "read_reconstruction",
    "write_per_parameter_csv",
    "write_reconstruction_csv",
]

METRICS_FILE = "metrics.json"
PER_PARAMETER_CSV = "per_parameter.csv"
PREDICTIONS_FILE = "predictions.npz"
RECONSTRUCTION_JSON = "reconstruction.json"
RECONSTRUCTION_CSV = "reconstruction.csv"
REPORT_FILE = "report.html"
PLOT_FILES: dict[str, str] = {
    "training_curves": "training_curves.png",
    "per_parameter_plot": "per_parameter.png",
    "top_k_plot": "top_k_by_group.png",
}


def default_evaluation_dir(run_dir: str | Path, dataset_path: str | Path | None = None) -> Path:
    """``{run_dir}/evaluation``, or ``{run_dir}/evaluation_{name}`` for another dataset's file."""
    name = EVALUATION_DIR
    if dataset_path is not None:
        name += "_" + Path(dataset_path).name.split(".")[0].removesuffix("_data")
    return Path(run_dir) / name


def _not_evaluated(path: Path) -> InverSynthError:
    return InverSynthError(
        f"{str(path)!r} does not exist; evaluate the run first "
        f"(python -m models.evaluate {path.parent.parent})"
    )


# --------------------------------------------------------------------------
# predictions.npz
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Predictions:
    """A model's predictions for examples of a dataset (``predictions.npz``).

    Attributes
    ----------
    example_indices : np.ndarray [n], int64
        Rows of the dataset.
    true_indices : np.ndarray [n, n_parameters], int64
    scores : np.ndarray [n, n_outputs], float32
    """

    example_indices: np.ndarray
    true_indices: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        n = np.shape(self.example_indices)[0]
        if np.shape(self.true_indices)[0] != n or np.shape(self.scores)[0] != n:
            raise InverSynthError(
                f"predictions disagree in length: {np.shape(self.example_indices)}, "
                f"{np.shape(self.true_indices)}, {np.shape(self.scores)}"
            )

    def __len__(self) -> int:
        return int(self.example_indices.shape[0])

    def take(self, rows: np.ndarray | slice) -> Predictions:
        """The predictions of some rows (an index array or a slice)."""
        return Predictions(self.example_indices[rows], self.true_indices[rows], self.scores[rows])

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / PREDICTIONS_FILE
        tmp = path.with_name(f".{path.stem}.tmp.npz")  # numpy insists on the suffix
        np.savez_compressed(
            tmp,
            example_indices=self.example_indices,
            true_indices=self.true_indices,
            scores=self.scores,
        )
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, folder: str | Path) -> Predictions:
        """``predictions.npz`` of an evaluation folder.

        Raises
        ------
        InverSynthError
            The file is missing (naming the command that writes it) or malformed.
        """
        path = Path(folder) / PREDICTIONS_FILE
        if not path.is_file():
            raise _not_evaluated(path)
        try:
            with np.load(path) as data:
                arrays = [np.asarray(data[key]) for key in ("example_indices", "true_indices")]
                scores = np.asarray(data["scores"])
        except (OSError, ValueError, KeyError) as exc:
            raise InverSynthError(f"{str(path)!r} is not a predictions file: {exc}") from None
        try:
            return cls(arrays[0].astype(np.int64), arrays[1], scores)
        except InverSynthError:
            raise InverSynthError(
                f"{str(path)!r} is malformed: its arrays disagree in length"
            ) from None


# --------------------------------------------------------------------------
# metrics.json and per_parameter.csv
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricsRecord(JsonRecord):
    """``metrics.json``: the paper's metrics of a run on some examples of a dataset."""

    model: str
    run_dir: str
    dataset_paths: list[str]
    dataset_identity: dict[str, Any]
    split: str  # "train", "validation", "test" or "all"
    evaluation: Evaluation

    @property
    def test_set(self) -> str:
        """Dataset fingerprint and split: runs with the same one were tested alike."""
        return f"{self.dataset_identity.get('fingerprint', '?')}/{self.split}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "run_dir": self.run_dir,
            "dataset": {"paths": list(self.dataset_paths), "identity": self.dataset_identity},
            "split": self.split,
            **self.evaluation.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricsRecord:
        dataset = data.get("dataset") or {}
        return cls(
            model=str(data.get("model", "?")),
            run_dir=str(data.get("run_dir", "")),
            dataset_paths=[str(p) for p in dataset.get("paths", [])],
            dataset_identity=dict(dataset.get("identity") or {}),
            split=str(data.get("split", "?")),
            evaluation=Evaluation.from_dict(data),
        )


def read_metrics(folder: str | Path) -> MetricsRecord:
    """``metrics.json`` of an evaluation folder (missing: naming the command that writes it)."""
    path = Path(folder) / METRICS_FILE
    if not path.is_file():
        raise _not_evaluated(path)
    return MetricsRecord.read(path)


def write_per_parameter_csv(folder: str | Path, evaluation: Evaluation) -> Path:
    """``per_parameter.csv``: name, levels, top-1..5 accuracy, MAE, MPR of every parameter."""
    path = Path(folder) / PER_PARAMETER_CSV
    rows = [p.to_dict() for p in evaluation.parameters]
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return path


def evaluation_dataset_paths(folder: str | Path, default: Sequence[str]) -> list[str]:
    """The dataset files an evaluation used (from its ``metrics.json``), else ``default``."""
    try:
        paths = read_metrics(folder).dataset_paths
    except InverSynthError:
        return list(default)
    return paths or list(default)


# --------------------------------------------------------------------------
# reconstruction.json and reconstruction.csv
# --------------------------------------------------------------------------


def _summaries(data: Mapping[str, Any]) -> dict[str, MetricSummary]:
    return {key: MetricSummary.from_dict(value) for key, value in data.items()}


@dataclass(frozen=True)
class ReconstructionRecord(JsonRecord):
    """``reconstruction.json``: how close the resyntheses of a run's predictions sound.

    ``summary`` and ``chance`` (random patches against the same sounds, when
    measured) hold one :class:`~models.matching.metrics.MetricSummary` per
    metric of :data:`~models.matching.metrics.METRICS`.
    """

    model: str
    run_dir: str
    generator: str
    dataset_paths: list[str]
    n_examples: int
    summary: dict[str, MetricSummary]
    chance: dict[str, MetricSummary] | None = None
    chance_seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "run_dir": self.run_dir,
            "generator": self.generator,
            "dataset": {"paths": list(self.dataset_paths)},
            "n_examples": self.n_examples,
            "representation": dict(REPRESENTATION),
            "definitions": {
                key: {
                    "label": m.label,
                    "unit": m.unit,
                    "higher_is_better": m.higher_is_better,
                    "description": m.description,
                }
                for key, m in METRICS.items()
            },
            "summary": {key: s.to_dict() for key, s in self.summary.items()},
        }
        if self.chance is not None:
            out["chance"] = {key: s.to_dict() for key, s in self.chance.items()}
            out["chance_seed"] = self.chance_seed
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReconstructionRecord:
        chance = data.get("chance")
        return cls(
            model=str(data.get("model", "?")),
            run_dir=str(data.get("run_dir", "")),
            generator=str(data.get("generator", "")),
            dataset_paths=[str(p) for p in (data.get("dataset") or {}).get("paths", [])],
            n_examples=int(data["n_examples"]),
            summary=_summaries(data["summary"]),
            chance=None if chance is None else _summaries(chance),
            chance_seed=data.get("chance_seed"),
        )


def read_reconstruction(folder: str | Path) -> ReconstructionRecord | None:
    """``reconstruction.json`` of an evaluation folder, or None when it was not measured."""
    path = Path(folder) / RECONSTRUCTION_JSON
    return ReconstructionRecord.read(path) if path.is_file() else None


def write_reconstruction_csv(
    folder: str | Path, example_indices: np.ndarray, per_example: Mapping[str, np.ndarray]
) -> Path:
    """``reconstruction.csv``: the example index and every metric, one row per example."""
    path = Path(folder) / RECONSTRUCTION_CSV
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["example_index", *per_example])
        for i, index in enumerate(example_indices):
            writer.writerow([int(index), *(f"{per_example[k][i]:.6g}" for k in per_example)])
    os.replace(tmp, path)
    return path
