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
import stat
import tempfile
from pathlib import Path

from core.errors import InverSynthError
from core.storage import WriteError, file_in_the_way, write_atomic, write_failed
from models.common.run import (
    BEST_MODEL,
    HISTORY_FILE,
    RUN_FILE,
    STATE_FILE,
    load_run,
    save_model_atomic,
)

__all__ = [
    "EXPORT_FILES",
    "PRETRAINED_DIR",
    "PRETRAINED_DX7_RUN",
    "PRETRAINED_FM_RUN",
    "SHIPPED_SYNTHS",
    "export_run",
    "pretrained_run_dir",
]

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
PRETRAINED_FM_RUN = PRETRAINED_DIR / "fm_M1"
PRETRAINED_DX7_RUN = PRETRAINED_DIR / "dexed_M1"
# The shipped models, by synth: the paper's FM synth, and the DX7 (Dexed) voice space.
SHIPPED_SYNTHS: dict[str, Path] = {"fm": PRETRAINED_FM_RUN, "dexed": PRETRAINED_DX7_RUN}


def pretrained_run_dir(synth: str = "fm") -> Path:
    """The shipped run folder of a synth (:data:`SHIPPED_SYNTHS`).

    Raises
    ------
    InverSynthError
        An unknown synth, or its model file is missing (a checkout without it):
        give a run instead.
    """
    if synth not in SHIPPED_SYNTHS:
        raise InverSynthError(
            f"no shipped model of the {synth!r} synth; shipped: {sorted(SHIPPED_SYNTHS)}"
        )
    folder = SHIPPED_SYNTHS[synth]
    if not (folder / BEST_MODEL).is_file():
        raise InverSynthError(
            f"the shipped model {str(folder / BEST_MODEL)!r} is missing; "
            "give --run RUN_FOLDER of a model you trained"
        )
    return folder


# What an export holds (RUN_FILE and BEST_MODEL always): a folder of these and
# nothing else is an earlier export, the one kind of folder --overwrite replaces.
EXPORT_FILES = (RUN_FILE, BEST_MODEL, STATE_FILE, HISTORY_FILE)


def _check_destination(run_dir: Path, destination: Path, *, overwrite: bool) -> None:
    """Refuse a destination whose replacement could lose anything but an earlier export.

    Raises
    ------
    InverSynthError
        ``destination`` is a link or a file, lies under a file, is the run,
        holds it or lies inside it, is not writable, exists without
        ``overwrite``, or exists and is not an earlier export.
    """
    shown = str(destination)
    if destination.is_symlink():
        raise InverSynthError(f"destination {shown!r} is a link; give the folder it points to")
    if destination.exists() and not destination.is_dir():
        raise InverSynthError(f"destination {shown!r} is a file, not a folder")
    blocker = file_in_the_way(destination.parent)
    if blocker is not None:
        raise InverSynthError(f"cannot create {shown!r}: {str(blocker)!r} is a file")
    source, target = run_dir.resolve(), destination.resolve()
    if target == source:
        raise InverSynthError(f"cannot export the run {str(run_dir)!r} onto itself")
    if target in source.parents:
        raise InverSynthError(f"destination {shown!r} holds the run {str(run_dir)!r}")
    if source in target.parents:
        raise InverSynthError(f"destination {shown!r} is inside the run {str(run_dir)!r}")
    if destination.exists():
        if not overwrite:
            raise InverSynthError(
                f"{shown!r} exists; pass --overwrite to replace an earlier export"
            )
        entries = sorted(p.name + ("/" if p.is_dir() else "") for p in destination.iterdir())
        others = [name for name in entries if name not in EXPORT_FILES]
        if others or (entries and not {RUN_FILE, BEST_MODEL} <= set(entries)):
            raise InverSynthError(
                f"{shown!r} is not an earlier export (it holds {', '.join(others or entries)}); "
                "--overwrite replaces only an export: choose a new folder"
            )
    existing = next(p for p in [target, *target.parents] if p.exists())
    if not all(_writable(p) for p in {existing, target.parent if existing == target else existing}):
        raise InverSynthError(f"destination {shown!r} is not writable")


def _writable(folder: Path) -> bool:
    """Whether entries of ``folder`` may be made and removed.

    A folder whose owner took its write permission away is read-only here even
    for a superuser, whom the system would let write: someone meant to keep it.
    """
    return os.access(folder, os.W_OK | os.X_OK) and bool(folder.stat().st_mode & stat.S_IWUSR)


def export_run(run_dir: str | Path, destination: str | Path, *, overwrite: bool = False) -> Path:
    """Copy a run's best model (without optimizer state) and its records to ``destination``.

    Parameters
    ----------
    run_dir : path
        A run folder with ``model.keras`` and ``run.json``.
    destination : path
        The new folder; ``load_run(destination)`` loads it.
    overwrite : bool
        Replace an earlier export (a folder of :data:`EXPORT_FILES` only) or an
        empty folder at ``destination``; without it an existing one is an error.
        Nothing else is ever replaced: not the run, a folder that holds it or
        one inside it, nor a folder with anything else in it.

    Returns
    -------
    Path
        ``destination``.
    """
    run_dir, destination = Path(run_dir), Path(destination)
    _check_destination(run_dir, destination, overwrite=overwrite)
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
        save_model_atomic(run.model, staging / BEST_MODEL)  # with the record of its run.json
        load_run(staging)  # what was written loads
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp's folder is private; the export is not
        _replace_folder(staging, destination)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError | WriteError):  # a full disk, a read-only folder: one line
            kept = f"nothing of the export is left; {str(run_dir)!r} is untouched"
            raise write_failed(destination, exc, kept=kept) from None
        raise
    return destination


def _replace_folder(new: Path, destination: Path) -> None:
    """Put ``new`` at ``destination``; an earlier folder there is set aside until ``new`` is in place."""
    if not destination.exists():
        os.replace(new, destination)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{destination.name}.old.", dir=destination.parent))
    os.replace(destination, old / destination.name)
    try:
        os.replace(new, destination)
    except BaseException:
        os.replace(old / destination.name, destination)  # the earlier export stays as it was
        old.rmdir()
        raise
    shutil.rmtree(old)
