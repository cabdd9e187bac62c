"""Command-line plumbing shared by every entry point.

* Defaults come from the environment or a ``.env`` file in the working folder
  (variables ``INVERSYNTH_<NAME>``, documented in ``.env.example``); options
  given on the command line override them.
* Bad input ends the program with one line, ``error: <what was wrong>``, and
  exit code 2, never a traceback; Ctrl-C ends it with exit code 130.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

from generators.errors import InverSynthError

__all__ = [
    "add_dataset_arguments",
    "create_dataset_from_args",
    "dataset_path",
    "env_default",
    "non_negative_float",
    "non_negative_int",
    "parse_shard",
    "positive_float",
    "positive_int",
    "run_cli",
]

ENV_PREFIX = "INVERSYNTH_"
T = TypeVar("T")


@cache
def _dotenv() -> dict[str, str]:
    """The ``.env`` file of the working folder, read once ({} when absent)."""
    from dotenv import dotenv_values

    path = Path(".env")
    if not path.is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def env_value(name: str) -> str | None:
    """Raw value of ``INVERSYNTH_<name>``: the process environment first, then ``.env``."""
    key = ENV_PREFIX + name.upper()
    if key in os.environ:
        return os.environ[key]
    return _dotenv().get(key)


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(text)


def env_default(name: str, default: T, kind: Callable[[str], T] | None = None) -> T:
    """Default for an option: ``INVERSYNTH_<NAME>`` parsed by ``kind``, else ``default``.

    Parameters
    ----------
    name : str
        Variable name without the prefix, e.g. ``"NUM_EXAMPLES"``.
    default : T
        Used when the variable is unset.
    kind : callable, optional
        Parser for the text; defaults to the type of ``default`` (``bool``
        accepts 1/0, true/false, yes/no, on/off).

    Raises
    ------
    InverSynthError
        When the variable is set but cannot be parsed; the message names both.
    """
    text = env_value(name)
    if text is None:
        return default
    parser: Callable[[str], Any]
    if kind is not None:
        parser = kind
    elif isinstance(default, bool):
        parser = _parse_bool
    elif default is None:
        parser = str
    else:
        parser = cast(Callable[[str], Any], type(default))
    try:
        value = cast(T, parser(text))
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        raise InverSynthError(
            f"environment/.env variable {ENV_PREFIX}{name.upper()}={text!r} is not a valid "
            f"{getattr(parser, '__name__', 'value').lstrip('_').replace('_', ' ')}"
        ) from None
    return value


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with 1 <= K <= N."""
    try:
        k_text, n_text = text.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise InverSynthError(f"--shard must look like K/N (e.g. 2/8), got {text!r}") from None
    if not 1 <= k <= n:
        raise InverSynthError(f"--shard K/N needs 1 <= K <= N, got {text!r}")
    return k, n


def _number(
    text: str, kind: type[int] | type[float], test: Callable[[float], bool], what: str
) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not (math.isfinite(value) and test(value)):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer > 0."""
    value: int = _number(text, int, lambda v: v > 0, "a positive integer")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value: int = _number(text, int, lambda v: v >= 0, "an integer >= 0")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value: float = _number(text, float, lambda v: v > 0, "a positive number")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value: float = _number(text, float, lambda v: v >= 0, "a number >= 0")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse with the toolkit's one-line error format and exit code."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def make_parser(prog: str | None = None, description: str | None = None) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` whose errors are one line, like every other error of the toolkit."""
    return _Parser(
        prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )


def add_dataset_arguments(
    parser: argparse.ArgumentParser, *, default_name: str, default_examples: int = 20_000
) -> None:
    """The options every dataset-making command shares (names as in the first implementation)."""
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
    g.add_argument(
        "--length",
        type=positive_float,
        default=env_default("LENGTH", 1.0, positive_float),
        help="seconds per example",
    )
    g.add_argument(
        "--sample_rate",
        type=positive_int,
        default=env_default("SAMPLE_RATE", 16384, positive_int),
        help="Hz",
    )
    g.add_argument(
        "--seed",
        type=int,
        default=env_default("SEED", 0, int),
        help="random seed (>= 0): the same seed gives the same bytes, whatever --workers or --shard",
    )
    g.add_argument(
        "--workers",
        type=positive_int,
        default=env_default("WORKERS", os.cpu_count() or 1, positive_int),
        help="rendering processes",
    )
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
    g.add_argument("--no_progress", action="store_true", help="no progress bar (for logs)")


def dataset_path(directory: Path, name: str, shard: tuple[int, int] | None = None) -> Path:
    """``{directory}/{name}_data.hdf5``, or ``..._data.shard-K-of-N.hdf5`` for a shard."""
    if shard is None or shard == (1, 1):
        return Path(directory) / f"{name}_data.hdf5"
    k, n = shard
    width = len(str(n))
    return Path(directory) / f"{name}_data.shard-{k:0{width}d}-of-{n}.hdf5"


def n_samples_from_args(args: argparse.Namespace) -> int:
    """Samples per example from ``--length`` (s) and ``--sample_rate`` (Hz)."""
    n = round(args.length * args.sample_rate)
    if n <= 0:
        raise InverSynthError(
            f"--length {args.length} s at --sample_rate {args.sample_rate} Hz gives no samples"
        )
    return n


def create_dataset_from_args(generator: Any, args: argparse.Namespace) -> Path:
    """Run a :class:`~generators.generator.DatasetCreator` as the dataset options say."""
    from generators.generator import DatasetCreator

    if args.seed < 0:
        raise InverSynthError(f"--seed must be >= 0, got {args.seed}")
    shard = parse_shard(args.shard) if args.shard else None
    path = dataset_path(args.dataset_directory, args.name, shard)
    creator = DatasetCreator(
        generator,
        path=path,
        n_examples=args.num_examples,
        seed=args.seed,
        workers=args.workers,
        chunk_size=args.chunk_size,
        shard=shard or (1, 1),
        wav_directory=args.wavefile_directory if args.write_wavs else None,
        wav_prefix=args.name,
        progress=not args.no_progress,
    )
    out = creator.run(resume=args.resume, overwrite=args.overwrite)
    print(f"dataset: {out}")
    return out


def run_cli(
    main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None
) -> NoReturn:
    """Call ``main(argv)`` and exit; bad input becomes one line on stderr and exit code 2."""
    try:
        code = main(argv)
    except InverSynthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted (run again with --resume where the command has it)", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
