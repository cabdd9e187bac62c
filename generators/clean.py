"""Remove the toolkit's outputs: datasets, runs, the demo, comparisons, the page's and predict's folders.

``uv run task clean_outputs``.

``python -m generators.clean`` lists what it would remove from the output
folders, and what it leaves there and why, and deletes nothing; ``--yes``
lists the same, then deletes. The folders are the defaults of the commands
that write them, or the ``INVERSYNTH_*`` variables that move them (``.env``):
``INVERSYNTH_DATASET_DIRECTORY`` (``data``), ``INVERSYNTH_OUTPUT_DIR``
(``runs``), ``INVERSYNTH_DEMO_DIRECTORY`` (``demo``), ``comparison``,
``INVERSYNTH_SERVE_DIRECTORY`` (``serve``, the matching page's) and
``INVERSYNTH_PREDICTIONS_DIRECTORY`` (``predictions``, where ``predict`` writes
the shipped model's matches). Name some of them (``data``, ``runs``, ``demo``,
``comparison``, ``serve``, ``predictions``) to clean only those.

Only what the toolkit made goes, told by its own marks
(:mod:`generators.outputs`): datasets with the writer's schema attributes and
their ``.partial``, ``.lock`` and ``.index.npz`` companions, run folders with
their ``run.json`` (their own entries only), the demo's folders beside its
marker file, comparison tables, the page's uploads and results beside its
marker, and beside predict's marker each match's record and the files it
names. Everything else stays, and is listed with the reason; nothing being
written (its lock held, a page serving from its folder) is touched; links are never
followed out of a folder nor removed. An output folder that is ``/``, the
home folder, the project or the working folder, or holds one of them, is
refused before anything is looked at. A folder left empty is removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.commandline import make_parser, run_cli
from core.environment import env_default, env_value
from core.errors import InverSynthError
from core.storage import format_size
from generators.outputs import (
    COMPARISON_FILES,
    DEMO_FOLDERS,
    DEMO_MARKER,
    PREDICTIONS_MARKER,
    SERVE_FOLDER,
    SERVE_FOLDERS,
    SERVE_MARKER,
    dataset_companion,
    is_dataset_file,
    is_demo_folder,
    is_lock_file,
    is_lookup_index,
    is_predictions_folder,
    is_run_entry,
    is_run_folder,
    is_serve_folder,
    lock_holder,
    match_record_files,
    predictions_folder,
)
from generators.schema import lock_path

__all__ = ["CleanPlan", "check_folder", "clean", "main", "output_folders", "plan_clean"]

# The variable that moves each kind of folder (comparison has none).
_VARIABLES = {
    "data": "DATASET_DIRECTORY",
    "runs": "OUTPUT_DIR",
    "demo": "DEMO_DIRECTORY",
    "serve": "SERVE_DIRECTORY",
    "predictions": "PREDICTIONS_DIRECTORY",
}
PROJECT_DIR = Path(__file__).resolve().parents[1]
MAX_LEFT_SHOWN = 20  # entries left alone listed one by one; the rest are counted


def output_folders() -> dict[str, Path]:
    """The output folders by kind, as the environment or ``.env`` sets them (empty: unset)."""
    return {
        "data": env_default("DATASET_DIRECTORY", Path("data"), Path),
        "runs": env_default("OUTPUT_DIR", Path("runs"), Path),
        "demo": env_default("DEMO_DIRECTORY", Path("demo"), Path),
        "comparison": Path("comparison"),
        "serve": env_default("SERVE_DIRECTORY", SERVE_FOLDER, Path),
        "predictions": predictions_folder(),
    }


def _protected() -> dict[str, Path]:
    """Folders clean never looks into, nor into any folder that holds one of them."""
    places = {
        "the root folder": Path("/"),
        "the project": PROJECT_DIR,
        "the working folder": Path(),
    }
    with contextlib.suppress(RuntimeError):  # no home folder known: nothing to protect
        places["the home folder"] = Path.home()
    return {label: path.resolve() for label, path in places.items()}


def check_folder(kind: str, folder: Path) -> None:
    """Refuse an output folder that is, or holds, ``/``, the home folder, the project or the working folder.

    Raises
    ------
    InverSynthError
        Naming the variable that set the folder, and what it is.
    """
    resolved = folder.resolve()
    variable = _VARIABLES.get(kind)
    source = (
        f"INVERSYNTH_{variable}={str(folder)!r}"
        if variable and env_value(variable) is not None
        else f"the {kind} folder {str(folder)!r}"
    )
    for label, place in _protected().items():
        if resolved == place or resolved in place.parents:
            relation = "is" if resolved == place else "holds"
            raise InverSynthError(
                f"{source} ({resolved}) {relation} {label}; clean removes nothing there: "
                "point it at a folder of its own"
            )


@dataclass
class CleanPlan:
    """What clean removes (``(path, what it is)``), what it leaves (``(path, why)``), and the
    folders it removes if they end up empty (each after the folders inside it)."""

    remove: list[tuple[Path, str]] = field(default_factory=list)
    leave: list[tuple[Path, str]] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    seen: set[Path] = field(default_factory=set)

    def first_visit(self, path: Path) -> bool:
        """Whether ``path`` is new to the plan (two kinds of folder may overlap)."""
        key = path.resolve()
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def _entries(folder: Path, plan: CleanPlan) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        plan.leave.append((folder, f"cannot be read ({exc.strerror or exc})"))
        return []


def _plan_datasets(folder: Path, plan: CleanPlan) -> None:
    """The datasets directly in ``folder``, and their companions; never a subfolder."""
    for entry in _entries(folder, plan):
        if not plan.first_visit(entry):
            continue
        if entry.is_symlink():
            plan.leave.append((entry, "a link (clean removes no links)"))
        elif entry.is_dir():
            plan.leave.append((entry, "a folder (clean removes datasets, not folders, here)"))
        elif is_dataset_file(entry):
            final = entry.with_name(entry.name.removesuffix(".partial"))
            holder = lock_holder(lock_path(final))
            if holder:
                plan.leave.append((entry, f"being written by {holder}"))
            else:
                plan.remove.append((entry, "dataset" if entry == final else "unfinished dataset"))
        elif dataset_companion(entry) and entry.name.endswith(".lock") and is_lock_file(entry):
            holder = lock_holder(entry)
            if holder:
                plan.leave.append((entry, f"held by {holder}"))
            else:
                plan.remove.append((entry, "dataset lock"))
        elif dataset_companion(entry) and is_lookup_index(entry):
            plan.remove.append((entry, "lookup index"))
        else:
            plan.leave.append((entry, "not a dataset of the toolkit"))
    plan.folders.append(folder)


def _plan_run(run_dir: Path, plan: CleanPlan) -> None:
    holder = lock_holder(run_dir / ".lock")
    if holder:
        plan.leave.append((run_dir, f"a run in use by {holder}"))
        return
    entries = _entries(run_dir, plan)
    own = [e for e in entries if is_run_entry(e.name) and not e.is_symlink()]
    if len(own) == len(entries):
        plan.remove.append((run_dir, "run folder"))
        return
    plan.remove.extend((e, "of a run") for e in own)
    plan.leave.extend((e, "not made by the toolkit") for e in entries if e not in own)
    plan.folders.append(run_dir)


def _plan_runs(folder: Path, plan: CleanPlan) -> None:
    """The run folders directly in ``folder``: each one's own entries."""
    for entry in _entries(folder, plan):
        if not plan.first_visit(entry):
            continue
        if entry.is_symlink():
            plan.leave.append((entry, "a link (clean removes no links)"))
        elif entry.is_dir() and is_run_folder(entry):
            _plan_run(entry, plan)
        else:
            plan.leave.append((entry, "not a run folder (no run.json of the toolkit)"))
    plan.folders.append(folder)


def _plan_demo(folder: Path, plan: CleanPlan) -> None:
    """A demo folder: its datasets and runs, and, beside its marker, its sounds and matches."""
    marked = is_demo_folder(folder)
    for entry in _entries(folder, plan):
        if not plan.first_visit(entry):
            continue
        real_dir = entry.is_dir() and not entry.is_symlink()
        if entry.name == "data" and real_dir:
            _plan_datasets(entry, plan)
        elif entry.name == "runs" and real_dir:
            _plan_runs(entry, plan)
        elif entry.name in DEMO_FOLDERS and real_dir and marked:
            plan.remove.append((entry, "the demo's"))
        elif entry.name == DEMO_MARKER and marked:
            plan.remove.append((entry, "the demo's marker"))
        elif entry.name in DEMO_FOLDERS:
            plan.leave.append((entry, f"no {DEMO_MARKER} beside it: not known to be the demo's"))
        else:
            plan.leave.append((entry, "not made by the demo"))
    plan.folders.append(folder)


def _plan_comparison(folder: Path, plan: CleanPlan) -> None:
    for entry in _entries(folder, plan):
        if not plan.first_visit(entry):
            continue
        if entry.name in COMPARISON_FILES and entry.is_file() and not entry.is_symlink():
            plan.remove.append((entry, "comparison"))
        else:
            plan.leave.append((entry, "not made by python -m models.compare"))
    plan.folders.append(folder)


def _plan_marked(folder: Path, plan: CleanPlan, own: dict[Path, str], whole: str) -> None:
    """A marked folder's own entries (``own``: path -> what it is), the rest left.

    When everything in it is its own, the folder goes as one item (``whole``).
    """
    entries = [e for e in _entries(folder, plan) if plan.first_visit(e)]
    if all(e in own for e in entries):
        plan.remove.append((folder, whole))
        return
    for entry in entries:
        if entry in own:
            plan.remove.append((entry, own[entry]))
        else:
            plan.leave.append((entry, "not made by the toolkit"))
    plan.folders.append(folder)


def _plan_serve(folder: Path, plan: CleanPlan) -> None:
    """The matching page's folder: its uploads and results beside its marker, unless it serves."""
    if not is_serve_folder(folder):
        plan.leave.append((folder, f"no {SERVE_MARKER} in it: not a folder the matching page made"))
        return
    holder = lock_holder(folder / SERVE_MARKER)
    if holder:
        plan.leave.append((folder, f"the matching page serves from it ({holder})"))
        return
    own = {folder / SERVE_MARKER: "the matching page's marker"}
    for name in SERVE_FOLDERS:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            own[path] = f"the matching page's {name}"
    _plan_marked(folder, plan, own, "the matching page's uploads and results")


def _plan_predictions(folder: Path, plan: CleanPlan) -> None:
    """predict's folder: beside its marker, each match's record and the files the record names."""
    if not is_predictions_folder(folder):
        plan.leave.append(
            (folder, f"no {PREDICTIONS_MARKER} in it: not known to be predict's folder")
        )
        return
    own = {folder / PREDICTIONS_MARKER: "predict's marker"}
    for entry in _entries(folder, plan):
        for path in match_record_files(entry) or []:
            own.setdefault(path, f"of the match {entry.name}")
    _plan_marked(folder, plan, own, "predict's matches")


_PLANNERS: dict[str, Callable[[Path, CleanPlan], None]] = {
    "data": _plan_datasets,
    "runs": _plan_runs,
    "demo": _plan_demo,
    "comparison": _plan_comparison,
    "serve": _plan_serve,
    "predictions": _plan_predictions,
}


def plan_clean(folders: dict[str, Path]) -> CleanPlan:
    """What clean would remove from the output ``folders`` (by kind), and what it leaves.

    Raises
    ------
    InverSynthError
        A folder is, or holds, ``/``, the home folder, the project or the
        working folder (:func:`check_folder`); checked for all before any is looked at.
    """
    for kind, folder in folders.items():
        check_folder(kind, folder)
    plan = CleanPlan()
    for kind, folder in folders.items():
        if not (folder.exists() and plan.first_visit(folder)):
            continue
        if not folder.is_dir():
            plan.leave.append((folder, "a file, not an output folder"))
            continue
        _PLANNERS[kind](folder, plan)
        if folder.is_symlink():  # clean inside it; the link and its target stay
            plan.folders.remove(folder)
    return plan


def _size(path: Path) -> tuple[int, int]:
    """Files and bytes under ``path`` (not following links)."""
    if path.is_symlink() or not path.is_dir():
        return 1, path.lstat().st_size
    files = [p for p in path.rglob("*") if p.is_symlink() or p.is_file()]
    return len(files), sum(p.lstat().st_size for p in files)


def _shown(path: Path) -> str:
    return f"{path}/" if path.is_dir() and not path.is_symlink() else str(path)


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError as exc:
        raise InverSynthError(f"cannot remove {str(path)!r}: {exc.strerror or exc}") from None


def clean(folders: dict[str, Path], *, yes: bool, echo: Callable[[str], None] = print) -> CleanPlan:
    """List what clean removes and leaves in ``folders`` (by kind); with ``yes``, then remove it.

    Returns
    -------
    CleanPlan
        What was (with ``yes``) or would be removed, and what stays.
    """
    plan = plan_clean(folders)
    verb = "removing" if yes else "would remove"
    total = 0
    for path, what in plan.remove:
        n_files, n_bytes = _size(path)
        total += n_bytes
        plural = "" if n_files == 1 else "s"
        echo(f"{verb} {_shown(path)} ({what}; {n_files} file{plural}, {format_size(n_bytes)})")
    for path, why in plan.leave[:MAX_LEFT_SHOWN]:
        echo(f"leaving {_shown(path)}: {why}")
    if len(plan.leave) > MAX_LEFT_SHOWN:
        echo(f"leaving {len(plan.leave) - MAX_LEFT_SHOWN} more entries not made by the toolkit")
    if not plan.remove:
        absent = [f"{p}/" for p in folders.values() if not p.exists()]
        echo("nothing to remove" + (f" ({', '.join(absent)} absent)" if absent else ""))
        return plan
    if not yes:
        echo("nothing removed; run again with --yes to remove these")
        return plan
    for path, _ in plan.remove:
        _remove(path)
    for folder in plan.folders:  # a folder comes after the folders inside it
        if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
            os.rmdir(folder)
    echo(f"removed {len(plan.remove)} item(s), {format_size(total)}")
    return plan


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser(
        prog="python -m generators.clean",
        description="List the toolkit's outputs (datasets, runs, the demo, comparisons, the "
        "matching page's folder, predict's folder) and what else is in their folders; with "
        "--yes, delete the outputs.",
    )
    kinds = tuple(_PLANNERS)
    parser.add_argument(
        "kinds",
        nargs="*",
        metavar="KIND",
        help=f"only these of {', '.join(kinds)}; none given: all of them",
    )
    parser.add_argument(
        "--yes", action="store_true", help="delete them; without it, only list them"
    )
    args = parser.parse_args(argv)
    unknown = [k for k in args.kinds if k not in kinds]
    if unknown:
        parser.error(f"unknown folder kind(s) {unknown}; choose from {', '.join(kinds)}")
    folders = output_folders()
    clean({k: folders[k] for k in (args.kinds or kinds)}, yes=args.yes)
    return 0


if __name__ == "__main__":
    run_cli(main)
