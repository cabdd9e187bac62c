"""The ``INVERSYNTH_*`` variables: where every option's default comes from.

* A variable is read from the process environment first, then from a ``.env``
  file in the working folder; an empty value (or only spaces) is unset, in
  either place.
* A line of ``.env`` that cannot be read, a ``.env`` that is a folder or a
  broken link, and an ``INVERSYNTH_*`` variable that no option reads (a
  misspelt name) are each an error of one line, never skipped.
* Every variable the toolkit reads is documented in ``.env.example``, which is
  also the list an unknown variable is told from (:func:`check_variables`).
"""

from __future__ import annotations

import argparse
import difflib
import io
import os
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, cast

from core.errors import InverSynthError

__all__ = [
    "ENV_PREFIX",
    "check_variables",
    "env_default",
    "env_value",
    "known_variables",
    "parse_bool",
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
