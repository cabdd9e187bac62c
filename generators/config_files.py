"""Synth config files (plugins, the DX7): reading the JSON and checking what every kind shares.

A config names the parameters to vary (``parameters``) and those held fixed
(``fixed_parameters``), each an object with a ``name``; each kind adds keys of
its own and checks them against its engine. Errors are one line naming the
file, the entry and the bad value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.errors import InverSynthError

__all__ = [
    "check_keys",
    "check_unique_names",
    "entry_name",
    "is_number",
    "parameter_entries",
    "read_config",
]


def is_number(x: object) -> bool:
    """A finite int or float, not a bool."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_keys(entry: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise InverSynthError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def entry_name(entry: Any, where: str, *, what: str) -> str:
    """The ``name`` of a parameter entry; ``what`` says what it names, for the message."""
    if not isinstance(entry, dict):
        raise InverSynthError(f"{where} must be an object, got {entry!r}")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise InverSynthError(f"{where}: 'name' ({what}) is required, got {name!r}")
    return name


def read_config(
    source: dict[str, Any] | str | Path, *, kind: str, dict_label: str, top_keys: set[str]
) -> tuple[dict[str, Any], str]:
    """A config as a dict, and the label its messages use (the file's path).

    ``kind`` names the config in messages (``"plugin config"``); a dict given
    directly is labelled ``dict_label``.
    """
    if isinstance(source, dict):
        data: Any = source
        label = dict_label
    else:
        path = Path(source)
        label = str(path)
        if not path.is_file():
            raise InverSynthError(f"{kind} {label!r} does not exist")
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InverSynthError(f"{kind} {label!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InverSynthError(f"{label}: a {kind} is a JSON object, got {data!r:.80}")
    check_keys(data, top_keys, label)
    return data, label


def parameter_entries(data: dict[str, Any], label: str) -> tuple[list[Any], list[Any]]:
    """The raw ``parameters`` (at least one) and ``fixed_parameters`` entries."""
    varied = data.get("parameters")
    if not isinstance(varied, list) or not varied:
        raise InverSynthError(
            f"{label}: 'parameters' must list at least one varied parameter, got {varied!r:.80}"
        )
    fixed = data.get("fixed_parameters", [])
    if not isinstance(fixed, list):
        raise InverSynthError(f"{label}: 'fixed_parameters' must be a list, got {fixed!r:.80}")
    return varied, fixed


def check_unique_names(names: Sequence[str], label: str) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InverSynthError(f"{label}: parameter(s) {repeated} named more than once")
