"""Remove the toolkit's outputs: datasets, runs, the demo, comparisons (``uv run task clean_outputs``).

``python -m generators.clean`` lists the output folders that exist and what
they hold, and deletes nothing; ``--yes`` deletes them. The folders are the
defaults of the commands that write them, or the ``INVERSYNTH_*`` variables
that move them (``.env``): ``INVERSYNTH_DATASET_DIRECTORY`` (``data``),
``INVERSYNTH_OUTPUT_DIR`` (``runs``), ``INVERSYNTH_DEMO_DIRECTORY`` (``demo``)
and ``comparison``. Name some of them (``data``, ``runs``, ``demo``,
``comparison``) to remove only those. A folder that is a symbolic link loses
the link only, never what it points to.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from generators.cli import env_default, make_parser, run_cli
from generators.errors import InverSynthError

__all__ = ["clean", "main", "output_folders"]


def output_folders() -> dict[str, Path]:
    """The output folders by kind, as the environment or ``.env`` sets them."""
    return {
        "data": env_default("DATASET_DIRECTORY", Path("data"), Path),
        "runs": env_default("OUTPUT_DIR", Path("runs"), Path),
        "demo": env_default("DEMO_DIRECTORY", Path("demo"), Path),
        "comparison": Path("comparison"),
    }


def _size(path: Path) -> tuple[int, int]:
    """Files and bytes under ``path`` (not following links)."""
    if path.is_symlink() or path.is_file():
        return 1, path.lstat().st_size
    files = [p for p in path.rglob("*") if p.is_symlink() or p.is_file()]
    return len(files), sum(p.lstat().st_size for p in files)


def _describe(path: Path) -> str:
    if path.is_symlink():
        return f"{path} (a link to {path.readlink()}; only the link goes)"
    n_files, n_bytes = _size(path)
    return f"{path}/ ({n_files} file{'' if n_files == 1 else 's'}, {n_bytes / 1e6:.1f} MB)"


def clean(folders: dict[str, Path], *, yes: bool) -> list[str]:
    """Describe, and with ``yes`` delete, the folders that exist; the lines to print."""
    present = {kind: path for kind, path in folders.items() if path.is_symlink() or path.exists()}
    if not present:
        return ["nothing to remove: " + ", ".join(f"{p}/" for p in folders.values()) + " absent"]
    lines = []
    for path in present.values():
        description = _describe(path)
        if not yes:
            lines.append(f"would remove {description}")
            continue
        try:
            if path.is_symlink() or path.is_file():
                path.unlink()
            else:
                shutil.rmtree(path)
        except OSError as exc:
            raise InverSynthError(f"cannot remove {str(path)!r}: {exc.strerror or exc}") from None
        lines.append(f"removed {description}")
    if not yes:
        lines.append("nothing removed; run again with --yes to remove these")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser(
        prog="python -m generators.clean",
        description="List the toolkit's output folders (datasets, runs, the demo, comparisons); "
        "with --yes, delete them.",
    )
    kinds = tuple(output_folders())
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
    chosen = {k: folders[k] for k in (args.kinds or kinds)}
    for line in clean(chosen, yes=args.yes):
        print(line)
    return 0


if __name__ == "__main__":
    run_cli(main)
