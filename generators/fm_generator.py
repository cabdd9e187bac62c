"""The paper's FM synthesizer (SPEC section 1) as a :class:`SoundGenerator`, and its dataset CLI.

Four band-limited oscillators (sine, saw, triangle, square), each with its own
carrier frequency, amplitude and frequency LFO, mixed, shaped by an ADSR
envelope, a resonant low-pass and a gater; 23 parameters of 16 levels each.
The signal processing is in :mod:`generators.fm_dsp`.

Parameters, in column order (the table :data:`FM_PARAMETERS`), with the
paper's reporting group of each:

=========================  ======================================  ======  ====================
name                       levels (16 each)                        unit    group
=========================  ======================================  ======  ====================
f_sine f_saw f_tri f_sqr   440 * 2^(n/12), n = 0..15 (A4 .. C6)    Hz      Notes
A_sine A_saw A_tri A_sqr   evenly spaced in [0.001, 1]             linear  Oscillator amplitude
B_sine B_saw B_tri B_sqr   evenly spaced in [0, 1500] (LFO depth)  Hz      Amplitude LFO
v_sine v_saw v_tri v_sqr   evenly spaced in [1, 30] (LFO rate)     Hz      Frequency LFO
attack_s decay_s           evenly spaced in [0.001, 1]             s       Amplitude ADSR
sustain                    evenly spaced in [0.001, 1]             linear  Amplitude ADSR
release_s                  evenly spaced in [0.001, 1]             s       Amplitude ADSR
cutoff_hz                  evenly spaced in [200, 4000]            Hz      Filter
q                          evenly spaced in [0.01, 10]             -       Filter
gate_hz                    evenly spaced in [0.5, 30]              Hz      Gate
=========================  ======================================  ======  ====================

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
from generators.generate import create_dataset_from_args
from generators.parameters import Parameter, ParameterSet
from generators.synth import SoundGenerator

__all__ = ["FM_PARAMETERS", "FMGenerator", "controls_from_values", "render_fm"]

N_LEVELS = 16
# The oscillators in the kernel's column order (fm_dsp.WAVEFORMS). fm_dsp, and Numba with
# it, is imported at the first render only: a dataset run's writer process, which never
# renders, starts a second sooner without it. _dsp() checks that the two orders agree.
WAVEFORMS = ("sine", "saw", "tri", "sqr")

_OSCILLATOR = {"sine": "sine", "saw": "sawtooth", "tri": "triangle", "sqr": "square"}
# What each parameter does (SPEC section 1), shown beside its name in predict's table,
# the listening report and README. The paper's group names are kept for its tables;
# where a name misleads, the description says what the parameter really is.
_DESCRIPTIONS: dict[str, str] = {
    **{
        f"f_{w}": f"note of the {o} oscillator: its carrier frequency"
        for w, o in _OSCILLATOR.items()
    },
    **{
        f"A_{w}": f"level of the {o} oscillator in the mix (linear, 0.001 to 1)"
        for w, o in _OSCILLATOR.items()
    },
    **{
        f"B_{w}": f"depth of the {o} oscillator's pitch LFO: Hz its pitch swings either side "
        "(the paper's 'Amplitude LFO' is the LFO's amplitude, not the sound's)"
        for w, o in _OSCILLATOR.items()
    },
    **{
        f"v_{w}": f"rate of the {o} oscillator's pitch LFO: swings per second "
        "(the paper's 'Frequency LFO' is the LFO's frequency)"
        for w, o in _OSCILLATOR.items()
    },
    "attack_s": "envelope attack: time from silence to full level",
    "decay_s": "envelope decay: time from full level down to the sustain level",
    "sustain": "envelope sustain: the level held until the note-off (linear, of full level)",
    "release_s": "envelope release: time from the note-off to silence",
    "cutoff_hz": "cutoff frequency of the resonant low-pass filter",
    "q": "resonance (Q) of the low-pass filter: higher rings at the cutoff",
    "gate_hz": "gater rate: the sound opens and closes this many times a second",
}

# The 23 parameters, declared once, in the paper's reporting groups. Their order is
# the column order of values, labels and of fm_dsp's controls.
FM_PARAMETERS = ParameterSet(
    [
        *(
            Parameter.notes(
                f"f_{w}", base_hz=440.0, n_levels=N_LEVELS, group="Notes",
                description=_DESCRIPTIONS[f"f_{w}"],
            )
            for w in WAVEFORMS
        ),
        *(
            Parameter.linear(
                f"A_{w}", low=0.001, high=1.0, n_levels=N_LEVELS, group="Oscillator amplitude",
                description=_DESCRIPTIONS[f"A_{w}"],
            )
            for w in WAVEFORMS
        ),
        *(
            Parameter.linear(
                f"B_{w}", low=0.0, high=1500.0, n_levels=N_LEVELS, unit="Hz",
                group="Amplitude LFO", description=_DESCRIPTIONS[f"B_{w}"],
            )
            for w in WAVEFORMS
        ),
        *(
            Parameter.linear(
                f"v_{w}", low=1.0, high=30.0, n_levels=N_LEVELS, unit="Hz",
                group="Frequency LFO", description=_DESCRIPTIONS[f"v_{w}"],
            )
            for w in WAVEFORMS
        ),
        *(
            Parameter.linear(
                name, low=0.001, high=1.0, n_levels=N_LEVELS, unit=unit, group="Amplitude ADSR",
                description=_DESCRIPTIONS[name],
            )
            for name, unit in (
                ("attack_s", "s"),
                ("decay_s", "s"),
                ("sustain", ""),
                ("release_s", "s"),
            )
        ),
        Parameter.linear(
            "cutoff_hz", low=200.0, high=4000.0, n_levels=N_LEVELS, unit="Hz", group="Filter",
            description=_DESCRIPTIONS["cutoff_hz"],
        ),
        Parameter.linear(
            "q", low=0.01, high=10.0, n_levels=N_LEVELS, group="Filter",
            description=_DESCRIPTIONS["q"],
        ),
        Parameter.linear(
            "gate_hz", low=0.5, high=30.0, n_levels=N_LEVELS, unit="Hz", group="Gate",
            description=_DESCRIPTIONS["gate_hz"],
        ),
    ]
)  # fmt: skip


@functools.cache
def _dsp() -> ModuleType:
    """:mod:`generators.fm_dsp`, imported (with Numba) on first use."""
    from generators import fm_dsp

    # fm_dsp's kernel reads controls by column; the table above must keep its layout.
    if tuple(FM_PARAMETERS.names) != fm_dsp.CONTROL_NAMES:
        raise AssertionError(f"FM_PARAMETERS {FM_PARAMETERS.names} != {fm_dsp.CONTROL_NAMES}")
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
