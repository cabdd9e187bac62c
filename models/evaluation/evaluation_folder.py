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
``matches.npz``           :class:`Matches`: the class indices each matching    ``models.reconstruct``
                          method found for the first examples (``--methods``)
``listening.npz``         the sounds the report plays: test sounds, the        ``models.reconstruct``
                          network's guess and the match, rendered
                          (:mod:`models.evaluation.listening_sounds`)
``report.html``           the listening report                                 ``models.report``
========================  ===================================================  =====================

Every file is written to a temporary name and renamed. A folder's results
are not replaced by results of other or fewer examples unless asked
(:func:`check_replaceable`), so that figures of different example sets
never stand side by side unnoticed; every record says how many examples it
is of, and which run (``run_fingerprint``, checked by
:mod:`models.evaluation.evaluation_identity`).
"""

from __future__ import annotations

import csv
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InverSynthError
from core.storage import atomic_path, open_atomic
from models.common.metrics import Evaluation
from models.common.records import JsonRecord
from models.common.run import EVALUATION_DIR
from models.matching.sound_metrics import METRICS, REPRESENTATION, MetricSummary

__all__ = [
    "EVALUATION_DIR",
    "MATCHES_FILE",
    "METRICS_FILE",
    "PER_PARAMETER_CSV",
    "PLOT_FILES",
    "PREDICTIONS_FILE",
    "RECONSTRUCTION_CSV",
    "RECONSTRUCTION_JSON",
    "REPORT_FILE",
    "Matches",
    "MatchingRecord",
    "MetricsRecord",
    "Predictions",
    "ReconstructionRecord",
    "check_output_folder",
    "check_replaceable",
    "default_evaluation_dir",
    "evaluation_dataset_paths",
    "make_output_folder",
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
MATCHES_FILE = "matches.npz"
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


def _evaluate_command(folder: Path, run_dir: Path | None) -> str:
    """The command that writes the evaluation folder ``folder`` (of run ``run_dir`` if known)."""
    if run_dir is None and folder.name.startswith(EVALUATION_DIR):
        run_dir = folder.parent  # the usual place: {run_dir}/evaluation*
    if run_dir is None:
        return f"python -m models.evaluate RUN_DIR --output_dir {folder}"
    if folder == default_evaluation_dir(run_dir):
        return f"python -m models.evaluate {run_dir}"
    return f"python -m models.evaluate {run_dir} --output_dir {folder}"


def _not_evaluated(path: Path, run_dir: str | Path | None = None) -> InverSynthError:
    """The error for a missing evaluation file, naming what is missing and the command that writes it."""
    folder = path.parent
    command = _evaluate_command(folder, None if run_dir is None else Path(run_dir))
    if folder.exists() and not folder.is_dir():
        # a file given as the folder: "does not exist" would send the user looking elsewhere
        return InverSynthError(f"evaluation folder {str(folder)!r} is a file, not a folder")
    if not folder.is_dir():
        where = f"evaluation folder {str(folder)!r} does not exist"
    else:
        where = f"{str(folder)!r} has no {path.name}"
    other = ""
    if run_dir is not None and folder != default_evaluation_dir(run_dir):
        other = f", or name the folder it wrote (by default {default_evaluation_dir(run_dir)})"
    return InverSynthError(f"{where}; evaluate the run first ({command}){other}")


# --------------------------------------------------------------------------
# The folder
# --------------------------------------------------------------------------


def check_output_folder(folder: str | Path) -> Path:
    """Refuse, before any work, an output folder that cannot be made or written.

    Raises
    ------
    InverSynthError
        ``folder`` or one of its parents is a file, or the nearest existing
        one is not writable.
    """
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InverSynthError(
            f"cannot use output folder {str(folder)!r}: {str(existing)!r} is a file"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InverSynthError(
            f"cannot use output folder {str(folder)!r}: {str(existing)!r} is not writable"
        )
    return folder


def make_output_folder(folder: str | Path) -> Path:
    """Create ``folder`` (and its parents) if missing; an error as one line."""
    folder = check_output_folder(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InverSynthError(f"cannot create {str(folder)!r}: {exc.strerror}") from None
    return folder


def check_replaceable(
    path: Path,
    *,
    n_old: int,
    n_new: int,
    same_examples: bool,
    what: str,
    overwrite: bool,
    elsewhere: str = "",
) -> None:
    """Refuse to replace a result of other examples, or of more of the same, unless ``overwrite``.

    Parameters
    ----------
    path : Path
        The existing file.
    n_old, n_new : int
        Examples of the existing result and of the new one.
    same_examples : bool
        Both are of the same dataset and split (the new one of its first
        ``n_new`` examples).
    what : str
        What the new result is of, for the message (``"12 test examples of fm_data"``).
    overwrite : bool
        Replace it anyway.
    elsewhere : str
        How to write the new result elsewhere instead (``"--output_dir DIR"``), if possible.
    """
    if overwrite or (same_examples and n_new >= n_old):
        return
    other = "" if same_examples else " of another set"
    instead = f", or {elsewhere} to write them elsewhere" if elsewhere else ""
    raise InverSynthError(
        f"{str(path)!r} holds results of {n_old} examples{other}; this would replace them "
        f"with {what}: pass --overwrite to replace them{instead}"
    )


# --------------------------------------------------------------------------
# predictions.npz
# --------------------------------------------------------------------------

_ARRAYS = ("example_indices", "true_indices", "scores")


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
        with atomic_path(path) as tmp:  # the same suffix: numpy insists on .npz
            np.savez_compressed(
                tmp,
                example_indices=self.example_indices,
                true_indices=self.true_indices,
                scores=self.scores,
            )
        return path

    @classmethod
    def load(cls, folder: str | Path, *, run_dir: str | Path | None = None) -> Predictions:
        """``predictions.npz`` of an evaluation folder (of run ``run_dir``, for the messages).

        Raises
        ------
        InverSynthError
            The file is missing (naming the command that writes it) or is not
            what ``models.evaluate`` writes.
        """
        path = Path(folder) / PREDICTIONS_FILE
        if not path.is_file():
            raise _not_evaluated(path, run_dir)
        not_ours = f"{str(path)!r} is not a predictions file written by models.evaluate"
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            raise InverSynthError(not_ours) from None
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise InverSynthError(f"{not_ours} (one array, not an .npz archive of three)")
        with data:
            missing = [key for key in _ARRAYS if key not in data.files]
            if missing:
                raise InverSynthError(f"{not_ours} (no {', '.join(missing)})")
            try:
                arrays = {key: np.asarray(data[key]) for key in _ARRAYS}
            except (OSError, ValueError, EOFError, zipfile.BadZipFile):
                raise InverSynthError(f"{not_ours} (damaged)") from None
        index, true, scores = (arrays[key] for key in _ARRAYS)
        if index.ndim != 1 or true.ndim != 2 or scores.ndim != 2:
            raise InverSynthError(
                f"{not_ours} (arrays of shapes {index.shape}, {true.shape}, {scores.shape})"
            )
        if index.shape[0] != true.shape[0] or index.shape[0] != scores.shape[0]:
            raise InverSynthError(f"{str(path)!r} is malformed: its arrays disagree in length")
        if not (np.issubdtype(index.dtype, np.integer) and np.issubdtype(true.dtype, np.integer)):
            raise InverSynthError(f"{not_ours} (its indices are not integers)")
        return cls(index.astype(np.int64), true.astype(np.int64), scores)


# --------------------------------------------------------------------------
# metrics.json and per_parameter.csv
# --------------------------------------------------------------------------


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class MetricsRecord(JsonRecord):
    """``metrics.json``: the paper's metrics of a run on some examples of a dataset."""

    model: str
    run_dir: str
    dataset_paths: list[str]
    dataset_identity: dict[str, Any]
    split: str  # "train", "validation", "test" or "all"
    evaluation: Evaluation
    # Examples of another dataset left out because the run trained on them.
    left_out: int = 0
    # RunInfo.fingerprint of the run evaluated (None in folders written before it was kept).
    run_fingerprint: str | None = None

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
            **({"training_examples_left_out": self.left_out} if self.left_out else {}),
            **({"run_fingerprint": self.run_fingerprint} if self.run_fingerprint else {}),
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
            left_out=int(data.get("training_examples_left_out", 0)),
            run_fingerprint=_optional_str(data.get("run_fingerprint")),
        )


def read_metrics(folder: str | Path, *, run_dir: str | Path | None = None) -> MetricsRecord:
    """``metrics.json`` of an evaluation folder (missing: naming the command that writes it)."""
    path = Path(folder) / METRICS_FILE
    if not path.is_file():
        raise _not_evaluated(path, run_dir)
    return MetricsRecord.read(path)


def write_per_parameter_csv(folder: str | Path, evaluation: Evaluation) -> Path:
    """``per_parameter.csv``: name, levels, top-1..5 accuracy, MAE, MPR of every parameter."""
    path = Path(folder) / PER_PARAMETER_CSV
    rows = [p.to_dict() for p in evaluation.parameters]
    with open_atomic(path, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
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
class MatchingRecord(JsonRecord):
    """The matching methods' figures on the first ``n_examples`` evaluated sounds.

    ``methods[name]`` holds one :class:`~models.matching.sound_metrics.MetricSummary`
    per metric of :data:`~models.matching.sound_metrics.METRICS` and ``distance_db``
    (the matchers' multi-resolution distance); ``renders_mean`` and
    ``seconds_mean`` what a sound cost each method.
    """

    n_examples: int
    max_renders: int | None
    time_limit_s: float | None
    seed: int
    methods: dict[str, dict[str, MetricSummary]]
    renders_mean: dict[str, float]
    seconds_mean: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_examples": self.n_examples,
            "max_renders": self.max_renders,
            "time_limit_s": self.time_limit_s,
            "seed": self.seed,
            "methods": {
                name: {key: s.to_dict() for key, s in block.items()}
                for name, block in self.methods.items()
            },
            "renders_mean": dict(self.renders_mean),
            "seconds_mean": dict(self.seconds_mean),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MatchingRecord:
        return cls(
            n_examples=int(data["n_examples"]),
            max_renders=None if data.get("max_renders") is None else int(data["max_renders"]),
            time_limit_s=(
                None if data.get("time_limit_s") is None else float(data["time_limit_s"])
            ),
            seed=int(data.get("seed", 0)),
            methods={name: _summaries(block) for name, block in data["methods"].items()},
            renders_mean={k: float(v) for k, v in data["renders_mean"].items()},
            seconds_mean={k: float(v) for k, v in data["seconds_mean"].items()},
        )


@dataclass(frozen=True)
class Matches:
    """``matches.npz``: the class indices each method matched, example by example.

    Attributes
    ----------
    example_indices : np.ndarray [n], int64
        Rows of the evaluated dataset.
    indices : dict of str -> np.ndarray [n, n_parameters], int64
        Per method.
    """

    example_indices: np.ndarray
    indices: dict[str, np.ndarray]

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / MATCHES_FILE
        arrays: dict[str, Any] = {
            f"method_{name}": np.asarray(v, dtype=np.int64) for name, v in self.indices.items()
        }
        arrays["example_indices"] = np.asarray(self.example_indices, dtype=np.int64)
        with atomic_path(path) as tmp:
            np.savez(tmp, **arrays)
        return path

    @classmethod
    def load(cls, folder: str | Path) -> Matches | None:
        """The folder's matches, or None when none were made."""
        path = Path(folder) / MATCHES_FILE
        if not path.is_file():
            return None
        try:
            with np.load(path) as data:
                return cls(
                    example_indices=np.asarray(data["example_indices"], dtype=np.int64),
                    indices={
                        key[len("method_") :]: np.asarray(data[key], dtype=np.int64)
                        for key in data.files
                        if key.startswith("method_")
                    },
                )
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise InverSynthError(f"{str(path)!r} is unreadable: {exc}") from None


@dataclass(frozen=True)
class ReconstructionRecord(JsonRecord):
    """``reconstruction.json``: how close the resyntheses of a run's predictions sound.

    ``summary`` and ``chance`` (random patches against the same sounds, when
    measured) hold one :class:`~models.matching.sound_metrics.MetricSummary` per
    metric of :data:`~models.matching.sound_metrics.METRICS`.
    """

    model: str
    run_dir: str
    generator: str
    dataset_paths: list[str]
    n_examples: int
    summary: dict[str, MetricSummary]
    chance: dict[str, MetricSummary] | None = None
    chance_seed: int | None = None
    split: str | None = None  # of the evaluation it resynthesized, when known
    matching: MatchingRecord | None = None  # the matching methods (``--methods``)
    run_fingerprint: str | None = None  # as MetricsRecord's

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "run_dir": self.run_dir,
            "generator": self.generator,
            "dataset": {"paths": list(self.dataset_paths)},
            "split": self.split,
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
        if self.matching is not None:
            out["matching"] = self.matching.to_dict()
        if self.run_fingerprint:
            out["run_fingerprint"] = self.run_fingerprint
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
            split=None if data.get("split") is None else str(data["split"]),
            matching=(
                None if data.get("matching") is None else MatchingRecord.from_dict(data["matching"])
            ),
            run_fingerprint=_optional_str(data.get("run_fingerprint")),
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
    with open_atomic(path, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["example_index", *per_example])
        for i, index in enumerate(example_indices):
            writer.writerow([int(index), *(f"{per_example[k][i]:.6g}" for k in per_example)])
    return path
