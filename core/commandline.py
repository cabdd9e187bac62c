"""Command-line plumbing shared by every entry point: the parser, option types, ``run_cli``.

* Defaults come from the ``INVERSYNTH_*`` variables (:mod:`core.environment`);
  options given on the command line override them. Every parser is made by
  :func:`make_parser`, which first refuses unknown variables.
* Bad input ends the program with one line, ``error: <what was wrong>``, and
  exit code 2, never a traceback; Ctrl-C ends it with exit code 130, SIGTERM
  with 143, both after the same clean-up (:func:`run_cli`).
* A boolean option is ``--name`` / ``--no_name`` (:class:`BooleanFlag`), its
  default from ``INVERSYNTH_<NAME>`` (true or false); a flag that only ever
  turns something off is ``--no_name`` alone (``--no_progress``).

The options that several commands share are defined once, in :mod:`core.options`.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from core.environment import check_variables
from core.errors import InverSynthError
from core.interrupts import Terminated, install, raise_if_interrupted

__all__ = [
    "BooleanFlag",
    "HelpFormatter",
    "bounded_float",
    "bounded_int",
    "make_parser",
    "non_negative_float",
    "non_negative_int",
    "one_of",
    "positive_float",
    "positive_int",
    "run_cli",
]


def _number(
    text: str, kind: type[int] | type[float], test: Callable[[float], bool], what: str
) -> Any:
    shown = text if len(text) <= 40 else f"{text[:24]}...({len(text)} characters)"
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {shown!r}") from None
    finite = isinstance(value, int) or math.isfinite(value)  # an int may exceed any float
    if not (finite and test(value)):
        raise argparse.ArgumentTypeError(f"expected {what}, got {shown!r}")
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


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """argparse type: an integer in ``[low, high]`` (the message says the range)."""

    def parse(text: str) -> int:
        value: int = _number(
            text, int, lambda v: low <= v <= high, f"an integer in [{low}, {high}]"
        )
        return value

    parse.__name__ = f"integer in [{low}, {high}]"
    return parse


def one_of(choices: Sequence[str]) -> Callable[[str], str]:
    """argparse type: one of ``choices`` (for a variable's value, which argparse never checks)."""

    def parse(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text

    parse.__name__ = f"one of {', '.join(choices)}"
    return parse


def bounded_float(low: float, high: float, unit: str = "") -> Callable[[str], float]:
    """argparse type: a number in ``[low, high]`` (``unit`` shown in the message)."""
    what = f"a number in [{low:g}, {high:g}]" + (f" {unit}" if unit else "")

    def parse(text: str) -> float:
        value: float = _number(text, float, lambda v: low <= v <= high, what)
        return value

    parse.__name__ = what
    return parse


class BooleanFlag(argparse.Action):
    """``--name`` sets an option, ``--no_name`` clears it: the toolkit's one style for booleans.

    The default (from the option's ``INVERSYNTH_<NAME>`` variable) decides
    what happens when neither is given.
    """

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        names = list(option_strings)
        for option in option_strings:
            if not option.startswith("--"):
                raise ValueError(f"a boolean flag needs a long option, got {option!r}")
            names.append("--no_" + option[2:])
        super().__init__(names, dest, nargs=0, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, not (option_string or "").startswith("--no_"))

    def format_usage(self) -> str:
        return " | ".join(self.option_strings)


class _Parser(argparse.ArgumentParser):
    """argparse with the toolkit's one-line error format and exit code."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``(default: X)`` after an option's help, unless the help says it already or X says nothing.

    Left out: a default of None (no value: the help tells what happens), a
    flag that is off, a required option, and a help text that names its default.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        flag = action.nargs == 0 and action.default is not True
        silent = flag or action.default is None or action.required
        if silent or "default" in text.lower():
            return text
        return super()._get_help_string(action)


def make_parser(prog: str | None = None, description: str | None = None) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` whose errors are one line, like every other error of the toolkit,
    and whose help shows a default only where it says something (:class:`HelpFormatter`).

    Every command builds its parser here, before its options read their
    variables: an unknown ``INVERSYNTH_*`` variable is refused first
    (:func:`check_variables`).
    """
    check_variables()
    return _Parser(prog=prog, description=description, formatter_class=HelpFormatter)


def run_cli(
    main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None
) -> NoReturn:
    """Call ``main(argv)`` and exit; bad input becomes one line on stderr and exit code 2.

    Ctrl-C exits with code 130 and SIGTERM with 143, after the same clean-up
    (a dataset run keeps what it finished, for ``--resume``). A closed output
    pipe (``... | head``) ends the program quietly.
    """
    restore = install()  # a signal lost in a finalizer is raised again (core.interrupts)
    try:
        code = main(argv)
        raise_if_interrupted()
    except InverSynthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Terminated:
        print("terminated (run again with --resume where the command has it)", file=sys.stderr)
        sys.exit(143)
    except KeyboardInterrupt:
        print("interrupted (run again with --resume where the command has it)", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        _quiet_broken_pipe()
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        _quiet_broken_pipe()
    finally:
        restore()
    sys.exit(code or 0)


def _quiet_broken_pipe() -> NoReturn:
    """The reader of our output went away (``| head``): exit without a traceback, as SIGPIPE would."""
    # Python flushes stdout again at exit; point it at /dev/null so that flush cannot fail.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(128 + signal.SIGPIPE)
