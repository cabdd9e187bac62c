"""What each parameter of a synth is, for people: name, group, unit and description.

A run records its parameter set; runs made before parameters carried a
description (the shipped FM model among them) have none, so
:func:`with_descriptions` takes each missing one from the synth itself: the
given synth, or one built from its registry name when that costs nothing
(synths that render in this process and hold no resources). :func:`legend_lines`
is the legend printed beside ``predict``'s table; the listening report and the
JSON record carry the same text.
"""

from __future__ import annotations

from typing import Any

from generators.parameters import Parameter, ParameterSet

__all__ = ["describe_unit", "legend_lines", "with_descriptions"]

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
    from generators.errors import InverSynthError
    from generators.synth import load_generator

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
            p.description or theirs.get(p.name, ""),
        )
        for p in parameter_set.parameters
    )  # fmt: skip


def describe_unit(parameter: Parameter) -> str:
    """The unit for a legend: ``Hz``, ``s``, or ``-`` for a plain number (a level, a ratio)."""
    return parameter.unit or "-"


def legend_lines(parameter_set: ParameterSet) -> list[str]:
    """The legend of a parameter table: one line per parameter, by group.

    ``f_sine  Notes, Hz: note of the sine oscillator: its carrier frequency``.
    """
    width = max(len(p.name) for p in parameter_set.parameters)
    lines = []
    for p in parameter_set.parameters:
        where = ", ".join(part for part in (p.group, describe_unit(p)) if part)
        text = f": {p.description}" if p.description else ""
        lines.append(f"{p.name:<{width}}  {where}{text}")
    return lines
