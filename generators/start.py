"""Set up a working copy: the working folders, and a ``.env`` from ``.env.example``.

An existing ``.env`` is never overwritten: it holds the user's own defaults.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from core.commandline import make_parser, run_cli

FOLDERS = ("data", "runs", "wavs")


def start(root: Path) -> list[str]:
    """Create the working folders and ``.env`` under ``root``; return what was done."""
    done: list[str] = []
    for name in FOLDERS:
        folder = root / name
        if not folder.is_dir():
            folder.mkdir(parents=True)
            done.append(f"created {folder}/")
    env, example = root / ".env", root / ".env.example"
    if env.exists():
        done.append(f"kept the existing {env}")
    elif example.exists():
        shutil.copyfile(example, env)
        done.append(f"wrote {env} from {example}")
    return done


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser(prog="uv run task start", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository folder")
    args = parser.parse_args(argv)
    for line in start(args.root):
        print(line)
    return 0


if __name__ == "__main__":
    run_cli(main)
