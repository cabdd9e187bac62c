"""Command-line plumbing shared by every entry point.

* Defaults come from the environment or a ``.env`` file in the working folder
  (variables ``INVERSYNTH_<NAME>``, documented in ``.env.example``); options
  given on the command line override them. An empty variable is unset, and an
  ``INVERSYNTH_*`` variable that no option reads (a misspelt name) is an error.
* Bad input ends the program with one line, ``error: <what was wrong>``, and
  exit code 2, never a traceback; Ctrl-C ends it with exit code 130, SIGTERM
  with 143, both after the same clean-up.
* A boolean option is ``--name`` / ``--no_name`` (:class:`BooleanFlag`), its
  default from ``INVERSYNTH_<NAME>`` (true or false); a flag that only ever
  turns something off is ``--no_name`` alone (``--no_progress``).

The options that several commands share are defined once, in :mod:`generators.options`.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import io
import math
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

from generators.errors import InverSynthError
from generators.interrupts import Terminated, install, raise_if_interrupted

__all__ = [
    "BooleanFlag",
    "HelpFormatter",
    "Terminated",
    "bounded_float",
    "bounded_int",
    "check_variables",
    "env_default",
    "env_value",
    "known_variables",
    "make_parser",
    "non_negative_float",
    "non_negative_int",
    "one_of",
    "parse_bool",
    "positive_float",
    "positive_int",
    "run_cli",
]

ENV_PREFIX = "INVERSYNTH_"
ENV_FILE = Path(".env")
# Every variable the toolkit reads, documented where users look for them. A test
# checks that it names exactly the variables of the env_default(...) calls, so it
# is also the list an unknown (misspelt) variable is told from.
ENV_EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"
T = TypeVar("T")


class _EnvFile(dict[str, str]):
    """The values of a ``.env`` file, and the line each name was set on."""

    def __init__(self, values: dict[str, str], lines: dict[str, int]) -> None:
        super().__init__(values)
        self.lines = lines


def _binding_line(binding: Any) -> int:
    """The line of a binding's name (python-dotenv counts the blank lines before it into it)."""
    text = binding.original.string
    return int(binding.original.line) + text[: len(text) - len(text.lstrip())].count("\n")


def _env_file_exists(path: Path) -> bool:
    """Whether there is a ``.env`` file to read; a folder or a broken link there is an error."""
    if path.is_file():
        return True
    if path.is_symlink() and not path.exists():
        raise InverSynthError(
            f"{str(path.absolute())!r} is a broken link (to {str(path.readlink())!r}); "
            "remove it or point it at a file"
        )
    if path.exists():
        raise InverSynthError(f"{str(path.absolute())!r} is not a file; remove it or make it one")
    return False


@cache
def _dotenv() -> dict[str, str]:
    """The ``.env`` file of the working folder, read once ({} when absent).

    A line that cannot be parsed is refused, never skipped: a skipped line
    would quietly leave its option at the built-in default. So is a ``.env``
    that is a folder or a broken link: the user meant a file there.
    """
    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    if not _env_file_exists(ENV_FILE):
        return {}
    try:
        text = ENV_FILE.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InverSynthError(f"cannot read {str(ENV_FILE.absolute())!r}: {exc}") from None
    for number, line in enumerate(text.split("\n"), start=1):
        if "\0" in line:  # python-dotenv would read it as a name without a value
            raise InverSynthError(f"{ENV_FILE} line {number}: cannot read it: it holds NUL bytes")
    lines: dict[str, int] = {}
    for binding in parse_stream(io.StringIO(text)):
        key = binding.key
        bare = key is not None and binding.value is None
        odd = key is not None and (key.startswith(ENV_PREFIX) or not key.isidentifier())
        if binding.error or (bare and odd):
            line = binding.original.string.strip()
            raise InverSynthError(
                f"{ENV_FILE} line {_binding_line(binding)}: cannot read {line!r:.80}; "
                "expected NAME=value (a comment starts with #)"
            )
        if key is not None:
            lines[key] = _binding_line(binding)
    values = dotenv_values(stream=io.StringIO(text))
    return _EnvFile({k: v for k, v in values.items() if v is not None}, lines)


def _env_source(name: str) -> tuple[str, str | None]:
    """``(where, raw value)`` of ``INVERSYNTH_<name>``: the process environment first, then ``.env``.

    An empty value (or only spaces) is unset, in either place: ``INVERSYNTH_OUTPUT_DIR=``
    must not mean the working folder.
    """
    key = ENV_PREFIX + name.upper()
    if os.environ.get(key, "").strip():
        return "the environment", os.environ[key]
    text = _dotenv().get(key)
    return ".env", text if text is not None and text.strip() else None


def _env_file_place(key: str) -> str:
    """``.env line N`` for a variable set in ``.env`` (``.env`` where the line is unknown)."""
    line = getattr(_dotenv(), "lines", {}).get(key)
    return f"{ENV_FILE} line {line}" if line else str(ENV_FILE)


def env_value(name: str) -> str | None:
    """Raw value of ``INVERSYNTH_<name>``: the process environment first, then ``.env``; empty is None."""
    return _env_source(name)[1]


@cache
def known_variables() -> frozenset[str]:
    """The ``INVERSYNTH_*`` variables the toolkit reads: those ``.env.example`` documents."""
    try:
        text = ENV_EXAMPLE.read_text(encoding="utf-8")
    except OSError:
        return frozenset()
    return frozenset(re.findall(rf"^#?\s*({ENV_PREFIX}[A-Z0-9_]+)=", text, flags=re.MULTILINE))


def check_variables() -> None:
    """Refuse ``INVERSYNTH_*`` variables that no option reads (a misspelt name), naming the closest.

    A misspelt variable would otherwise be ignored in silence and its option
    left at the default: ``INVERSYNTH_NUM_EXAMPLE=200`` would make 20,000 examples.

    Raises
    ------
    InverSynthError
        One line naming every unknown variable, where it was set, and the
        known name closest to it.
    """
    known = known_variables()
    if not known:  # no .env.example beside the code: nothing to tell them from
        return
    found = {
        key: "the environment"
        for key, value in os.environ.items()
        if key.startswith(ENV_PREFIX) and value.strip()
    }
    for key, value in _dotenv().items():
        if key.startswith(ENV_PREFIX) and key not in found and value.strip():
            found[key] = _env_file_place(key)
    unknown = []
    for key, where in sorted(found.items()):
        if key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        unknown.append(f"{key} (in {where}){hint}")
    if unknown:
        raise InverSynthError(
            f"unknown variable{'s' if len(unknown) > 1 else ''} {'; '.join(unknown)} "
            f"(the known ones are in .env.example)"
        )


def parse_bool(text: str) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off, any case; empty is false)."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(
        f"expected true or false (or 1/0, yes/no, on/off), got {text!r}"
    )


def env_default(name: str, default: T, kind: Callable[[str], T] | None = None) -> T:
    """Default for an option: ``INVERSYNTH_<NAME>`` parsed by ``kind``, else ``default``.

    Parameters
    ----------
    name : str
        Variable name without the prefix, e.g. ``"NUM_EXAMPLES"``.
    default : T
        Used when the variable is unset (or set to nothing: an empty value is unset).
    kind : callable, optional
        Parser for the text (an argparse ``type``); defaults to the type of
        ``default`` (``bool`` accepts true/false, 1/0, yes/no, on/off).

    Raises
    ------
    InverSynthError
        When the variable is set but cannot be parsed; the message names the
        variable and where it was set (``INVERSYNTH_SEED in .env: expected an
        integer >= 0, got '-1' (.env line 4)``).
    """
    where, text = _env_source(name)
    if text is None:
        return default
    key = ENV_PREFIX + name.upper()
    line = getattr(_dotenv(), "lines", {}).get(key) if where == ".env" else None
    place = f" ({ENV_FILE} line {line})" if line else ""
    parser: Callable[[str], Any]
    if kind is not None:
        parser = kind
    elif isinstance(default, bool):
        parser = parse_bool
    elif default is None:
        parser = str
    else:
        parser = cast(Callable[[str], Any], type(default))
    try:
        value = cast(T, parser(text))
    except argparse.ArgumentTypeError as exc:
        raise InverSynthError(f"{key} in {where}: {exc}{place}") from None
    except (TypeError, ValueError):
        kind_name = getattr(parser, "__name__", "value").lstrip("_").replace("_", " ")
        raise InverSynthError(
            f"{key} in {where}: expected a {kind_name}, got {text!r}{place}"
        ) from None
    return value


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
    restore = install()  # a signal lost in a finalizer is raised again (generators.interrupts)
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
