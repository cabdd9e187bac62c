"""Plugin configs: which plugin parameters vary, over which values; read and checked here.

A :class:`~generators.vst.synth.VSTGenerator` plays one MIDI note per example
on a plugin whose parameters are set from the example's classes. Which
parameters vary, and over which values, is a *plugin config*, a JSON file
(``plugin_config/*.json``)::

    {
      "plugin": "/usr/lib/vst/amsynth_vst.so",
      "parameters": [
        {"id": 4, "name": "osc1_waveform", "values": [0.0, 0.25, 0.5], "ordered": false},
        {"id": 11, "name": "filter_cutoff", "values": [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
         "ordered": true},
        {"name": "filter_resonance", "n_levels": 4, "low": 0.0, "high": 0.75, "group": "Filter"}
      ],
      "fixed_parameters": [
        {"id": 14, "name": "master_vol", "value": 0.67}
      ],
      "note": {"pitch": 60, "velocity": 100, "length_s": 0.5},
      "render": {"prime_s": 0.1, "settle_s": 0.3},
      "comment": "free text"
    }

``plugin`` (optional)
    Path of the plugin; the ``plugin=`` argument (``--plugin``) wins over it.
``parameters`` (at least one)
    The varied parameters, in label column order. ``name`` is required and
    must be the plugin's name of parameter ``id`` (``python -m
    generators.vst describe --plugin PATH`` lists them); without
    ``id`` the parameter is looked up by name. The levels are either
    ``values`` (at least two distinct numbers) or ``n_levels`` evenly spaced
    from ``low`` (0) to ``high`` (1); at most 32768 levels (labels are int16). Plugin values are normalized: every
    level lies in [0, 1]. A switch (a waveform selector, say) snaps to its
    nearest position, so give it the exact positions (amsynth's five
    waveforms are 0, 0.25, 0.5, 0.75, 1). ``group`` (optional) is the
    parameter's reporting group (``"Filter"``, ``"Amp envelope"``); without it
    the group follows from the name (:func:`generators.parameters.default_group`).
    ``ordered`` (true or false) says whether the levels are ordered values (a
    knob: a prediction one level off is a near miss) or unordered choices (a
    switch, a waveform: a level is right or wrong); training targets, the
    search's steps and the reports follow it. A config written before entries
    declared it gets :func:`generators.parameters.default_ordered` of the name.
``fixed_parameters`` (optional)
    Parameters held at ``value`` for every example. Parameters named nowhere
    keep the plugin's defaults. An entry may carry ``ordered`` too (``describe``
    writes it in its template), for when it is moved to ``parameters``; it is
    ignored here.
``note`` (optional)
    The MIDI note of every example: ``pitch`` (0-127, default 60),
    ``velocity`` (1-127, default 100), ``length_s`` (note-on to note-off,
    default half the example). Arguments of ``VSTGenerator`` win.
``render`` (optional)
    ``prime_s`` (0.1) and ``settle_s`` (0.3), the lead-in before every note
    that makes a render independent of the renders before it (see
    :mod:`generators.vst.host_main`).
``comment`` (optional, also allowed in every parameter entry)
    Ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.checks import check_int
from core.errors import InverSynthError
from generators.config_files import (
    check_keys,
    check_unique_names,
    entry_name,
    is_number,
    parameter_entries,
    read_config,
)
from generators.parameters import MAX_LEVELS

__all__ = [
    "INSTALL_HINT",
    "FixedEntry",
    "PluginConfig",
    "VariedEntry",
    "check_plugin_path",
    "load_plugin_config",
    "resolve_index",
]

INSTALL_HINT = "apt-get install -y amsynth dpf-plugins-vst"

_TOP_KEYS = {"plugin", "parameters", "fixed_parameters", "note", "render", "comment"}
_VARIED_KEYS = {"id", "name", "values", "n_levels", "low", "high", "group", "ordered", "comment"}
_FIXED_KEYS = {"id", "name", "value", "ordered", "comment"}
_NOTE_KEYS = {"pitch", "velocity", "length_s"}
_RENDER_KEYS = {"prime_s", "settle_s"}


@dataclass(frozen=True)
class VariedEntry:
    """A ``parameters`` entry: a plugin parameter and its levels."""

    name: str
    id: int | None
    levels: tuple[float, ...]
    spacing: str
    group: str | None = None  # reporting group; None: from the name (``default_group``)
    ordered: bool | None = None  # None: a config of before (``default_ordered`` of the name)


@dataclass(frozen=True)
class FixedEntry:
    """A ``fixed_parameters`` entry: a plugin parameter and its one value."""

    name: str
    id: int | None
    value: float


@dataclass(frozen=True)
class PluginConfig:
    """A checked plugin config (its structure and values; the plugin itself is checked later)."""

    raw: dict[str, Any]
    source: str  # file name or "plugin_config", for messages
    plugin: str | None
    varied: tuple[VariedEntry, ...]
    fixed: tuple[FixedEntry, ...]
    note: dict[str, Any]
    render: dict[str, Any]


def _entry_id(entry: dict[str, Any], where: str) -> int | None:
    if "id" not in entry:
        return None
    return check_int(entry["id"], f"{where}: 'id'", low=0)


def _unit_value(value: Any, where: str) -> float:
    if not is_number(value) or not 0.0 <= value <= 1.0:
        raise InverSynthError(
            f"{where}: plugin parameter values are normalized to [0, 1], got {value!r}"
        )
    return float(value)


def _parse_varied(entry: Any, where: str) -> VariedEntry:
    name = entry_name(entry, where, what="the plugin's parameter name")
    where = f"{where} {name!r}"
    check_keys(entry, _VARIED_KEYS, where)
    if ("values" in entry) == ("n_levels" in entry):
        raise InverSynthError(f"{where}: give either 'values' or 'n_levels' (with 'low', 'high')")
    if "values" in entry:
        if "low" in entry or "high" in entry:
            raise InverSynthError(f"{where}: 'low' and 'high' go with 'n_levels', not 'values'")
        values = entry["values"]
        if not isinstance(values, list) or len(values) < 2:
            raise InverSynthError(f"{where}: 'values' must be a list of at least 2, got {values!r}")
        if len(values) > MAX_LEVELS:
            raise InverSynthError(
                f"{where}: 'values' has {len(values)} levels; at most {MAX_LEVELS} "
                "(dataset labels are 16-bit integers)"
            )
        levels = tuple(_unit_value(v, where) for v in values)
        spacing = "custom"
    else:
        n = check_int(entry["n_levels"], f"{where}: 'n_levels'", low=2, high=MAX_LEVELS)
        low = _unit_value(entry.get("low", 0.0), where)
        high = _unit_value(entry.get("high", 1.0), where)
        levels = tuple(np.linspace(low, high, n).tolist())
        spacing = "linear"
    if len(set(levels)) != len(levels):
        raise InverSynthError(f"{where}: levels must be distinct, got {list(levels)}")
    group = entry.get("group")
    if group is not None and (not isinstance(group, str) or not group.strip()):
        raise InverSynthError(f"{where}: 'group' must be a non-empty string, got {group!r}")
    return VariedEntry(
        name=name,
        id=_entry_id(entry, where),
        levels=levels,
        spacing=spacing,
        group=group,
        ordered=_ordered(entry, where),
    )


def _ordered(entry: dict[str, Any], where: str) -> bool | None:
    ordered = entry.get("ordered")
    if ordered is not None and not isinstance(ordered, bool):
        raise InverSynthError(f"{where}: 'ordered' must be true or false, got {ordered!r}")
    return ordered


def _parse_fixed(entry: Any, where: str) -> FixedEntry:
    name = entry_name(entry, where, what="the plugin's parameter name")
    where = f"{where} {name!r}"
    check_keys(entry, _FIXED_KEYS, where)
    if "value" not in entry:
        raise InverSynthError(f"{where}: 'value' is required")
    _ordered(entry, where)  # checked, so that the entry may move to 'parameters' as it is
    return FixedEntry(
        name=name, id=_entry_id(entry, where), value=_unit_value(entry["value"], where)
    )


def _section(data: dict[str, Any], key: str, allowed: set[str], source: str) -> dict[str, Any]:
    section = data.get(key, {})
    if not isinstance(section, dict):
        raise InverSynthError(f"{source}: {key!r} must be an object, got {section!r}")
    check_keys(section, allowed, f"{source}: {key!r}")
    for k, v in section.items():
        if not is_number(v):
            raise InverSynthError(f"{source}: {key}.{k} must be a number, got {v!r}")
    return dict(section)


def load_plugin_config(source: dict[str, Any] | str | Path) -> PluginConfig:
    """Read and check a plugin config (a dict, or the path of its JSON file).

    Checks everything that does not need the plugin: the structure, the
    levels (in [0, 1], distinct), unique names. :meth:`VSTGenerator.validate`
    checks the names and indices against the plugin.
    """
    data, label = read_config(
        source, kind="plugin config", dict_label="plugin_config", top_keys=_TOP_KEYS
    )
    plugin = data.get("plugin")
    if plugin is not None and (not isinstance(plugin, str) or not plugin):
        raise InverSynthError(f"{label}: 'plugin' must be a path, got {plugin!r}")
    varied_raw, fixed_raw = parameter_entries(data, label)
    varied = tuple(_parse_varied(e, f"{label}: parameter") for e in varied_raw)
    fixed = tuple(_parse_fixed(e, f"{label}: fixed parameter") for e in fixed_raw)
    names = [p.name for p in varied] + [p.name for p in fixed]
    check_unique_names(names, label)
    return PluginConfig(
        raw=json.loads(json.dumps(data)),  # a private, JSON-clean copy
        source=label,
        plugin=plugin,
        varied=varied,
        fixed=fixed,
        note=_section(data, "note", _NOTE_KEYS, label),
        render=_section(data, "render", _RENDER_KEYS, label),
    )


def resolve_index(
    entry: VariedEntry | FixedEntry, names: list[str], source: str, kind: str = "parameter"
) -> int:
    """The plugin's index of a config entry, checking its name."""
    where = f"{source}: {kind} {entry.name!r}"
    if entry.id is not None:
        if entry.id >= len(names):
            raise InverSynthError(
                f"{where}: id {entry.id} is out of range, the plugin has {len(names)} parameters "
                f"(0..{len(names) - 1})"
            )
        if names[entry.id] != entry.name:
            raise InverSynthError(
                f"{where}: the plugin calls parameter {entry.id} {names[entry.id]!r}; use that "
                "name, or drop 'id' to look the parameter up by name"
            )
        return entry.id
    matches = [i for i, n in enumerate(names) if n == entry.name]
    if not matches:
        raise InverSynthError(f"{where}: the plugin has no parameter of that name; it has {names}")
    if len(matches) > 1:
        raise InverSynthError(f"{where}: the plugin has several ({matches}); give 'id'")
    return matches[0]


def check_plugin_path(plugin: str | Path) -> str:
    """The absolute path of an existing plugin file (or VST3 bundle folder)."""
    path = Path(plugin).expanduser()
    if not path.exists():
        hint = f" (the Debian plugins install with: {INSTALL_HINT})" if "/vst" in str(path) else ""
        raise InverSynthError(f"plugin {str(path)!r} does not exist{hint}")
    if path.is_dir() and path.suffix.lower() != ".vst3":
        raise InverSynthError(f"plugin {str(path)!r} is a folder, not a VST plugin")
    return str(path.resolve())
