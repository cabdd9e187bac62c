"""Train a spectrogram CNN (C1-C6, C6XL): ``python -m models.spectrogram_cnn --model C6 ...``.

The model computes a log-magnitude STFT of the raw audio inside itself (kapre),
so datasets hold only waveforms. Options: ``--help``, and :mod:`models.cli.training_app`.
"""

from __future__ import annotations

from core.commandline import run_cli
from models.cli.training_app import EntryPoint
from models.common.model_table import SPECTROGRAM_MODELS

ENTRY_POINT = EntryPoint(
    prog="python -m models.spectrogram_cnn",
    models=SPECTROGRAM_MODELS,
    default_model="C6",
    model_env="SPECTROGRAM_MODEL",
    description="Train a CNN on log-STFT spectrograms (C1-C6, C6XL) to predict synth parameters.",
)
get_parser = ENTRY_POINT.get_parser
main = ENTRY_POINT.main

if __name__ == "__main__":
    run_cli(main)
