"""Whether a dataset file was made with a run's options, for ``--resume``: the first difference, named.

A resumed run must write exactly the examples the interrupted one would
have, so every attribute that fixes them must agree; a difference is
reported as the option that sets it (``--seed differs: the file has
seed=0, this run asks seed=9``).
"""

from __future__ import annotations

import json
from typing import Any

from core.errors import InverSynthError
from generators.parameters import ParameterSet
from generators.schema import attr_value

__all__ = ["attrs_difference"]

# Dataset attributes -> the option that sets them, for messages.
OPTION_OF = {
    "seed": "--seed",
    "total_examples": "--num_examples",
    "n_examples": "--num_examples",
    "example_offset": "--shard",
    "shard": "--shard",
    "sample_rate": "--sample_rate",
    "n_samples": "--length",
    "chunk_size": "--chunk_size",
    "generator": "the synth",
    "generator_config": "the synth's options",
    "parameter_set": "the synth's parameters",
    "format_version": "the format version (made by another version of the toolkit)",
}


def attrs_difference(stored: Any, wanted: dict[str, Any]) -> str | None:
    """How a file's attributes differ from a run's, naming the option (None if they agree)."""
    for key, value in wanted.items():
        have = attr_value(stored, key) if key in stored else None
        if have == value or (key == "parameter_set" and _same_parameters(have, value)):
            continue
        option = OPTION_OF.get(key, key)
        if have is None:
            return f"the file has no {key!r} attribute"
        if key in ("generator_config", "parameter_set"):
            detail = _json_difference(have, value)
            return f"{option} differ: {detail}"
        return f"{option} differs: the file has {key}={have!r}, this run asks {key}={value!r}"
    return None


def _same_parameters(have: Any, want: Any) -> bool:
    """Two parameter-set JSON texts of one set, levels within LEVEL_RTOL (another CPU's file)."""
    try:
        return ParameterSet.from_json(str(have)).matches(ParameterSet.from_json(str(want)))
    except InverSynthError:
        return False


def _json_difference(have: str, want: str) -> str:
    """The first top-level entry in which two JSON objects differ, as ``key: file X, run Y``."""
    try:
        a, b = json.loads(have), json.loads(want)
    except (TypeError, json.JSONDecodeError):
        return "the file's entry is not valid JSON"
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                x, y = json.dumps(a.get(key)), json.dumps(b.get(key))
                return f"{key}: the file has {x:.80}, this run asks {y:.80}"
    return "the file's and this run's differ"
