"""The paper's FM synthesizer (SPEC section 1) as a :class:`SoundGenerator`, and its dataset CLI.

Four band-limited oscillators (sine, saw, triangle, square), each with its own
carrier frequency, amplitude and frequency LFO, mixed, shaped by an ADSR
envelope, a resonant low-pass and a gater; 23 parameters of 16 levels each.
The signal processing is in :mod:`generators.fm_dsp` (its Numba kernels in
:mod:`generators.fm_kernels`).

The parameters, their levels and groups are declared in
:mod:`generators.fm_parameters` (:data:`~generators.fm_parameters.FM_PARAMETERS`).

Make the paper's dataset (``{dataset_directory}/{name}_data.hdf5``)::

    python -m generators.fm_generator --num_examples 200000 --workers 2
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from core.checks import check_float
from core.commandline import make_parser, non_negative_float, run_cli
from core.environment import env_default
from core.errors import InverSynthError
from core.options import add_bool_argument
from generators.dataset_options import add_dataset_arguments, n_samples_from_args
from generators.fm_parameters import FM_PARAMETERS
from generators.generate import create_dataset_from_args
from generators.parameters import ParameterSet
from generators.sound_generator import SoundGenerator

__all__ = ["FMGenerator", "controls_from_values", "render_fm"]


@functools.cache
def _dsp() -> ModuleType:
    """:mod:`generators.fm_dsp`, imported on first use.

    Deferred: it compiles or loads the Numba kernels, and a dataset run's writer
    process, which never renders, starts a second sooner without them.
    """
    from generators import fm_dsp

    return fm_dsp


def controls_from_values(values: np.ndarray) -> np.ndarray:
    """Parameter values -> the DSP's controls.

    The FM synth's parameters are its controls (the same physical units, the
    same order), so this only checks and converts.

    Parameters
    ----------
    values : np.ndarray [batch, 23], float
        Columns in :data:`FM_PARAMETERS` order.

    Returns
    -------
    controls : np.ndarray [batch, 23], float64, C-contiguous
    """
    v = np.ascontiguousarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != FM_PARAMETERS.n_parameters:
        raise InverSynthError(
            f"fm: values must have shape [batch, {FM_PARAMETERS.n_parameters}], got {v.shape}"
        )
    return v


def render_fm(
    values: np.ndarray,
    *,
    sample_rate: int = 16384,
    n_samples: int = 16384,
    note_off_s: float = 0.75,
    normalise: bool = False,
) -> np.ndarray:
    """Render FM parameter values; the one code path of datasets and of resynthesis.

    Parameters
    ----------
    values : np.ndarray [batch, 23], float
        Columns in :data:`FM_PARAMETERS` order (Hz, seconds, linear levels).
    sample_rate : int
        Hz.
    n_samples : int
        Samples per example.
    note_off_s : float >= 0
        Note-off time, s: the envelope's release starts here.
    normalise : bool
        Scale every example to peak 1 (otherwise only examples that would clip
        are scaled down into [-1, 1]).

    Returns
    -------
    audio : np.ndarray [batch, n_samples], float32 in [-1, 1]
    """
    audio: np.ndarray = _dsp().render_controls(
        controls_from_values(values),
        sample_rate=sample_rate,
        n_samples=n_samples,
        note_off_s=note_off_s,
        normalise=normalise,
    )
    return audio


class FMGenerator(SoundGenerator):
    """The paper's FM synthesizer.

    Parameters
    ----------
    sample_rate : int > 0
        Hz.
    n_samples : int > 0
        Samples per example.
    note_off_s : float >= 0
        Note-off time, s (the paper's examples are 1 s long; the release starts at 0.75 s).
    normalise : bool
        Scale every example to peak 1 instead of only those that would clip.
    """

    name = "fm"

    def __init__(
        self,
        *,
        sample_rate: int = 16384,
        n_samples: int = 16384,
        note_off_s: float = 0.75,
        normalise: bool = False,
    ) -> None:
        super().__init__(sample_rate=sample_rate, n_samples=n_samples)
        self.note_off_s = check_float(note_off_s, "note_off_s", low=0, unit="s")
        if not isinstance(normalise, (bool, np.bool_)):
            raise InverSynthError(f"normalise must be True or False, got {normalise!r}")
        max_cutoff = FM_PARAMETERS["cutoff_hz"].levels[-1]
        if self.sample_rate <= 2 * max_cutoff:
            raise InverSynthError(
                f"sample_rate must exceed {2 * max_cutoff:g} Hz (twice the highest cutoff), "
                f"got {self.sample_rate}"
            )
        self.normalise = bool(normalise)

    @property
    def parameter_set(self) -> ParameterSet:
        return FM_PARAMETERS

    def render(self, values: np.ndarray) -> np.ndarray:
        """Render values [batch, 23] (columns as :data:`FM_PARAMETERS`) -> float32 [batch, n_samples]."""
        return render_fm(
            self.check_values(values),
            sample_rate=self.sample_rate,
            n_samples=self.n_samples,
            note_off_s=self.note_off_s,
            normalise=self.normalise,
        )

    def prepare(self) -> None:
        """Import the kernel and load its compiled code (cached on disk) with one render."""
        self.render_indices(np.zeros((1, FM_PARAMETERS.n_parameters), dtype=np.int64))

    def config(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "n_samples": self.n_samples,
            "note_off_s": self.note_off_s,
            "normalise": self.normalise,
        }


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        prog="python -m generators.fm_generator",
        description="Make a dataset of the paper's FM synthesizer: 23 parameters of 16 levels, "
        "drawn uniformly; audio, class labels and values in one HDF5 file.",
    )
    synth = parser.add_argument_group("FM synth")
    add_bool_argument(
        synth,
        "normalise",
        env="NORMALISE",
        help="scale every example to peak 1 (otherwise only examples that would clip are scaled)",
    )
    synth.add_argument(
        "--note_off",
        type=non_negative_float,
        default=env_default("NOTE_OFF", 0.75, non_negative_float),
        help="note-off time in seconds: the envelope's release starts here",
    )
    add_dataset_arguments(parser, default_name="fm")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    generator = FMGenerator(
        sample_rate=args.sample_rate,
        n_samples=n_samples_from_args(args),
        note_off_s=args.note_off,
        normalise=args.normalise,
    )
    create_dataset_from_args(generator, args)
    return 0


if __name__ == "__main__":
    run_cli(main)
