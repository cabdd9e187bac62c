"""Command-line plumbing shared by every entry point.

* Defaults come from the environment or a ``.env`` file in the working folder
  (variables ``INVERSYNTH_<NAME>``, documented in ``.env.example``); options
  given on the command line override them.
* Bad input ends the program with one line, ``error: <what was wrong>``, and
  exit code 2, never a traceback; Ctrl-C ends it with exit code 130.

The options that several commands share are defined once, in :mod:`generators.options`.
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
    "env_default",
    "env_value",
    "make_parser",
    "non_negative_float",
    "non_negative_int",
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
