"""Dexed configs: which DX7 parameters vary, over which levels, and the note played.

A config is a JSON file (``plugin_config/dexed_*.json``) in the spirit of the
plugin configs::

    {
      "comment": "free text",
      "parameters": [
        {"name": "op2_output_level", "n_levels": 8, "group": "Operator 2"},
        {"name": "op2_frequency_coarse", "dx7_values": [1, 2, 3, 4]},
        {"name": "algorithm", "values": [0, 4, 31]}
      ],
      "fixed_parameters": [
        {"name": "algorithm", "value": 4},
        {"name": "op3_output_level", "dx7_value": 0}
      ],
      "note": {"pitch": 60, "velocity": 100, "length_s": 0.75}
    }

``parameters`` (at least one)
    The varied parameters, in label column order; ``name`` is one of the 145
    engine parameters (``python -m generators.dexed describe`` lists them). The
    levels are given one of three ways, in the engine's units (continuous
    parameters in [0, 1], discrete ones as integers; see
    :mod:`generators.dexed.engine`):

    * ``values``: at least two numbers;
    * ``n_levels`` (>= 2), evenly spaced from ``low`` to ``high`` (default the
      whole range: 0 to 1, or 0 to the discrete parameter's maximum);
    * ``dx7_values``: DX7 integers (an output level 0..99, a coarse ratio 0..31),
      the readable way to pick a continuous parameter's levels.

    A continuous level is moved to its DX7 step (``round(value * max) / max``),
    the value the engine plays, so labels, stored values and ``.syx`` files agree.
    ``group`` (optional) names the parameter's group for display; it defaults
    to the engine's (``"Operator 2"``, ``"LFO"``, ...). ``ordered`` (optional,
    true or false) says whether the levels are ordered values (training
    targets, the search and the report treat a near miss as near) or choices;
    it defaults to the engine's: continuous parameters are ordered, discrete
    ones (algorithm, LFO wave, oscillator mode, curves, syncs) are not.
``fixed_parameters`` (optional)
    Parameters held at ``value`` (engine units) or ``dx7_value`` for every
    example. Parameters named nowhere keep Dexed's INIT VOICE values (algorithm
    1, a sine on OP1 at full level, the other operators at level 0).
``note`` (optional)
    ``pitch`` (0-127, default 60), ``velocity`` (1-127, default 100), ``length_s``
    (note-on to note-off, default 3/4 of the example).
``comment`` (optional, also in every parameter entry)
    Ignored.

:func:`load_dexed_config` checks all of it against the engine's parameter
table before anything renders: an unknown name, a level outside a parameter's
range, a fraction for a discrete parameter, two levels that play as one DX7
step, or a parameter named twice is one line of error that echoes the bad value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InverSynthError
from generators.config_files import (
    check_keys,
    check_unique_names,
    entry_name,
    is_number,
    parameter_entries,
    read_config,
)
from generators.dexed.engine import EngineParameter, engine_parameter

__all__ = ["DexedConfig", "Fixed", "Varied", "load_dexed_config"]

_TOP_KEYS = {"parameters", "fixed_parameters", "note", "comment"}
_VARIED_KEYS = {
    "name", "values", "dx7_values", "n_levels", "low", "high", "group", "ordered", "comment",
}  # fmt: skip
_FIXED_KEYS = {"name", "value", "dx7_value", "comment"}
_NOTE_KEYS = {"pitch", "velocity", "length_s"}


@dataclass(frozen=True)
class Varied:
    """A varied parameter: its position in the engine's 145-vector and its levels."""

    name: str
    column: int
    levels: tuple[float, ...]
    spacing: str
    group: str
    ordered: bool


@dataclass(frozen=True)
class Fixed:
    name: str
    column: int
    value: float


@dataclass(frozen=True)
class DexedConfig:
    """A checked Dexed config."""

    raw: dict[str, Any]
    source: str  # file name or "dexed_config", for messages
    varied: tuple[Varied, ...]
    fixed: tuple[Fixed, ...]
    note: dict[str, Any]


def _engine_value(p: EngineParameter, value: Any, where: str) -> float:
    """A value in engine units, checked; a continuous one moved to its DX7 step."""
    if not is_number(value):
        raise InverSynthError(f"{where}: levels are numbers, got {value!r}")
    if p.discrete:
        if not float(value).is_integer():
            raise InverSynthError(f"{where}: discrete ({p.range_text}), got the fraction {value!r}")
        if not 0 <= value <= p.max_value:
            raise InverSynthError(f"{where}: {value!r} is outside its range, {p.range_text}")
        return float(value)
    if not 0.0 <= value <= 1.0:
        raise InverSynthError(
            f"{where}: {value!r} is outside [0, 1] (continuous values are DX7 value / "
            f"{p.max_value}; give DX7 integers with 'dx7_values')"
        )
    return round(value * p.max_value) / p.max_value


def _dx7_value(p: EngineParameter, value: Any, where: str) -> float:
    """A DX7 integer, checked, in engine units."""
    if not is_number(value) or not float(value).is_integer():
        raise InverSynthError(f"{where}: DX7 values are integers, got {value!r}")
    if not 0 <= value <= p.max_value:
        raise InverSynthError(f"{where}: DX7 value {value!r} is outside 0..{p.max_value}")
    return p.from_dx7(int(value))


def _levels(
    p: EngineParameter, entry: dict[str, Any], where: str
) -> tuple[list[float], list[Any], str]:
    """The levels in engine units, the numbers they were given as, and their spacing."""
    ways = [k for k in ("values", "dx7_values", "n_levels") if k in entry]
    if len(ways) != 1:
        raise InverSynthError(
            f"{where}: give exactly one of 'values', 'dx7_values' or 'n_levels', got {ways or 'none'}"
        )
    if ("low" in entry or "high" in entry) and ways != ["n_levels"]:
        raise InverSynthError(f"{where}: 'low' and 'high' go with 'n_levels'")
    if ways == ["n_levels"]:
        n = entry["n_levels"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 2:
            raise InverSynthError(f"{where}: 'n_levels' must be an integer >= 2, got {n!r}")
        top = float(p.max_value) if p.discrete else 1.0
        low, high = entry.get("low", 0.0), entry.get("high", top)
        for label, bound in (("low", low), ("high", high)):
            _engine_value(p, bound, f"{where} {label}")
        grid = np.linspace(low, high, n).tolist()
        levels = [_engine_value(p, v, f"{where} (n_levels {n} from {low} to {high})") for v in grid]
        return levels, grid, "linear"
    key = ways[0]
    given = entry[key]
    if not isinstance(given, list) or len(given) < 2:
        raise InverSynthError(f"{where}: {key!r} must be a list of at least 2, got {given!r}")
    convert = _engine_value if key == "values" else _dx7_value
    return [convert(p, v, f"{where} level") for v in given], given, "custom"


def _parse_varied(entry: Any, where: str) -> Varied:
    name = entry_name(entry, where, what="a Dexed parameter name")
    column, p = engine_parameter(name, where=where)
    where = f"{where} {name!r}"
    check_keys(entry, _VARIED_KEYS, where)
    levels, given, spacing = _levels(p, entry, where)
    steps = [p.to_dx7(v) for v in levels]
    for i, step in enumerate(steps):
        if step in steps[:i]:
            raise InverSynthError(
                f"{where}: levels {given[steps.index(step)]!r} and {given[i]!r} both play as "
                f"DX7 value {step} (its steps are 0..{p.max_value}); levels must be distinct steps"
            )
    group = entry.get("group", p.group)
    if not isinstance(group, str) or not group:
        raise InverSynthError(f"{where}: 'group' must be a non-empty string, got {group!r}")
    ordered = entry.get("ordered", p.ordered)
    if not isinstance(ordered, bool):
        raise InverSynthError(f"{where}: 'ordered' must be true or false, got {ordered!r}")
    return Varied(
        name=name,
        column=column,
        levels=tuple(levels),
        spacing=spacing,
        group=group,
        ordered=ordered,
    )


def _parse_fixed(entry: Any, where: str) -> Fixed:
    name = entry_name(entry, where, what="a Dexed parameter name")
    column, p = engine_parameter(name, where=where)
    where = f"{where} {name!r}"
    check_keys(entry, _FIXED_KEYS, where)
    if ("value" in entry) == ("dx7_value" in entry):
        raise InverSynthError(f"{where}: give exactly one of 'value' or 'dx7_value'")
    if "value" in entry:
        return Fixed(name, column, _engine_value(p, entry["value"], where))
    return Fixed(name, column, _dx7_value(p, entry["dx7_value"], where))


def _note(data: dict[str, Any], source: str) -> dict[str, Any]:
    note = data.get("note", {})
    if not isinstance(note, dict):
        raise InverSynthError(f"{source}: 'note' must be an object, got {note!r}")
    check_keys(note, _NOTE_KEYS, f"{source}: 'note'")
    bounds = {"pitch": (0, 127), "velocity": (1, 127)}
    for key, value in note.items():
        if key in bounds:
            low, high = bounds[key]
            if not (is_number(value) and float(value).is_integer() and low <= value <= high):
                raise InverSynthError(
                    f"{source}: note.{key} must be an integer in [{low}, {high}], got {value!r}"
                )
        elif not (is_number(value) and value > 0):
            raise InverSynthError(f"{source}: note.{key} must be a number > 0, got {value!r}")
    return dict(note)


def load_dexed_config(source: dict[str, Any] | str | Path) -> DexedConfig:
    """Read and check a Dexed config (a dict, or the path of its JSON file).

    Raises
    ------
    InverSynthError
        One line naming the file, the parameter and the bad value.
    """
    data, label = read_config(
        source, kind="Dexed config", dict_label="dexed_config", top_keys=_TOP_KEYS
    )
    varied_raw, fixed_raw = parameter_entries(data, label)
    varied = tuple(_parse_varied(e, f"{label}: parameter") for e in varied_raw)
    fixed = tuple(_parse_fixed(e, f"{label}: fixed parameter") for e in fixed_raw)
    names = [p.name for p in varied] + [p.name for p in fixed]
    check_unique_names(names, label)
    return DexedConfig(
        raw=json.loads(json.dumps(data)),  # a private, JSON-clean copy
        source=label,
        varied=varied,
        fixed=fixed,
        note=_note(data, label),
    )
