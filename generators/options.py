"""The options that several commands share, each defined once: name, type, default, variable.

Every ``add_*_argument(parser, ...)`` adds one option to a parser or an
argument group. Its default comes from its ``INVERSYNTH_<NAME>`` variable
(environment, then ``.env``; see ``.env.example``) where it has one, else from
the value given here; keywords change only what truly differs between
commands (the help text; the variable of a seed or a folder that means
something else in another command).

:func:`add_dataset_arguments` is the group of every dataset-making command.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TypeAlias

from generators.cli import (
    env_default,
    non_negative_int,
    positive_float,
    positive_int,
)
from generators.errors import InverSynthError

__all__ = [
    "add_dataset_arguments",
    "add_length_argument",
    "add_max_examples_argument",
    "add_no_progress_argument",
    "add_output_dir_argument",
    "add_sample_rate_argument",
    "add_seed_argument",
    "add_workers_argument",
    "default_workers",
    "n_samples_from_args",
    "parse_shard",
]

Parser: TypeAlias = argparse.ArgumentParser | argparse._ArgumentGroup


def add_seed_argument(
    parser: Parser,
    *,
    env: str | None = "SEED",
    help: str = "random seed (>= 0)",
) -> None:
    """``--seed``: an integer >= 0, default 0 (``INVERSYNTH_<env>``; ``env=None``: no variable)."""
    default = env_default(env, 0, non_negative_int) if env else 0
    parser.add_argument("--seed", type=non_negative_int, default=default, help=help)


def default_workers() -> int:
    """Worker processes when ``INVERSYNTH_WORKERS`` is unset: one per CPU core."""
    return os.cpu_count() or 1


def add_workers_argument(parser: Parser, *, help: str = "rendering processes") -> None:
    """``--workers``: rendering processes, > 0 (``INVERSYNTH_WORKERS``, else one per core)."""
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=env_default("WORKERS", default_workers(), positive_int),
        help=help,
    )


def add_no_progress_argument(parser: Parser, *, help: str = "no progress bar (for logs)") -> None:
    """``--no_progress``: a flag."""
    parser.add_argument("--no_progress", action="store_true", help=help)


def add_output_dir_argument(
    parser: Parser, *, default: Path | None, env: str | None = None, help: str
) -> None:
    """``--output_dir``: a folder (``INVERSYNTH_<env>`` if given, else ``default``).

    Every command writes something else there, so the default, the variable
    and the help are the command's.
    """
    value = env_default(env, default, Path) if env else default
    parser.add_argument("--output_dir", type=Path, default=value, help=help)


def add_max_examples_argument(
    parser: Parser, *, env: str | None = None, help: str = "use only the first N examples"
) -> None:
    """``--max_examples``: an integer > 0, default all (None; ``INVERSYNTH_<env>`` if given)."""
    default = env_default(env, None, positive_int) if env else None
    parser.add_argument("--max_examples", type=positive_int, default=default, help=help)


def add_sample_rate_argument(parser: Parser, *, help: str = "Hz") -> None:
    """``--sample_rate``: Hz, an integer > 0 (``INVERSYNTH_SAMPLE_RATE``, else 16384)."""
    parser.add_argument(
        "--sample_rate",
        type=positive_int,
        default=env_default("SAMPLE_RATE", 16384, positive_int),
        help=help,
    )


def add_length_argument(parser: Parser, *, help: str = "seconds per example") -> None:
    """``--length``: seconds per example, > 0 (``INVERSYNTH_LENGTH``, else 1)."""
    parser.add_argument(
        "--length",
        type=positive_float,
        default=env_default("LENGTH", 1.0, positive_float),
        help=help,
    )


def n_samples_from_args(args: argparse.Namespace) -> int:
    """Samples per example from ``--length`` (s) and ``--sample_rate`` (Hz)."""
    n = round(args.length * args.sample_rate)
    if n <= 0:
        raise InverSynthError(
            f"--length {args.length} s at --sample_rate {args.sample_rate} Hz gives no samples"
        )
    return n


def parse_shard(text: str) -> tuple[int, int]:
    """``--shard`` ``"K/N"`` -> ``(K, N)`` with 1 <= K <= N."""
    try:
        k_text, n_text = text.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise InverSynthError(f"--shard must look like K/N (e.g. 2/8), got {text!r}") from None
    if not 1 <= k <= n:
        raise InverSynthError(f"--shard K/N needs 1 <= K <= N, got {text!r}")
    return k, n


def add_dataset_arguments(
    parser: argparse.ArgumentParser, *, default_name: str, default_examples: int = 20_000
) -> None:
    """The options every dataset-making command shares (names as in the first implementation).

    :func:`generators.writer.create_dataset_from_args` runs them.
    """
    g = parser.add_argument_group("dataset")
    g.add_argument(
        "--num_examples",
        type=positive_int,
        default=env_default("NUM_EXAMPLES", default_examples, positive_int),
        help="examples in the whole dataset (all shards together)",
    )
    g.add_argument(
        "--name",
        default=env_default("NAME", default_name),
        help="dataset name; the file is {dataset_directory}/{name}_data.hdf5",
    )
    g.add_argument(
        "--dataset_directory",
        type=Path,
        default=env_default("DATASET_DIRECTORY", Path("data"), Path),
        help="folder of the HDF5 file",
    )
    g.add_argument(
        "--wavefile_directory",
        type=Path,
        default=env_default("WAVEFILE_DIRECTORY", Path("wavs"), Path),
        help="folder of the WAV files written with --write_wavs",
    )
    add_length_argument(g)
    add_sample_rate_argument(g)
    add_seed_argument(
        g,
        help="random seed (>= 0): the same seed gives the same bytes, whatever --workers or --shard",
    )
    add_workers_argument(g)
    g.add_argument(
        "--chunk_size",
        type=positive_int,
        default=env_default("CHUNK_SIZE", 256, positive_int),
        help="examples per unit of work (and per resume checkpoint)",
    )
    g.add_argument(
        "--write_wavs",
        action=argparse.BooleanOptionalAction,
        default=env_default("WRITE_WAVS", False),
        help="also write every example as a WAV file",
    )
    g.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run of the same command instead of refusing to start",
    )
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing finished dataset of the same name",
    )
    g.add_argument(
        "--shard",
        type=str,
        default=None,
        help="K/N: make only the K-th of N equal parts (1-based), for jobs on many machines; "
        "the file is {name}_data.shard-K-of-N.hdf5",
    )
    add_no_progress_argument(g)
