"""The options of the dataset-making commands, each defined once: the dataset group and the note.

:func:`add_dataset_arguments` is the group of every dataset-making command
(:func:`generators.generate.create_dataset_from_args` runs it); its ``--name``
is checked as the dataset format names files (:mod:`generators.schema`), which
is why these options live beside the format and not in :mod:`core.options`.
``--sample_rate`` and ``--length`` are also a synth's ``check`` options.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core.commandline import bounded_float, bounded_int, positive_float
from core.environment import env_default
from core.errors import InverSynthError
from core.options import (
    MAX_EXAMPLES,
    Parser,
    add_bool_argument,
    add_no_progress_argument,
    add_seed_argument,
    add_workers_argument,
)
from generators.schema import check_dataset_name

__all__ = [
    "LENGTH_RANGE_S",
    "MAX_CHUNK_SIZE",
    "MIN_SAMPLES",
    "SAMPLE_RATE_RANGE_HZ",
    "add_dataset_arguments",
    "add_length_argument",
    "add_note_arguments",
    "add_sample_rate_argument",
    "n_samples_from_args",
    "parse_shard",
]

MAX_CHUNK_SIZE = 65_536  # 4.3 GB of audio per chunk at 1 s, 16384 Hz
SAMPLE_RATE_RANGE_HZ = (1000, 192_000)
LENGTH_RANGE_S = (0.001, 60.0)
MIN_SAMPLES = 512  # one STFT window of the spectrogram models: shorter examples train nothing

_sample_rate = bounded_int(*SAMPLE_RATE_RANGE_HZ)
_length = bounded_float(*LENGTH_RANGE_S, unit="s")


def add_sample_rate_argument(parser: Parser, *, help: str = "Hz, 1000 to 192000") -> None:
    """``--sample_rate``: Hz, an integer in [1000, 192000] (``INVERSYNTH_SAMPLE_RATE``, else 16384)."""
    parser.add_argument(
        "--sample_rate",
        type=_sample_rate,
        default=env_default("SAMPLE_RATE", 16384, _sample_rate),
        help=help,
    )


def add_length_argument(
    parser: Parser,
    *,
    help: str = f"seconds per example, up to 60 and at least {MIN_SAMPLES} samples",
) -> None:
    """``--length``: seconds per example, in [0.001, 60] (``INVERSYNTH_LENGTH``, else 1)."""
    parser.add_argument(
        "--length",
        type=_length,
        default=env_default("LENGTH", 1.0, _length),
        help=help,
    )


def n_samples_from_args(args: argparse.Namespace) -> int:
    """Samples per example from ``--length`` (s) and ``--sample_rate`` (Hz); at least ``MIN_SAMPLES``."""
    n = round(args.length * args.sample_rate)
    if n < MIN_SAMPLES:
        raise InverSynthError(
            f"--length {args.length:g} s at --sample_rate {args.sample_rate} Hz gives {n} samples; "
            f"a model needs at least {MIN_SAMPLES} (--length {MIN_SAMPLES / args.sample_rate:.3g} s)"
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


def _name(text: str) -> str:
    """argparse type: a dataset name (see :func:`generators.schema.check_dataset_name`)."""
    try:
        return check_dataset_name(text)
    except InverSynthError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_dataset_arguments(
    parser: argparse.ArgumentParser, *, default_name: str, default_examples: int = 20_000
) -> None:
    """The options every dataset-making command shares (names as in the first implementation).

    :func:`generators.generate.create_dataset_from_args` runs them.
    """
    g = parser.add_argument_group("dataset")
    examples = bounded_int(1, MAX_EXAMPLES)
    g.add_argument(
        "--num_examples",
        type=examples,
        default=env_default("NUM_EXAMPLES", default_examples, examples),
        help="examples in the whole dataset (all shards together), at most 1,000,000,000",
    )
    g.add_argument(
        "--name",
        type=_name,
        default=env_default("NAME", default_name, _name),
        help="dataset name, a plain name (no folders, not starting with '.'); the file is "
        "{dataset_directory}/{name}_data.hdf5",
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
    chunk_size = bounded_int(1, MAX_CHUNK_SIZE)
    g.add_argument(
        "--chunk_size",
        type=chunk_size,
        default=env_default("CHUNK_SIZE", 256, chunk_size),
        help="examples per unit of work (and per resume checkpoint), at most 65536",
    )
    add_bool_argument(
        g, "write_wavs", env="WRITE_WAVS", help="also write every example as a WAV file"
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


def add_note_arguments(parser: Parser, *, default_length: str) -> None:
    """``--pitch``, ``--velocity``, ``--note_length``: the note a synth plays (plugins, the DX7).

    Unset, each comes from the config's ``note``, else a default;
    ``default_length`` says that default for ``--note_length`` ("half the example").
    """
    parser.add_argument(
        "--pitch",
        type=int,
        default=None,
        help="MIDI note (unset: the config's note.pitch, else 60)",
    )
    parser.add_argument(
        "--velocity",
        type=int,
        default=None,
        help="MIDI velocity (unset: the config's note.velocity, else 100)",
    )
    parser.add_argument(
        "--note_length",
        type=positive_float,
        default=None,
        help="seconds from note-on to note-off (unset: the config's note.length_s, else "
        f"{default_length})",
    )
