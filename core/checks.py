"""Checks of single values at an API's boundary, with the toolkit's one-line messages.

Every check returns the value in its canonical type, or raises
:class:`~core.errors.InverSynthError` with a message that names the
argument and echoes the bad value (``n_examples must be a positive integer,
got -3``). ``name`` is how the caller's user knows the value: ``"seed"`` in a
library call, ``"--seed"`` in a command, ``"config.json: 'id'"`` in a file.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

import numpy as np

from core.errors import InverSynthError

__all__ = [
    "MAX_CHECK_EXAMPLES",
    "MAX_RENDER_BYTES",
    "check_audio",
    "check_float",
    "check_int",
    "check_non_negative_int",
    "check_plain_name",
    "check_positive_int",
    "check_render_size",
]

# What a synth's ``check`` command renders at once, in memory: beyond these a
# count is a typing mistake that would end in a memory error, not a check.
MAX_CHECK_EXAMPLES = 100_000
MAX_RENDER_BYTES = 2**30  # float32 audio


def _real(value: object) -> float | None:
    """A finite real number (not a bool) as a float, else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float: 10**400
        return None
    return number if math.isfinite(number) else None


def _int_requirement(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"an integer in [{low}, {high}]"
    if low == 1:
        return "a positive integer"
    if low is not None:
        return f"an integer >= {low}"
    if high is not None:
        return f"an integer <= {high}"
    return "an integer"


def check_int(value: object, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` in ``[low, high]`` (either bound may be left open).

    Integers, NumPy integers and integral floats (``60.0``) pass; booleans,
    strings, fractions and non-finite numbers do not.
    """
    number = _real(value)
    if (
        number is None
        or not number.is_integer()
        or not _within(number, low, high, low_inclusive=True)
    ):
        shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:24]}..."
        raise InverSynthError(f"{name} must be {_int_requirement(low, high)}, got {shown}")
    return int(number)


def _within(number: float, low: float | None, high: float | None, *, low_inclusive: bool) -> bool:
    above = low is None or (number >= low if low_inclusive else number > low)
    return above and (high is None or number <= high)


def check_render_size(n_examples: object, n_samples: int, *, name: str) -> int:
    """``n_examples`` (1 to :data:`MAX_CHECK_EXAMPLES`) whose float32 audio of
    ``n_samples`` samples each fits :data:`MAX_RENDER_BYTES` (1 GiB)."""
    n = check_int(n_examples, name, low=1, high=MAX_CHECK_EXAMPLES)
    n_bytes = 4 * n * int(n_samples)
    if n_bytes > MAX_RENDER_BYTES:
        raise InverSynthError(
            f"{name} {n} of {int(n_samples):,} samples each is {n_bytes / 2**30:.1f} GiB of audio; "
            f"at most {MAX_RENDER_BYTES // 2**30} GiB is rendered at once: give fewer "
            f"(at most {MAX_RENDER_BYTES // (4 * int(n_samples)):,}) or shorter examples"
        )
    return n


def check_positive_int(value: object, name: str) -> int:
    """``value`` as an ``int`` > 0; see :func:`check_int`."""
    return check_int(value, name, low=1)


def check_non_negative_int(value: object, name: str) -> int:
    """``value`` as an ``int`` >= 0; see :func:`check_int`."""
    return check_int(value, name, low=0)


def check_float(
    value: object,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    unit: str = "",
) -> float:
    """``value`` as a finite ``float`` in ``[low, high]`` (``(low, high]`` without ``low_inclusive``).

    ``unit`` (``"s"``, ``"Hz"``) is shown after the bounds in the message.
    Booleans and strings do not pass.
    """
    number = _real(value)
    if number is None or not _within(number, low, high, low_inclusive=low_inclusive):
        suffix = f" {unit}" if unit else ""
        if low is not None and high is not None:
            bracket = "[" if low_inclusive else "("
            requirement = f"in {bracket}{low:g}, {high:g}]{suffix}"
        elif low is not None:
            requirement = f"{'>=' if low_inclusive else '>'} {low:g}{suffix}"
        elif high is not None:
            requirement = f"<= {high:g}{suffix}"
        else:
            requirement = f"a finite number{suffix}"
        raise InverSynthError(f"{name} must be {requirement}, got {value!r}")
    return number


def check_audio(
    audio: np.ndarray,
    *,
    name: str,
    n_samples: int | None = None,
    batch: bool = False,
    dtype: type[np.floating[Any]] = np.float32,
    length_reason: str = "",
) -> np.ndarray:
    """Audio given to a function, checked: its shape, its length, finite samples.

    The one audio check: the reconstruction metrics, the matching distance,
    the matchers and the commands' inputs all call it.

    Parameters
    ----------
    audio : array-like [n_samples], or [batch, n_samples] when ``batch``
        ``batch`` also takes one signal [n_samples] as a batch of one.
    name : str
        What the audio is, for the error message (``"reference"``, a file name).
    n_samples : int, optional
        The length it must have; otherwise any length > 0.
    batch : bool
    dtype : numpy float type
    length_reason : str
        Why it must have ``n_samples`` samples, for the error message
        (``"the 'fm' synth's length at 16384 Hz"``).

    Returns
    -------
    audio : np.ndarray [n_samples] or [batch, n_samples], ``dtype``

    Raises
    ------
    InverSynthError
        Another shape or length, no samples, or NaN or infinite samples.
    """
    x = np.asarray(audio, dtype=dtype)
    if batch and x.ndim == 1:
        x = x[None, :]
    if n_samples is None:
        good = x.ndim == (2 if batch else 1) and x.shape[-1] > 0
        expected = "[n_samples] or [batch, n_samples]" if batch else "[n_samples]"
        expected += " with n_samples > 0"
    else:
        good = x.ndim == (2 if batch else 1) and x.shape[-1] == n_samples
        expected = f"[batch, {int(n_samples)}]" if batch else f"[{int(n_samples)}]"
    if not good:
        reason = f" ({length_reason})" if length_reason else ""
        raise InverSynthError(f"{name} must have shape {expected}{reason}, got {np.shape(audio)}")
    if not np.isfinite(x).all():
        raise InverSynthError(f"{name} contains NaN or infinite samples")
    return x


def check_plain_name(name: str, *, what: str, folder_option: str) -> str:
    """``name`` if it names a file or folder directly inside its folder, never elsewhere.

    A plain name has no folder separators, does not start with "." (so not
    ``.`` or ``..``) and has no surrounding spaces: ``../../escape`` would put
    the output outside its folder, ``.`` into the folder itself.

    Parameters
    ----------
    name : str
    what : str
        What the name is, for the message ("a run name").
    folder_option : str
        The option that chooses the folder instead ("--output_dir").

    Raises
    ------
    InverSynthError
        ``name`` is not a plain name.
    """
    if (
        not isinstance(name, str)
        or not name
        or name.startswith(".")
        or any(sep in name for sep in ("/", "\\", os.sep, "\0"))
        or name != name.strip()
    ):
        raise InverSynthError(
            f"{what} must be a plain name (no folders, not starting with '.', no surrounding "
            f"spaces), got {name!r}; choose the folder with {folder_option}"
        )
    return name
