"""The synth interface (`SoundGenerator`) and the registry of synths.

A synth turns parameter values into audio; it declares its parameter set, its
sample rate and its length. Its ``config()`` is JSON and rebuilds an identical
synth through :func:`load_generator`, which is how a dataset file or a trained
model carries the synth that made it (to resynthesize predictions later).
"""

from __future__ import annotations

import abc
import importlib
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

from core.checks import check_positive_int
from core.errors import InverSynthError
from generators.parameters import ParameterSet

if TYPE_CHECKING:
    from generators.sampling import ExampleSampler

__all__ = [
    "GENERATORS",
    "RenderedExamples",
    "SoundGenerator",
    "generator_class",
    "load_generator",
]

# name -> "module:Class". Imported lazily so that naming a synth never costs
# importing every synth's dependencies (DawDreamer, Numba kernels).
GENERATORS: dict[str, str] = {
    "fm": "generators.fm_generator:FMGenerator",
    "sine": "generators.sine_generator:SineGenerator",
    "vst": "generators.vst.synth:VSTGenerator",
    "dexed": "generators.dexed.synth:DexedGenerator",
}


class RenderedExamples(NamedTuple):
    """Dataset examples as :meth:`SoundGenerator.render_examples` returns them."""

    indices: np.ndarray  # [n_examples, n_parameters] int64: the class of every parameter
    audio: np.ndarray  # [n_examples, n_samples] float32; silence where failed
    failed: np.ndarray  # [n_examples] bool: the synth could not render it (a plugin crashed)


class SoundGenerator(abc.ABC):
    """Renders batches of parameter values to fixed-length mono audio.

    Subclasses set ``name`` (their key in :data:`GENERATORS`), implement
    :attr:`parameter_set`, :meth:`render` and :meth:`config`, and set
    ``renders_in_parallel`` if they start rendering processes (or threads) of their own.

    Parameters
    ----------
    sample_rate : int > 0
        Hz.
    n_samples : int > 0
        Length of every rendered example.
    """

    name: ClassVar[str]
    # True for a synth that renders in worker processes of its own (plugin hosts):
    # it takes a ``workers`` keyword that is not part of its config(). A caller
    # that wants N rendering processes builds it once, in its own process, with
    # workers=N, instead of starting N processes that each build it.
    renders_in_parallel: ClassVar[bool] = False
    # False for a synth that runs processes of its own (plugin hosts): a worker pool
    # process cannot hold one each (the training stream renders in such a pool).
    streams_in_workers: ClassVar[bool] = True
    # How a user makes a lookup dataset of this synth, said when a match goes without one.
    lookup_hint: ClassVar[str] = ""

    def __init__(self, *, sample_rate: int, n_samples: int) -> None:
        self.sample_rate = check_positive_int(sample_rate, "sample_rate")
        self.n_samples = check_positive_int(n_samples, "n_samples")

    @property
    @abc.abstractmethod
    def parameter_set(self) -> ParameterSet:
        """The parameters this synth is played with, in column order."""

    @abc.abstractmethod
    def render(self, values: np.ndarray) -> np.ndarray:
        """Render parameter values.

        Parameters
        ----------
        values : np.ndarray [batch, n_parameters], float
            One row per example, columns in :attr:`parameter_set` order.

        Returns
        -------
        audio : np.ndarray [batch, n_samples], float32 in [-1, 1]
        """

    @abc.abstractmethod
    def config(self) -> dict[str, Any]:
        """JSON-able keyword arguments that rebuild this synth with :meth:`from_config`."""

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SoundGenerator:
        """The synth :meth:`config` describes; a synth whose keywords are not flat overrides it."""
        return cls(**config)

    def render_indices(self, indices: np.ndarray) -> np.ndarray:
        """Render class indices [batch, n_parameters]; see :meth:`render`."""
        return self.render(self.parameter_set.to_values(indices))

    def render_examples(
        self, *, seed: int, start: int, n_examples: int, sampler: ExampleSampler | None = None
    ) -> RenderedExamples:
        """Sample and render the dataset examples ``[start, start + n_examples)``.

        The dataset writer calls this; a synth that must redraw some examples
        (a plugin patch that renders silence, say) overrides it, and must keep
        the result a function of ``(seed, example index)`` alone. A synth whose
        renders can fail (a plugin that crashes) marks the examples it gave up
        on in ``failed`` instead of raising, so that one bad example never
        costs the dataset.

        ``sampler`` (:mod:`generators.sampling`) draws the examples' parameters
        instead of the uniform draws of :meth:`ParameterSet.sample_indices`.

        Returns
        -------
        RenderedExamples
            ``indices`` [n_examples, n_parameters] int64, ``audio``
            [n_examples, n_samples] float32, ``failed`` [n_examples] bool.
        """
        indices = self.sample_indices(
            seed=seed, start=start, n_examples=n_examples, sampler=sampler
        )
        audio = self.render_indices(indices)
        return RenderedExamples(indices, audio, np.zeros(n_examples, dtype=bool))

    def sample_indices(
        self, *, seed: int, start: int, n_examples: int, sampler: ExampleSampler | None = None
    ) -> np.ndarray:
        """Class indices [n_examples, n_parameters] of examples ``[start, start + n_examples)``."""
        if sampler is None:
            return self.parameter_set.sample_indices(seed=seed, start=start, n_examples=n_examples)
        indices = np.asarray(
            sampler.sample_indices(self, seed=seed, start=start, n_examples=n_examples),
            dtype=np.int64,
        )
        return self.parameter_set.check_indices(indices)

    def prepare(self) -> None:  # noqa: B027 - optional hook, most synths load nothing
        """Load what the first render needs (compiled code), ahead of it.

        Worker processes call it when they start, before their first job.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, most synths hold nothing
        """Release resources (worker processes, plugin instances). Safe to call twice."""

    def __enter__(self) -> SoundGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate

    def check_values(self, values: np.ndarray) -> np.ndarray:
        """Validate a [batch, n_parameters] array of finite values; returns float64."""
        v = np.asarray(values, dtype=np.float64)
        n = self.parameter_set.n_parameters
        if v.ndim != 2 or v.shape[1] != n:
            raise InverSynthError(
                f"{self.name}: values must have shape [batch, {n}], got {v.shape}"
            )
        if not np.isfinite(v).all():
            raise InverSynthError(f"{self.name}: parameter values must be finite")
        return v


def generator_class(name: str) -> type[SoundGenerator]:
    """The synth class registered as ``name`` (importing its module)."""
    if name not in GENERATORS:
        raise InverSynthError(f"unknown generator {name!r}; known: {sorted(GENERATORS)}")
    module_name, class_name = GENERATORS[name].split(":")
    cls: type[SoundGenerator] = getattr(importlib.import_module(module_name), class_name)
    return cls


def load_generator(name: str, config: dict[str, Any]) -> SoundGenerator:
    """Build the synth registered as ``name`` from its ``config()``.

    ``config`` may add keywords that are not part of ``config()``, such as
    ``workers`` of a synth that ``renders_in_parallel``.
    """
    cls = generator_class(name)
    try:
        gen: SoundGenerator = cls.from_config(config)
    except TypeError as exc:
        raise InverSynthError(f"bad configuration for generator {name!r}: {exc}") from None
    return gen
