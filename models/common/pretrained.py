"""The trained network in the repository, and how a run becomes one.

``models/pretrained/fm_M1/`` holds an M1 trained on the paper's FM synth
(``run.json``, ``model.keras`` without optimizer state, ``state.json``,
``history.csv``): ``python -m models.predict`` and ``python -m models.demo
--pretrained`` use it when no run is given, so a user matches sounds without
training first. README says how it was made and how good it is.

:func:`export_run` copies a run folder's model and records into a folder of its
own, the model without its optimizer state (a third of the size) and the
dataset by file name only, through a temporary folder renamed at the end:
nothing half-written is left behind.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

from generators.errors import InverSynthError
from generators.storage import WriteError, write_atomic, write_failed
from models.common.run import BEST_MODEL, HISTORY_FILE, STATE_FILE, load_run, save_model_atomic

__all__ = ["PRETRAINED_DIR", "PRETRAINED_FM_RUN", "export_run", "pretrained_run_dir"]

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
PRETRAINED_FM_RUN = PRETRAINED_DIR / "fm_M1"


def pretrained_run_dir() -> Path:
    """The shipped FM run folder.

    Raises
    ------
    InverSynthError
        Its model file is missing (a checkout without it): give a run instead.
    """
    if not (PRETRAINED_FM_RUN / BEST_MODEL).is_file():
        raise InverSynthError(
            f"the shipped model {str(PRETRAINED_FM_RUN / BEST_MODEL)!r} is missing; "
            "give --run RUN_FOLDER of a model you trained"
        )
    return PRETRAINED_FM_RUN


def export_run(run_dir: str | Path, destination: str | Path, *, overwrite: bool = False) -> Path:
    """Copy a run's best model (without optimizer state) and its records to ``destination``.

    Parameters
    ----------
    run_dir : path
        A run folder with ``model.keras`` and ``run.json``.
    destination : path
        The new folder; ``load_run(destination)`` loads it.
    overwrite : bool
        Replace an existing ``destination``; without it that is an error.

    Returns
    -------
    Path
        ``destination``.
    """
    run_dir, destination = Path(run_dir), Path(destination)
    if destination.exists() and not overwrite:
        raise InverSynthError(f"{str(destination)!r} exists; pass --overwrite to replace it")
    if destination.resolve() == run_dir.resolve():
        raise InverSynthError(f"cannot export the run {str(run_dir)!r} onto itself")
    run = load_run(run_dir)  # compile=False: the optimizer's moments are not loaded
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    except OSError as exc:
        raise write_failed(destination, exc, kept="nothing was written") from None
    try:
        for name in (STATE_FILE, HISTORY_FILE):
            if (run_dir / name).is_file():
                write_atomic(staging / name, (run_dir / name).read_bytes())
        # The dataset by file name only: where it lay on the training machine means
        # nothing elsewhere (without the file, matching goes without a lookup).
        names = [Path(p).name for p in run.info.dataset_paths]
        dataclasses.replace(run.info, dataset_paths=names).save(staging)
        save_model_atomic(run.model, staging / BEST_MODEL)
        load_run(staging)  # what was written loads
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp's folder is private; the export is not
        if destination.exists():
            shutil.rmtree(destination)
        os.replace(staging, destination)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError | WriteError):  # a full disk, a read-only folder: one line
            kept = f"nothing of the export is left; {str(run_dir)!r} is untouched"
            raise write_failed(destination, exc, kept=kept) from None
        raise
    return destination
