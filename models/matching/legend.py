"""What each parameter of a synth is, for people: name, group, unit and description.

A run records its parameter set; runs made before parameters carried a
description (the shipped FM model among them) have none, so
:func:`with_descriptions` takes each missing one from the synth itself: the
given synth, or one built from its registry name when that costs nothing
(synths that render in this process and hold no resources). :func:`legend_lines`
is the legend printed beside ``predict``'s table; the listening report and the
JSON record carry the same text. :func:`synth_label` is the synth's own name for
people (the report's title, the matching page's runs).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from generators.parameters import Parameter, ParameterSet

__all__ = ["describe_unit", "legend_lines", "synth_label", "with_descriptions"]

# Synths built from their name just to read their parameters' descriptions: in-process,
# no worker or host process to start.
_CHEAP_SYNTHS = ("fm", "sine")


def _synth_parameters(
    generator: Any, generator_name: str, generator_config: dict[str, Any] | None
) -> ParameterSet | None:
    if generator is not None:
        parameters: ParameterSet = generator.parameter_set
        return parameters
    if generator_name not in _CHEAP_SYNTHS or generator_config is None:
        return None
    from core.errors import InverSynthError
    from generators.sound_generator import load_generator

    try:
        with load_generator(generator_name, generator_config) as synth:
            return synth.parameter_set
    except InverSynthError:
        return None  # a config this version cannot build: the run's own text stays


def with_descriptions(
    parameter_set: ParameterSet,
    *,
    generator: Any = None,
    generator_name: str = "",
    generator_config: dict[str, Any] | None = None,
) -> ParameterSet:
    """``parameter_set`` with every description it lacks taken from the synth.

    Parameters
    ----------
    parameter_set : ParameterSet
        A run's (or a dataset's).
    generator : SoundGenerator, optional
        The synth; else one of ``generator_name`` and ``generator_config`` when
        that is cheap to build.

    Returns
    -------
    ParameterSet
        Equal to ``parameter_set`` (descriptions are not part of equality);
        parameters the synth does not describe keep ``""``.
    """
    if all(p.description for p in parameter_set.parameters):
        return parameter_set
    synth = _synth_parameters(generator, generator_name, generator_config)
    if synth is None:
        return parameter_set
    theirs = {p.name: p.description for p in synth.parameters}
    return ParameterSet(
        Parameter(
            p.name, p.levels, p.unit, p.spacing, p.group,
            p.description or theirs.get(p.name, ""), ordered=p.ordered,
        )
        for p in parameter_set.parameters
    )  # fmt: skip


def synth_label(generator_name: str, generator_config: dict[str, Any]) -> str:
    """The synth's name for people: a plugin's file name (``amsynth``), else ``the fm synth``."""
    plugin = generator_config.get("plugin")
    if isinstance(plugin, str) and plugin:
        stem = Path(plugin.rstrip("/")).stem
        for suffix in ("_vst", "-vst", ".vst", "_vst3", "-vst3"):
            if stem.lower().endswith(suffix) and len(stem) > len(suffix):
                return stem[: -len(suffix)]
        return stem
    return f"the {generator_name} synth"


def describe_unit(parameter: Parameter) -> str:
    """The unit for a legend: ``Hz``, ``s``, or ``-`` for a plain number (a level, a ratio)."""
    return parameter.unit or "-"


def legend_lines(parameter_set: ParameterSet) -> list[str]:
    """The legend of a parameter table: one line per parameter, in order.

    ``f_sine  Notes, Hz: note of the sine oscillator: its carrier frequency``.
    Parameters that differ only in a number, as the DX7's six operators' do,
    share one line: ``op1..6_env_rate1  Operator 1..6, -: envelope rate 1``.
    """
    # Parameters whose names differ only in their first number (op1_env_rate1 ..
    # op6_env_rate1), with the same unit and description, share a line.
    rows: dict[tuple[str, str, str, str], list[tuple[str, str, str]]] = {}
    for p in parameter_set.parameters:
        first = _NUMBER.search(p.name)
        pattern = _NUMBER.sub("#", p.name, count=1) if first else p.name
        group = p.group.replace(first.group(), "#", 1) if first else p.group
        key = (pattern, group, describe_unit(p), p.description)
        rows.setdefault(key, []).append((first.group() if first else "", p.name, p.group))
    named = []
    for (pattern, group, unit, description), members in rows.items():
        if len(members) == 1:
            named.append((members[0][1], members[0][2], unit, description))
            continue
        span = f"{members[0][0]}..{members[-1][0]}"
        named.append((pattern.replace("#", span), group.replace("#", span), unit, description))
    width = max(len(name) for name, *_ in named)
    lines = []
    for name, group, unit, description in named:
        where = ", ".join(part for part in (group, unit) if part)
        text = f": {description}" if description else ""
        lines.append(f"{name:<{width}}  {where}{text}")
    return lines


_NUMBER = re.compile(r"\d+")
