"""Where a dataset's or a stream's examples come from: uniform draws, or a sampler of real patches.

By default an example's parameters are independent uniform draws of each
parameter's levels (:meth:`ParameterSet.sample_indices`). A *sampler* draws
them otherwise, for instance from a collection of real DX7 voices and their
variations (:class:`generators.dexed.voices.VoiceMix`), which teaches a network
the patches people make rather than random ones. A sampler is described by a
small JSON object (``{"kind": "dx7_voices", ...}``, usually a file in
``plugin_config/``), kept apart from the synth's config: the synth (what a
patch sounds like) is a run's identity, the sampler only says which patches
its training examples were.

Every sampler is deterministic in ``(seed, example index)``, as uniform draws
are, so a dataset or stream made with it is the same in any number of worker
processes and when resumed.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from core.errors import InverSynthError

__all__ = ["SAMPLERS", "ExampleSampler", "load_sampler", "read_sampler_spec"]

# kind -> "module:Class", imported on first use.
SAMPLERS: dict[str, str] = {
    "dx7_voices": "generators.dexed.voice_mix:VoiceMix",
}


class ExampleSampler(Protocol):
    """Draws the class indices of examples ``[start, start + n_examples)`` for a synth."""

    def sample_indices(
        self, generator: Any, *, seed: int, start: int, n_examples: int
    ) -> np.ndarray:
        """Class indices [n_examples, n_parameters] of the synth ``generator`` (a
        :class:`~generators.sound_generator.SoundGenerator`), a function of ``(seed, index)`` only."""


_CACHE: dict[str, ExampleSampler] = {}  # spec JSON -> sampler, one per process


def read_sampler_spec(source: str | Path | dict[str, Any]) -> dict[str, Any]:
    """A sampler spec from its JSON file (or a dict), checked for a known ``kind``.

    Raises
    ------
    InverSynthError
        A missing or unreadable file, not JSON, or an unknown kind.
    """
    if isinstance(source, dict):
        spec = source
        label = "sampler"
    else:
        path = Path(source)
        label = str(path)
        if not path.is_file():
            raise InverSynthError(f"sampler file {label!r} does not exist or is not a file")
        try:
            spec = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InverSynthError(f"cannot read sampler {label!r}: {exc}") from None
    if not isinstance(spec, dict) or spec.get("kind") not in SAMPLERS:
        kind = spec.get("kind") if isinstance(spec, dict) else spec
        raise InverSynthError(
            f"{label}: a sampler is a JSON object whose 'kind' is one of {sorted(SAMPLERS)}, "
            f"got {kind!r}"
        )
    return json.loads(json.dumps(spec))  # a private, JSON-clean copy


def load_sampler(spec: dict[str, Any]) -> ExampleSampler:
    """The sampler a spec describes (built once per process and kept).

    Raises
    ------
    InverSynthError
        An unknown kind, or the sampler's own refusal (a missing collection, a bad mix).
    """
    key = json.dumps(spec, sort_keys=True)
    if key not in _CACHE:
        checked = read_sampler_spec(spec)
        module_name, class_name = SAMPLERS[checked["kind"]].split(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        _CACHE[key] = cls.from_spec(checked)
    return _CACHE[key]
