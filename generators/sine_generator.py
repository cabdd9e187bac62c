"""The smallest complete synth: one sine tone with a frequency and an amplitude.

It shows everything a new synth needs: declare the parameters once (with their
reporting groups), render a batch of values, and return a config that rebuilds
it. Tests train on it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from generators.parameters import Parameter, ParameterSet
from generators.sound_generator import SoundGenerator


class SineGenerator(SoundGenerator):
    """``amplitude * sin(2 pi frequency_hz t)``.

    Parameters
    ----------
    sample_rate : int > 0
        Hz.
    n_samples : int > 0
    n_levels : int >= 2
        Levels of each parameter.
    """

    name = "sine"

    def __init__(self, *, sample_rate: int = 16384, n_samples: int = 16384, n_levels: int = 8):
        super().__init__(sample_rate=sample_rate, n_samples=n_samples)
        self.n_levels = int(n_levels)
        # Two parameters need no reporting groups: the summary over both is the
        # one figure worth a column ("": no group).
        self._parameters = ParameterSet(
            [
                Parameter.notes("frequency_hz", base_hz=220.0, n_levels=self.n_levels, group=""),
                Parameter.linear("amplitude", low=0.1, high=1.0, n_levels=self.n_levels, group=""),
            ]
        )

    @property
    def parameter_set(self) -> ParameterSet:
        return self._parameters

    def render(self, values: np.ndarray) -> np.ndarray:
        v = self.check_values(values)  # [batch, 2]
        t = np.arange(self.n_samples) / self.sample_rate  # [n_samples]
        audio = v[:, 1:2] * np.sin(2 * np.pi * v[:, 0:1] * t[None, :])  # [batch, n_samples]
        return audio.astype(np.float32)

    def config(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "n_samples": self.n_samples,
            "n_levels": self.n_levels,
        }
