"""How the toolkit's outputs are told from anything else on disk, by their own marks.

``python -m generators.clean`` removes only what these recognise: a dataset
file by the schema attributes the writer puts in it (and its ``.partial``,
``.lock`` and ``.index.npz`` companions), a run folder by its ``run.json``
(and then only the entries training, evaluation and prediction make in it), a
demo folder by the marker file the demo writes first, a comparison by its
file names, the matching page's folder by the marker it writes (and holds
locked while it serves), and the folder ``predict`` writes the shipped
model's matches into by its marker, each match there by its JSON record
(which names every file of the match). A name alone is never enough for a
file the user could have made.

The names of a run folder's entries are those of :mod:`models.common.run`,
repeated here because ``generators`` never imports ``models``; a test checks
that the two agree.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import zipfile
from pathlib import Path

import h5py

from core.environment import env_default
from generators.schema import READABLE_VERSIONS, attr_value

__all__ = [
    "COMPARISON_FILES",
    "DEMO_FOLDERS",
    "DEMO_MARKER",
    "MATCH_RECORD_VERSION",
    "PREDICTIONS_FOLDER",
    "PREDICTIONS_MARKER",
    "RUN_ENTRIES",
    "RUN_FILE",
    "SERVE_FOLDER",
    "SERVE_FOLDERS",
    "SERVE_MARKER",
    "dataset_companion",
    "is_dataset_file",
    "is_demo_folder",
    "is_lock_file",
    "is_lookup_index",
    "is_predictions_folder",
    "is_run_entry",
    "is_run_folder",
    "is_serve_folder",
    "lock_holder",
    "mark_demo_folder",
    "mark_predictions_folder",
    "match_record_files",
    "predictions_folder",
]

RUN_FILE = "run.json"
# What training (model, records, lock, TensorBoard logs), evaluation
# (evaluation/, evaluation_{dataset}/) and prediction (predictions/) make in a run folder.
RUN_ENTRIES = (
    RUN_FILE,
    "state.json",
    "model.keras",
    "latest.keras",
    "history.csv",
    ".lock",
    "tensorboard",
    "evaluation",
    "predictions",
)
_RUN_PATTERNS = (
    re.compile(r"evaluation_[^/]+"),  # the evaluation folder of another dataset
    re.compile(r"\..+\.tmp(\..+)?"),  # a file written atomically, interrupted before its rename
)
COMPARISON_FILES = ("comparison.md", "comparison.csv", "comparison.png")
DEMO_MARKER = ".inversynth_demo"
DEMO_FOLDERS = ("sounds", "predictions")  # the demo's own, beside its data/ and runs/
# The matching page (python -m models.serve): its default folder (INVERSYNTH_SERVE_DIRECTORY),
# the marker it writes there first and holds locked while it serves, and its own folders.
SERVE_FOLDER = Path("serve")
SERVE_MARKER = ".inversynth-serve"
SERVE_FOLDERS = ("uploads", "results")
# Where predict writes the shipped model's matches (INVERSYNTH_PREDICTIONS_DIRECTORY), and
# the marker it writes there.
PREDICTIONS_FOLDER = Path("predictions")
PREDICTIONS_MARKER = ".inversynth-predictions"
MATCH_RECORD_VERSION = 2  # models.matching.match_output's FORMAT_VERSION: names its files
_DATASET_SUFFIXES = (".hdf5", ".hdf5.partial")
_INDEX_MEMBERS = {"key.npy", "features.npy", "labels.npy"}  # models.matching.lookup's index
_MAX_RUN_FILE_BYTES = 64 * 2**20  # a run.json is tens of KB; never read a large file whole


def is_dataset_file(path: Path) -> bool:
    """Whether ``path`` is a dataset the writer made (finished or ``.partial``): its schema attributes."""
    if path.is_symlink() or not path.is_file() or not path.name.endswith(_DATASET_SUFFIXES):
        return False
    try:
        with h5py.File(path, "r", locking=False) as f:
            attrs = f.attrs
            if not {"format_version", "generator", "parameter_set", "seed"} <= set(attrs):
                return False
            return attr_value(attrs, "format_version") in READABLE_VERSIONS
    except (OSError, ValueError, KeyError, TypeError):  # not HDF5, or not readable
        return False


def is_lookup_index(path: Path) -> bool:
    """Whether ``path`` is a lookup index (``{dataset}.index.npz``): its arrays, by name."""
    if path.is_symlink() or not path.is_file() or not path.name.endswith(".index.npz"):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return set(archive.namelist()) == _INDEX_MEMBERS
    except (OSError, zipfile.BadZipFile):
        return False


def dataset_companion(path: Path) -> Path | None:
    """The dataset a ``.lock`` or ``.index.npz`` file belongs to (by name), else None."""
    for suffix in (".lock", ".index.npz"):
        if path.name.endswith(".hdf5" + suffix):
            return path.with_name(path.name.removesuffix(suffix))
    return None


def lock_holder(path: Path) -> str | None:
    """Who holds the ``flock`` lock file ``path`` (its process, as written in it), or None.

    A dataset's writer holds ``{file}.lock`` and a training ``{run}/.lock`` for
    as long as they run: what they write is not to be removed under them.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            text = os.pread(fd, 200, 0).decode(errors="replace").strip()
            return f"process {text}" if text else "another process"
        return None
    finally:
        os.close(fd)  # releases the shared lock, if taken


def is_lock_file(path: Path) -> bool:
    """Whether ``path`` is one of the toolkit's lock files: empty, or a process id (and host)."""
    if path.is_symlink() or not path.is_file() or path.stat().st_size > 200:
        return False
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return False
    return not text or re.fullmatch(r"\d+( on \S+)?", text) is not None


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` is a run folder: a ``run.json`` with the keys training writes."""
    path = folder / RUN_FILE
    if folder.is_symlink() or path.is_symlink() or not path.is_file():
        return False
    try:
        if path.stat().st_size > _MAX_RUN_FILE_BYTES:
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    keys = {"format_version", "model", "parameter_set", "generator", "dataset"}
    return isinstance(data, dict) and keys <= set(data)


def is_run_entry(name: str) -> bool:
    """Whether an entry of a run folder is one the toolkit makes there (by its name)."""
    return name in RUN_ENTRIES or any(p.fullmatch(name) for p in _RUN_PATTERNS)


def is_demo_folder(folder: Path) -> bool:
    """Whether ``folder`` holds the demo's marker (:func:`mark_demo_folder`)."""
    marker = folder / DEMO_MARKER
    return marker.is_file() and not marker.is_symlink()


def mark_demo_folder(folder: str | Path) -> None:
    """Mark ``folder`` as the demo's (creating it), so that clean can tell its sounds from others."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DEMO_MARKER).write_text(
        "written by python -m models.demo: its data/, runs/, sounds/ and predictions/ are "
        "outputs that python -m generators.clean may remove\n",
        encoding="utf-8",
    )


def _marked(folder: Path, marker: str) -> bool:
    path = folder / marker
    return not folder.is_symlink() and path.is_file() and not path.is_symlink()


def is_serve_folder(folder: Path) -> bool:
    """Whether ``folder`` is one the matching page made: its marker :data:`SERVE_MARKER`."""
    return _marked(folder, SERVE_MARKER)


def is_predictions_folder(folder: Path) -> bool:
    """Whether ``folder`` holds predict's marker :data:`PREDICTIONS_MARKER`."""
    return _marked(folder, PREDICTIONS_MARKER)


def predictions_folder() -> Path:
    """The folder ``predict`` writes the shipped model's matches into (and every run's, when
    ``INVERSYNTH_PREDICTIONS_DIRECTORY`` is set)."""
    return env_default("PREDICTIONS_DIRECTORY", PREDICTIONS_FOLDER, Path)


def mark_predictions_folder(folder: str | Path) -> None:
    """Mark ``folder``, where predict wrote matches, so that clean can tell them from other files.

    Nothing happens if the folder is absent (nothing was written) or already marked.
    The marker is written to a temporary name and renamed.
    """
    folder = Path(folder)
    if not folder.is_dir() or is_predictions_folder(folder):
        return
    marker = folder / PREDICTIONS_MARKER
    partial = marker.with_name(f".{PREDICTIONS_MARKER}.{os.getpid()}.tmp")
    partial.write_text(
        "written by python -m models.predict: the matches here (each {name}.json and the files "
        "it names) are outputs that python -m generators.clean may remove\n",
        encoding="utf-8",
    )
    os.replace(partial, marker)


def _plain_name(name: object) -> bool:
    return isinstance(name, str) and bool(name) and "/" not in name and not name.startswith(".")


def match_record_files(path: Path) -> list[Path] | None:
    """The files a match's JSON record names, itself first, where they are; None if not a record.

    A record (``{name}.json``, format version 2) names every file its match wrote
    (``files``: kind -> file name, ``json`` its own name); only plain names of
    regular files beside it are returned, never a link or a path elsewhere.
    """
    if path.is_symlink() or not path.is_file() or path.suffix != ".json":
        return None
    try:
        if path.stat().st_size > _MAX_RUN_FILE_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("format_version") != MATCH_RECORD_VERSION:
        return None
    files = data.get("files")
    if not isinstance(data.get("candidates"), list) or not isinstance(files, dict):
        return None
    if files.get("json") != path.name or not all(_plain_name(n) for n in files.values()):
        return None
    named = [path.parent / str(n) for n in files.values() if n != path.name]
    return [path, *(p for p in named if p.is_file() and not p.is_symlink())]
