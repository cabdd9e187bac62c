"""Train an end-to-end CNN on raw audio (CE2E, CE2E_2D): ``python -m models.e2e_cnn --model CE2E ...``.

Strided convolutions learn a 64 x 257 "spectrogram" from the 16384 samples,
followed by C6's layers. Options: ``--help``, and :mod:`models.cli.training_app`.
"""

from __future__ import annotations

from core.commandline import run_cli
from models.cli.training_app import EntryPoint
from models.common.model_table import E2E_MODELS

ENTRY_POINT = EntryPoint(
    prog="python -m models.e2e_cnn",
    models=E2E_MODELS,
    default_model="CE2E",
    model_env="E2E_MODEL",
    description="Train an end-to-end CNN on raw audio (CE2E, CE2E_2D) to predict synth parameters.",
)
get_parser = ENTRY_POINT.get_parser
main = ENTRY_POINT.main

if __name__ == "__main__":
    run_cli(main)
