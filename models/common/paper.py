"""The paper's figures (Barkan et al., InverSynth, arXiv:1812.06349), in one place.

They describe the paper's FM synth only (:func:`describes`): tables compare a
run with them when it was trained on that synth.
"""

from __future__ import annotations

from generators.parameters import ALL_GROUP, PAPER_GROUPS

__all__ = [
    "PAPER_EPOCHS",
    "PAPER_EXAMPLES",
    "PAPER_MPR",
    "PAPER_PARAMETER_MPR",
    "PAPER_RECONSTRUCTION",
    "SHORT_GROUP_NAMES",
    "describes",
]

# The training the figures come from: 200,000 examples, 100 epochs (on a GPU).
PAPER_EXAMPLES = 200_000
PAPER_EPOCHS = 100

# Column headings of the groups (Table 3's, in its order) in tables and plots.
SHORT_GROUP_NAMES: dict[str, str] = {
    **dict(
        zip(
            PAPER_GROUPS,
            ("Filter", "Notes", "AmpLFO", "FreqLFO", "OscAmp", "ADSR", "Gate"),
            strict=True,
        )
    ),
    ALL_GROUP: ALL_GROUP,
}

# Table 3: mean MPR over all 23 parameters, per model.
PAPER_MPR: dict[str, float] = {
    "FC2": 67.05, "C1": 70.69, "C2": 75.78, "C3": 76.51, "C4": 77.35, "C5": 77.66,
    "C6": 77.81, "C6XL": 77.90, "CE2E": 76.17, "HC3": 75.80,
}  # fmt: skip

# Table 4: reconstruction means (rho in percent), only what the paper reports.
PAPER_RECONSTRUCTION: dict[str, dict[str, float]] = {
    "C6XL": {"rho_stft": 92.04, "rho_ft": 76.13, "f_delta": 708.94},
    "C6": {"rho_stft": 91.38, "f_delta": 740.32},
    "CE2E": {"rho_stft": 88.33, "f_delta": 904.12},
}

# Per-parameter MPR the text quotes: f_cut 99.7 (C6); decay and sustain near chance
# (53-54) for every model.
PAPER_PARAMETER_MPR: dict[str, float] = {"cutoff_hz": 99.7, "decay_s": 53.5, "sustain": 53.5}


def describes(generator_name: str) -> bool:
    """Whether the paper's figures are about runs of this synth (registry name)."""
    from generators.fm_generator import FMGenerator

    return generator_name == FMGenerator.name
