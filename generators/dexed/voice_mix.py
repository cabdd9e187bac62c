"""A training sampler of real DX7 voices and their variations (the ``"dx7_voices"`` sampler).

Example ``(seed, index)`` is one of four kinds, drawn in set proportions
(``mix``), then optionally transposed:

``real``
    a training voice of the collection, as it is;
``perturbed``
    a training voice with one to a few parameters moved: an ordered parameter a
    few of its steps (log-uniform from 1 to a fifth of its range), a choice
    (algorithm, wave, curve, mode) to another choice;
``recombined``
    a training voice with parts of another: whole operators, operator
    envelopes, the algorithm with its feedback, the LFO, the pitch envelope;
``random``
    every parameter drawn uniformly, as a random dataset is.

``transposed_share`` of the examples then have their transpose moved by up to
``transpose_spread`` semitones, so that the network hears voices at other
pitches than the ones their authors played them at.

A spec (usually a file in ``plugin_config/``)::

    {"kind": "dx7_voices", "collection": "data/dx7_voices.npz",
     "mix": {"real": 0.3, "perturbed": 0.3, "recombined": 0.3, "random": 0.1},
     "transpose_spread": 12, "transposed_share": 0.5}

``collection`` is read relative to the working folder; ``fingerprint``
(optional) pins the collection's contents (:attr:`VoiceCollection.fingerprint`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import InverSynthError
from generators.dexed.engine import ENGINE_PARAMETERS, N_ENGINE_PARAMETERS
from generators.dexed.voices import TRAINING, VoiceCollection

if TYPE_CHECKING:
    from generators.sound_generator import SoundGenerator

__all__ = ["MIX_KINDS", "VoiceMix"]

MIX_KINDS = ("real", "perturbed", "recombined", "random")
_SPEC_KEYS = {
    "kind",
    "collection",
    "fingerprint",
    "mix",
    "transpose_spread",
    "transposed_share",
    "comment",
}
_SALT = 0xD7  # keeps these draws apart from other users of (seed, index)
_MAX_MOVES = 6

_BYTE = np.array([p.byte for p in ENGINE_PARAMETERS], dtype=np.int64)  # [145]
_MAX = np.array([p.max_value for p in ENGINE_PARAMETERS], dtype=np.int64)  # [145]
_ORDERED = np.array([p.ordered for p in ENGINE_PARAMETERS], dtype=bool)  # [145]
_NAMES = [p.name for p in ENGINE_PARAMETERS]
_TRANSPOSE = _NAMES.index("transpose")


def _columns(predicate: Any) -> np.ndarray:
    return np.array([i for i, name in enumerate(_NAMES) if predicate(name)], dtype=np.int64)


# The parts recombination exchanges, as columns of the 145-vector.
_OPERATORS = [_columns(lambda n, k=k: n.startswith(f"op{k}_")) for k in range(1, 7)]
_ENVELOPES = [_columns(lambda n, k=k: n.startswith(f"op{k}_env_")) for k in range(1, 7)]
_ALGORITHM = _columns(lambda n: n in ("algorithm", "feedback", "osc_key_sync"))
_LFO = _columns(lambda n: n.startswith("lfo_") or n == "pitch_mod_sensitivity")
_PITCH_EG = _columns(lambda n: n.startswith("pitch_env_"))
_SWAP_OPERATOR, _SWAP_ENVELOPE, _SWAP_GLOBAL = 0.3, 0.2, 0.3


def _check_share(value: Any, label: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InverSynthError(
            f"dx7_voices sampler: {label} must be a number in [0, 1], got {value!r}"
        )
    return float(value)


@dataclass(frozen=True)
class VoiceMix:
    """Training examples drawn from real voices and their variations.

    Parameters
    ----------
    voices : np.ndarray [n, 155], uint8
        The training voices.
    weights : tuple of 4 floats
        Proportions of :data:`MIX_KINDS`, summing to 1.
    transpose_spread : int in [0, 48]
        Semitones a transposed example moves at most.
    transposed_share : float in [0, 1]
        Share of examples transposed.
    """

    voices: np.ndarray
    weights: tuple[float, ...]
    transpose_spread: int = 0
    transposed_share: float = 0.0

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> VoiceMix:
        """Build from a spec (see the module docstring); the collection is read here."""
        unknown = sorted(set(spec) - _SPEC_KEYS)
        if unknown:
            raise InverSynthError(
                f"dx7_voices sampler: unknown keys {unknown}; known: {sorted(_SPEC_KEYS)}"
            )
        if not isinstance(spec.get("collection"), str):
            raise InverSynthError(
                "dx7_voices sampler: 'collection' (the .npz of voices) is required"
            )
        collection = VoiceCollection.load(spec["collection"])
        pinned = spec.get("fingerprint")
        if pinned is not None and pinned != collection.fingerprint:
            raise InverSynthError(
                f"dx7_voices sampler: {spec['collection']!r} has fingerprint "
                f"{collection.fingerprint}, the sampler was made for {pinned}"
            )
        mix = spec.get("mix", {"real": 1.0})
        if not isinstance(mix, dict) or set(mix) - set(MIX_KINDS) or not mix:
            raise InverSynthError(
                f"dx7_voices sampler: 'mix' maps some of {MIX_KINDS} to shares, got {mix!r}"
            )
        shares = [_check_share(mix.get(kind, 0.0), f"mix.{kind}") for kind in MIX_KINDS]
        if sum(shares) <= 0:
            raise InverSynthError("dx7_voices sampler: the mix's shares add up to 0")
        spread = spec.get("transpose_spread", 0)
        if isinstance(spread, bool) or not isinstance(spread, int) or not 0 <= spread <= 48:
            raise InverSynthError(
                f"dx7_voices sampler: transpose_spread must be an integer in [0, 48], got {spread!r}"
            )
        training = collection.part(TRAINING)
        if len(training) == 0:
            raise InverSynthError(f"{spec['collection']!r} has no training voices")
        return cls(
            voices=training,
            weights=tuple(s / sum(shares) for s in shares),
            transpose_spread=spread,
            transposed_share=_check_share(spec.get("transposed_share", 0.0), "transposed_share"),
        )

    # ---- drawing -------------------------------------------------------------
    def _parameters(self, row: int) -> np.ndarray:
        return self.voices[row, _BYTE].astype(np.int64)  # [145] DX7 integers

    def _perturbed(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n_moves = 1 + min(int(rng.poisson(1.5)), _MAX_MOVES - 1)
        for col in rng.choice(N_ENGINE_PARAMETERS, size=n_moves, replace=False):
            top = int(_MAX[col])
            if _ORDERED[col]:
                size = max(1, round(10 ** rng.uniform(0.0, np.log10(max(1.0, top / 5)))))
                x[col] = np.clip(x[col] + size * rng.choice((-1, 1)), 0, top)
            else:
                x[col] = (x[col] + rng.integers(1, top + 1)) % (top + 1)  # another choice
        return x

    def _recombined(self, row: int, rng: np.random.Generator) -> np.ndarray:
        x = self._parameters(row)
        pick = int(rng.integers(len(self.voices) - 1)) if len(self.voices) > 1 else row
        other = self._parameters(
            pick + (pick >= row and len(self.voices) > 1)
        )  # not the same voice
        before = x.copy()
        for operator, envelope in zip(_OPERATORS, _ENVELOPES, strict=True):
            u = rng.random()
            if u < _SWAP_OPERATOR:
                x[operator] = other[operator]
            elif u < _SWAP_OPERATOR + _SWAP_ENVELOPE:
                x[envelope] = other[envelope]
        for part in (_ALGORITHM, _LFO, _PITCH_EG):
            if rng.random() < _SWAP_GLOBAL:
                x[part] = other[part]
        part = _OPERATORS[int(rng.integers(6))]
        if np.array_equal(x, before):  # always something of the other voice ...
            x[part] = other[part]
        elif np.array_equal(x, other):  # ... and something of the first
            x[part] = before[part]
        return x

    def _example(self, seed: int, index: int) -> np.ndarray:
        rng = np.random.default_rng([int(seed), int(index), _SALT])
        kind = MIX_KINDS[int(rng.choice(len(MIX_KINDS), p=self.weights))]
        row = int(rng.integers(len(self.voices)))
        if kind == "random":
            x = rng.integers(0, _MAX + 1)
        elif kind == "recombined":
            x = self._recombined(row, rng)
        else:
            x = self._parameters(row)
            if kind == "perturbed":
                x = self._perturbed(x, rng)
        if self.transpose_spread and rng.random() < self.transposed_share:
            shift = int(rng.integers(-self.transpose_spread, self.transpose_spread + 1))
            x[_TRANSPOSE] = np.clip(x[_TRANSPOSE] + shift, 0, _MAX[_TRANSPOSE])
        return x

    def sample_voices(self, *, seed: int, start: int, n_examples: int) -> np.ndarray:
        """Voices of examples ``[start, start + n_examples)``: [n_examples, 155] uint8."""
        out = np.zeros((n_examples, self.voices.shape[1]), dtype=np.uint8)
        for i in range(n_examples):
            out[i, _BYTE] = self._example(seed, start + i)
        return out

    def sample_indices(
        self, generator: SoundGenerator, *, seed: int, start: int, n_examples: int
    ) -> np.ndarray:
        """Class indices [n_examples, n_parameters] of a Dexed generator's parameters (nearest levels)."""
        values_of_voices = getattr(generator, "values_of_voices", None)
        if values_of_voices is None:
            raise InverSynthError(
                f"the dx7_voices sampler needs a Dexed synth, not {generator.name!r}"
            )
        voices = self.sample_voices(seed=seed, start=start, n_examples=n_examples)
        indices: np.ndarray = generator.parameter_set.nearest_indices(values_of_voices(voices))
        return indices
