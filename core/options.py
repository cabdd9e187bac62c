"""The options that several commands share, each defined once: name, type, default, variable.

Every ``add_*_argument(parser, ...)`` adds one option to a parser or an
argument group. Its default comes from its ``INVERSYNTH_<NAME>`` variable
(environment, then ``.env``; see ``.env.example``) where it has one, else from
the value given here; keywords change only what truly differs between
commands (the help text; the variable of a seed or a folder that means
something else in another command).

The options of the dataset-making commands, which know the dataset format,
are :mod:`generators.dataset_options`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from core.checks import check_plain_name
from core.commandline import BooleanFlag, bounded_int
from core.environment import env_default
from core.errors import InverSynthError
from core.storage import file_in_the_way

__all__ = [
    "MAX_EXAMPLES",
    "MAX_SEED",
    "MAX_WORKERS",
    "Parser",
    "add_bool_argument",
    "add_max_examples_argument",
    "add_no_progress_argument",
    "add_output_dir_argument",
    "add_seed_argument",
    "add_workers_argument",
    "available_cpus",
    "cap_workers",
    "default_workers",
    "output_file",
    "output_folder",
    "plain_name",
]

Parser: TypeAlias = argparse.ArgumentParser | argparse._ArgumentGroup

# Bounds of the shared options. Values beyond them are refused with one line
# before anything is written: they are typing mistakes, and would otherwise
# end in an overflow, a memory blow-up or a file larger than any disk.
MAX_EXAMPLES = 1_000_000_000
MAX_SEED = 2**63 - 1  # seeds are stored as int64 and hashed as uint64
MAX_WORKERS = 1024  # above the CPU count a run is capped to it, with a warning

_seed = bounded_int(0, MAX_SEED)
_workers = bounded_int(1, MAX_WORKERS)


def add_bool_argument(
    parser: Parser, name: str, *, env: str | None, default: bool = False, help: str
) -> None:
    """``--name`` / ``--no_name``: a boolean, default ``INVERSYNTH_<env>`` (true or false) else ``default``."""
    value = env_default(env, default) if env else default
    parser.add_argument(f"--{name}", action=BooleanFlag, default=value, help=help)


def add_seed_argument(
    parser: Parser,
    *,
    env: str | None = "SEED",
    high: int = MAX_SEED,
    help: str = "random seed (>= 0)",
) -> None:
    """``--seed``: an integer in [0, ``high``], default 0 (``INVERSYNTH_<env>``; ``env=None``: no variable).

    ``high`` is lower where the seed goes to a library that takes fewer bits
    (TensorFlow's are 32).
    """
    seed = _seed if high == MAX_SEED else bounded_int(0, high)
    default = env_default(env, 0, seed) if env else 0
    parser.add_argument("--seed", type=seed, default=default, help=help)


def available_cpus() -> int:
    """CPU cores this process may run on (its affinity mask, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def default_workers() -> int:
    """Worker processes when ``INVERSYNTH_WORKERS`` is unset: one per CPU core."""
    return available_cpus()


def cap_workers(workers: int, option: str = "--workers") -> int:
    """``workers``, or the CPU count (with a warning on stderr) if it is more.

    More rendering processes than cores only add memory (each holds a synth)
    and switching, never speed.
    """
    cpus = available_cpus()
    if workers > cpus:
        print(
            f"warning: {option} {workers} is more than the {cpus} CPU core(s) of this machine; "
            f"using {cpus}",
            file=sys.stderr,
        )
        return cpus
    return workers


def add_workers_argument(parser: Parser, *, help: str = "rendering processes") -> None:
    """``--workers``: rendering processes, 1..1024 (``INVERSYNTH_WORKERS``, else one per core)."""
    parser.add_argument(
        "--workers",
        type=_workers,
        default=env_default("WORKERS", default_workers(), _workers),
        help=help,
    )


def add_no_progress_argument(parser: Parser, *, help: str = "no progress bar (for logs)") -> None:
    """``--no_progress``: a flag."""
    parser.add_argument("--no_progress", action="store_true", help=help)


def output_folder(text: str) -> Path:
    """argparse type: a folder to write into, which is a folder or can be made one.

    Refused at once, saying what is wrong: the path is a file, or a file is
    where one of its parents would be (``somefile/sub``). Creating it later
    would fail with the system's "File exists" or "Not a directory".
    """
    folder = Path(text)
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder, got an empty path")
    blocker = file_in_the_way(folder)
    if blocker == folder:
        raise argparse.ArgumentTypeError(f"{text!r} is a file, not a folder")
    if blocker is not None:
        raise argparse.ArgumentTypeError(f"cannot create {text!r}: {str(blocker)!r} is a file")
    return folder


def output_file(text: str) -> Path:
    """argparse type: a file to write, which is not a folder and whose folder is or can be made.

    Refused at once, saying what is wrong: the path is a folder, or a file is
    where one of its parents would be.
    """
    path = Path(text)
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file name, got an empty path")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder, not a file")
    blocker = file_in_the_way(path.parent)
    if blocker is not None:
        raise argparse.ArgumentTypeError(f"cannot create {text!r}: {str(blocker)!r} is a file")
    return path


def add_output_dir_argument(
    parser: Parser, *, default: Path | None, env: str | None = None, help: str
) -> None:
    """``--output_dir``: a folder (``INVERSYNTH_<env>`` if given, else ``default``).

    Every command writes something else there, so the default, the variable
    and the help are the command's. A path that is a file, or lies under one,
    is refused when the options are read (:func:`output_folder`).
    """
    value = env_default(env, default, output_folder) if env else default
    parser.add_argument("--output_dir", type=output_folder, default=value, help=help)


_max_examples = bounded_int(1, MAX_EXAMPLES)


def add_max_examples_argument(
    parser: Parser, *, env: str | None = None, help: str = "use only the first N examples"
) -> None:
    """``--max_examples``: an integer in [1, 1e9], default all (None; ``INVERSYNTH_<env>`` if given)."""
    default = env_default(env, None, _max_examples) if env else None
    parser.add_argument("--max_examples", type=_max_examples, default=default, help=help)


def plain_name(what: str, *, folder_option: str) -> Callable[[str], str]:
    """argparse type: a plain name (:func:`check_plain_name`) of a file or folder in an output folder."""

    def parse(text: str) -> str:
        try:
            return check_plain_name(text, what=what, folder_option=folder_option)
        except InverSynthError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = "plain name"
    return parse
