"""Which run an evaluation folder is of: its records carry the run's fingerprint, checked on read.

``metrics.json`` and ``reconstruction.json`` record the
:attr:`~models.common.run.RunInfo.fingerprint` of the run they were made for
(its model, parameters, dataset, split, settings and creation time: what the
run carries wherever it is moved or exported). Whatever reads an evaluation
folder for a run (``reconstruct``, ``report``, ``compare``, and ``evaluate``
before it writes into one) first checks that it is that run's, so another
run's predictions or figures are never shown under this run's name, as they
would be with ``--evaluation_dir`` or ``--evaluation_name`` naming another
run's folder. A mismatch is refused in one line naming both runs.

Folders written before the fingerprint was kept are refused only where they
provably belong to another run (another model, synth, length, sample rate or
parameter set, or predictions of another shape); otherwise they are used, with
a warning that says so.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InverSynthError
from models.common.run import RunInfo
from models.evaluation.evaluation_folder import (
    METRICS_FILE,
    RECONSTRUCTION_JSON,
    MetricsRecord,
    Predictions,
    ReconstructionRecord,
    default_evaluation_dir,
)

__all__ = ["RecordedRun", "check_evaluation_of_run", "foreign_records", "recorded_runs"]


@dataclass(frozen=True)
class RecordedRun:
    """What one record of an evaluation folder says of the run it was made for."""

    file: Path
    run_dir: str  # where the run was when the record was written
    model: str
    fingerprint: str | None  # None: a record written before fingerprints were kept
    generator: str | None = None
    parameters: list[str] | None = None
    n_levels: list[int] | None = None
    sample_rate: int | None = None
    n_samples: int | None = None

    def differences(self, info: RunInfo) -> list[str]:
        """What provably differs from run ``info`` (model, synth, length, rate, parameters)."""
        out = []
        if self.model not in ("", "?", info.model_name):
            out.append(f"model {self.model}, the run's {info.model_name}")
        if self.generator and self.generator != info.generator_name:
            out.append(f"another synth: {self.generator!r}, the run's {info.generator_name!r}")
        if self.parameters is not None and self.parameters != info.parameter_set.names:
            out.append(
                f"{len(self.parameters)} parameters, the run's {info.parameter_set.n_parameters}"
                if len(self.parameters) != info.parameter_set.n_parameters
                else "other parameter names than the run's"
            )
        elif self.n_levels is not None and self.n_levels != info.parameter_set.n_levels.tolist():
            out.append(f"levels {self.n_levels}, the run's {info.parameter_set.n_levels.tolist()}")
        for key, mine in (("sample_rate", info.sample_rate), ("n_samples", info.n_samples)):
            theirs = getattr(self, key)
            if theirs is not None and theirs != mine:
                out.append(f"{key} {theirs}, the run's {mine}")
        return out


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _from_metrics(path: Path, record: MetricsRecord) -> RecordedRun:
    identity = record.dataset_identity
    return RecordedRun(
        file=path,
        run_dir=record.run_dir,
        model=record.model,
        fingerprint=record.run_fingerprint,
        generator=str(identity["generator"]) if identity.get("generator") else None,
        parameters=[p.name for p in record.evaluation.parameters],
        n_levels=[p.n_levels for p in record.evaluation.parameters],
        sample_rate=_int_or_none(identity.get("sample_rate")),
        n_samples=_int_or_none(identity.get("n_samples")),
    )


def _from_reconstruction(path: Path, record: ReconstructionRecord) -> RecordedRun:
    return RecordedRun(
        file=path,
        run_dir=record.run_dir,
        model=record.model,
        fingerprint=record.run_fingerprint,
        generator=record.generator or None,
    )


def recorded_runs(folder: str | Path) -> list[RecordedRun]:
    """What the folder's ``metrics.json`` and ``reconstruction.json`` say of their runs.

    Files that are missing or unreadable are left out (their readers say what is wrong).
    """
    out = []
    readers: tuple[tuple[str, Any, Any], ...] = (
        (METRICS_FILE, MetricsRecord, _from_metrics),
        (RECONSTRUCTION_JSON, ReconstructionRecord, _from_reconstruction),
    )
    for name, record_class, convert in readers:
        path = Path(folder) / name
        if not path.is_file():
            continue
        try:
            out.append(convert(path, record_class.read(path)))
        except InverSynthError:
            continue
    return out


def _foreign(recorded: RecordedRun, info: RunInfo) -> list[str] | None:
    """Why ``recorded`` is of another run than ``info`` (None: it is not, as far as one can tell)."""
    differences = recorded.differences(info)
    if recorded.fingerprint is not None and recorded.fingerprint != info.fingerprint:
        return [
            f"run fingerprint {recorded.fingerprint}, the run's {info.fingerprint}",
            *differences,
        ]
    return differences or None


def foreign_records(folder: str | Path, info: RunInfo) -> list[tuple[RecordedRun, list[str]]]:
    """The folder's records that are of another run than ``info``, each with why."""
    out = []
    for recorded in recorded_runs(folder):
        reasons = _foreign(recorded, info)
        if reasons:
            out.append((recorded, reasons))
    return out


def _prediction_shapes(predictions: Predictions, info: RunInfo) -> list[str]:
    n_parameters = predictions.true_indices.shape[1]
    n_outputs = predictions.scores.shape[1]
    ps = info.parameter_set
    if (n_parameters, n_outputs) == (ps.n_parameters, ps.n_outputs):
        return []
    return [
        f"predictions of {n_parameters} parameters ({n_outputs} outputs), the run's "
        f"{ps.n_parameters} ({ps.n_outputs}): another synth or parameter set"
    ]


def check_evaluation_of_run(
    folder: str | Path,
    info: RunInfo,
    *,
    run_dir: str | Path,
    predictions: Predictions | None = None,
    replacing: bool = False,
) -> None:
    """Refuse an evaluation folder that is not run ``run_dir``'s.

    Parameters
    ----------
    folder : path
        The evaluation folder.
    info : RunInfo
        The run's ``run.json``.
    run_dir : path
        The run folder, for the messages.
    predictions : Predictions, optional
        The folder's predictions, already read: their shapes are checked too.
    replacing : bool
        The caller replaces ``reconstruction.json`` (``--overwrite``): one of
        another run is no reason to stop.

    Raises
    ------
    InverSynthError
        In one line naming both runs and what differs.
    """
    folder = Path(folder)
    records = recorded_runs(folder)
    for recorded in records:
        reasons = _foreign(recorded, info)
        if reasons and not (replacing and recorded.file.name == RECONSTRUCTION_JSON):
            raise InverSynthError(
                f"evaluation folder {str(folder)!r} is of run {recorded.run_dir!r} "
                f"({recorded.model}), not of run {str(run_dir)!r} ({info.model_name}): its "
                f"{recorded.file.name} has {'; '.join(reasons)}; give run {str(run_dir)!r}'s own "
                f"evaluation folder (by default {default_evaluation_dir(run_dir)}) or evaluate it"
            )
    shapes = [] if predictions is None else _prediction_shapes(predictions, info)
    if shapes:
        raise InverSynthError(
            f"evaluation folder {str(folder)!r} is not of run {str(run_dir)!r} "
            f"({info.model_name}): it holds {shapes[0]}"
        )
    if records and not any(r.fingerprint for r in records):
        print(
            f"warning: evaluation folder {str(folder)!r} does not record which run it is of "
            f"(written before evaluations did); taking it as run {str(run_dir)!r}'s",
            file=sys.stderr,
        )
