"""Train any model of the paper's table: ``python -m models.app --model C6 --dataset_name fm``.

``python -m models.spectrogram_cnn`` and ``python -m models.e2e_cnn`` are the
same command restricted to one kind of model. Options: ``--help``, and
:mod:`models.cli.training_app`.
"""

from __future__ import annotations

from core.commandline import run_cli
from models.cli.training_app import EntryPoint
from models.common.model_table import MODELS

ENTRY_POINT = EntryPoint(
    prog="python -m models.app",
    models=tuple(MODELS),
    default_model="C6",
    model_env="MODEL",
    description="Train a model that predicts synth parameters from audio.",
)
get_parser = ENTRY_POINT.get_parser
main = ENTRY_POINT.main

if __name__ == "__main__":
    run_cli(main)
