"""Train a spectrogram CNN (C1-C6, C6XL): ``python -m models.spectrogram_cnn --model C6 ...``.

The model computes a log-magnitude STFT of the raw audio inside itself (kapre),
so datasets hold only waveforms. Options: ``--help``, and :mod:`models.app`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from generators.cli import run_cli
from models import app
from models.common.model_table import SPECTROGRAM_MODELS

PROG = "python -m models.spectrogram_cnn"
DESCRIPTION = "Train a CNN on log-STFT spectrograms (C1-C6, C6XL) to predict synth parameters."
DEFAULT_MODEL = "C6"


def get_parser() -> argparse.ArgumentParser:
    return app.get_parser(
        prog=PROG,
        models=SPECTROGRAM_MODELS,
        default_model=DEFAULT_MODEL,
        model_env="SPECTROGRAM_MODEL",
        description=DESCRIPTION,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return app.main(
        argv,
        prog=PROG,
        models=SPECTROGRAM_MODELS,
        default_model=DEFAULT_MODEL,
        model_env="SPECTROGRAM_MODEL",
        description=DESCRIPTION,
    )


if __name__ == "__main__":
    run_cli(main)
