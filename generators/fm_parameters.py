"""The paper's FM synthesizer's 23 parameters (SPEC section 1), declared once.

Every name, level, unit, reporting group and description of the FM synth is
here; the DSP's controls (:data:`CONTROL_NAMES`, the columns the kernels of
:mod:`generators.fm_kernels` read) are these parameters in the same order and
units, and the synth (:mod:`generators.fm_generator`) plays them. No Numba here:
a dataset run's writer process, which never renders, imports this alone.

Parameters, in column order, with the paper's reporting group of each:

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
"""

from __future__ import annotations

from generators.parameters import PAPER_GROUPS, Parameter, ParameterSet

__all__ = [
    "CONTROL_NAMES",
    "FM_PARAMETERS",
    "N_CONTROLS",
    "N_LEVELS",
    "SAW",
    "SINE",
    "SQUARE",
    "TRIANGLE",
    "WAVEFORMS",
]

N_LEVELS = 16
# The oscillators, in the synth's order; a waveform's code is its index here.
WAVEFORMS = ("sine", "saw", "tri", "sqr")
SINE, SAW, TRIANGLE, SQUARE = range(len(WAVEFORMS))
_OSCILLATOR = dict(zip(WAVEFORMS, ("sine", "sawtooth", "triangle", "square"), strict=True))
FILTER, NOTES, AMPLITUDE_LFO, FREQUENCY_LFO, OSCILLATOR_AMPLITUDE, AMPLITUDE_ADSR, GATE = (
    PAPER_GROUPS
)


def _oscillator_parameters() -> list[Parameter]:
    """``f_``, ``A_``, ``B_``, ``v_`` of every oscillator: four groups of four, in that order.

    The descriptions are shown beside the names in predict's table, the listening
    report and README. The paper's group names are kept for its tables; where a name
    misleads, the description says what the parameter really is.
    """
    return [
        *(
            Parameter.notes(
                f"f_{w}", base_hz=440.0, n_levels=N_LEVELS, group=NOTES,
                description=f"note of the {o} oscillator: its carrier frequency",
            )
            for w, o in _OSCILLATOR.items()
        ),
        *(
            Parameter.linear(
                f"A_{w}", low=0.001, high=1.0, n_levels=N_LEVELS, group=OSCILLATOR_AMPLITUDE,
                description=f"level of the {o} oscillator in the mix (linear, 0.001 to 1)",
            )
            for w, o in _OSCILLATOR.items()
        ),
        *(
            Parameter.linear(
                f"B_{w}", low=0.0, high=1500.0, n_levels=N_LEVELS, unit="Hz",
                group=AMPLITUDE_LFO,
                description=f"depth of the {o} oscillator's pitch LFO: Hz its pitch swings "
                f"either side (the paper's '{AMPLITUDE_LFO}' is the LFO's amplitude, not the "
                "sound's)",
            )
            for w, o in _OSCILLATOR.items()
        ),
        *(
            Parameter.linear(
                f"v_{w}", low=1.0, high=30.0, n_levels=N_LEVELS, unit="Hz", group=FREQUENCY_LFO,
                description=f"rate of the {o} oscillator's pitch LFO: swings per second "
                f"(the paper's '{FREQUENCY_LFO}' is the LFO's frequency)",
            )
            for w, o in _OSCILLATOR.items()
        ),
    ]  # fmt: skip


def _envelope_filter_gate() -> list[Parameter]:
    """The ADSR envelope, the low-pass and the gater."""
    envelope = (
        ("attack_s", "s", "envelope attack: time from silence to full level"),
        ("decay_s", "s", "envelope decay: time from full level down to the sustain level"),
        ("sustain", "", "envelope sustain: the level held until the note-off (linear, of full "
         "level)"),
        ("release_s", "s", "envelope release: time from the note-off to silence"),
    )  # fmt: skip
    return [
        *(
            Parameter.linear(
                name, low=0.001, high=1.0, n_levels=N_LEVELS, unit=unit, group=AMPLITUDE_ADSR,
                description=description,
            )
            for name, unit, description in envelope
        ),
        Parameter.linear(
            "cutoff_hz", low=200.0, high=4000.0, n_levels=N_LEVELS, unit="Hz", group=FILTER,
            description="cutoff frequency of the resonant low-pass filter",
        ),
        Parameter.linear(
            "q", low=0.01, high=10.0, n_levels=N_LEVELS, group=FILTER,
            description="resonance (Q) of the low-pass filter: higher rings at the cutoff",
        ),
        Parameter.linear(
            "gate_hz", low=0.5, high=30.0, n_levels=N_LEVELS, unit="Hz", group=GATE,
            description="gater rate: the sound opens and closes this many times a second",
        ),
    ]  # fmt: skip


# The 23 parameters. Their order is the column order of values, labels and controls.
FM_PARAMETERS = ParameterSet([*_oscillator_parameters(), *_envelope_filter_gate()])

# The DSP's controls are the parameters themselves: the same names, order and units.
CONTROL_NAMES: tuple[str, ...] = tuple(FM_PARAMETERS.names)
N_CONTROLS = len(CONTROL_NAMES)
