"""The model table, with no TensorFlow needed: names, front ends, layers.

The paper's nine models, exactly, and ours beside them (``M1``,
:mod:`models.common.own_models`).

:mod:`models.common.architectures` builds the networks from it; command-line
tools read it to validate options without starting TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.checks import check_int
from core.errors import InverSynthError
from models.common.spectral import N_FFT

__all__ = [
    "CONV_LAYERS",
    "DATA_FORMATS",
    "E2E_FRONT_END",
    "E2E_MODELS",
    "HEADS",
    "MODELS",
    "PAPER_MODELS",
    "SPECTROGRAM_MODELS",
    "ConvSpec",
    "ModelSpec",
    "check_model_input",
    "min_samples",
]

DATA_FORMATS = ("channels_last", "channels_first")
HEADS = ("sigmoid", "softmax")


@dataclass(frozen=True)
class ConvSpec:
    """``C(F, k1, k2, s1, s2)``: Conv2D, F filters, kernel (k1, k2), strides (s1, s2), ReLU, "same"."""

    filters: int
    k1: int
    k2: int
    s1: int
    s2: int


def C(filters: int, k1: int, k2: int, s1: int, s2: int) -> ConvSpec:  # noqa: N802 - the paper's name
    return ConvSpec(filters, k1, k2, s1, s2)


# The paper's Table 2 (time x frequency kernels and strides).
_C6 = (
    C(32, 3, 3, 2, 2),
    C(71, 3, 3, 2, 2),
    C(128, 3, 4, 2, 3),
    C(128, 3, 3, 2, 2),
    C(128, 3, 3, 2, 2),
    C(128, 3, 3, 1, 2),
)
CONV_LAYERS: dict[str, tuple[ConvSpec, ...]] = {
    "C1": (C(38, 13, 26, 13, 26),),
    "C2": (C(35, 6, 7, 5, 6), C(87, 6, 9, 5, 8)),
    "C3": (C(32, 4, 5, 3, 4), C(98, 4, 6, 3, 5), C(128, 4, 6, 3, 5)),
    "C4": (C(32, 3, 4, 2, 3), C(65, 3, 4, 2, 3), C(105, 3, 4, 2, 3), C(128, 4, 5, 3, 4)),
    "C5": (
        C(32, 3, 3, 2, 2),
        C(98, 3, 3, 2, 2),
        C(128, 3, 4, 2, 3),
        C(128, 3, 5, 2, 4),
        C(128, 3, 3, 2, 2),
    ),
    "C6": _C6,
    "C6XL": (
        C(64, 3, 3, 2, 2),
        C(128, 3, 3, 2, 2),
        C(128, 3, 4, 2, 3),
        C(128, 3, 3, 2, 2),
        C(256, 3, 3, 2, 2),
        C(256, 3, 3, 1, 2),
    ),
}

# CE2E's front end: (filters, kernel, stride) of four Conv1D layers, 16384 samples -> 64 x 257.
E2E_FRONT_END: tuple[tuple[int, int, int], ...] = (
    (96, 64, 4),
    (96, 32, 4),
    (128, 16, 4),
    (257, 8, 4),
)

# Ours (models.common.own_models): 64 x 128 log-mel input, conv -> batch norm -> ReLU;
# a stride-1 row that keeps the width is a residual block of two convolutions.
_M1 = (
    C(48, 4, 4, 4, 4),  # 16 x 32: a patch stem (48 filters for 16 inputs, nothing lost)
    C(96, 3, 3, 2, 2),  # 8 x 16
    C(128, 3, 3, 2, 2),  # 4 x 8
    C(128, 3, 3, 1, 1),  # 4 x 8, residual
    C(256, 3, 3, 2, 2),  # 2 x 4
)

DENSE_UNITS = 512


@dataclass(frozen=True)
class ModelSpec:
    """One row of the model table: the front end and the conv layers after it."""

    name: str
    front_end: str  # "stft" | "e2e_1d" | "e2e_2d" | "logmel" (ours)
    conv_layers: tuple[ConvSpec, ...]

    @property
    def end_to_end(self) -> bool:
        return self.front_end.startswith("e2e")


MODELS: dict[str, ModelSpec] = {
    **{name: ModelSpec(name, "stft", convs) for name, convs in CONV_LAYERS.items()},
    "CE2E": ModelSpec("CE2E", "e2e_1d", _C6),
    "CE2E_2D": ModelSpec("CE2E_2D", "e2e_2d", _C6),
    "M1": ModelSpec("M1", "logmel", _M1),
}
PAPER_MODELS = tuple(name for name, spec in MODELS.items() if spec.front_end != "logmel")
SPECTROGRAM_MODELS = tuple(name for name, spec in MODELS.items() if not spec.end_to_end)
E2E_MODELS = tuple(name for name, spec in MODELS.items() if spec.end_to_end)


def min_samples(name: str) -> int:
    """The shortest audio model ``name`` takes: one STFT window, or 4**4 samples end to end."""
    if name not in MODELS:
        raise InverSynthError(f"unknown model {name!r}; known: {list(MODELS)}")
    return 4**4 if MODELS[name].end_to_end else N_FFT


def check_model_input(name: str, *, n_samples: int, n_levels: Sequence[int]) -> list[int]:
    """Refuse audio and parameters model ``name`` cannot be built for; the levels as ints.

    Raises
    ------
    InverSynthError
        Unknown model, audio shorter than :func:`min_samples`, or a parameter
        with fewer than 2 levels.
    """
    shortest = min_samples(name)
    check_int(n_samples, "n_samples", low=1)
    if n_samples < shortest:
        raise InverSynthError(f"model {name} needs n_samples >= {shortest}, got {n_samples!r}")
    levels = [int(n) for n in n_levels]
    if not levels or min(levels) < 2:
        raise InverSynthError(
            f"n_levels must be a non-empty list of ints >= 2, got {list(n_levels)}"
        )
    return levels
