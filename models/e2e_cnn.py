"""Train an end-to-end CNN on raw audio (CE2E, CE2E_2D): ``python -m models.e2e_cnn --model CE2E ...``.

Strided convolutions learn a 64 x 257 "spectrogram" from the 16384 samples,
followed by C6's layers. Options: ``--help``, and :mod:`models.app`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from generators.cli import run_cli
from models import app
from models.common.model_table import E2E_MODELS

PROG = "python -m models.e2e_cnn"
DESCRIPTION = "Train an end-to-end CNN on raw audio (CE2E, CE2E_2D) to predict synth parameters."
DEFAULT_MODEL = "CE2E"


def get_parser() -> argparse.ArgumentParser:
    return app.get_parser(
        prog=PROG,
        models=E2E_MODELS,
        default_model=DEFAULT_MODEL,
        model_env="E2E_MODEL",
        description=DESCRIPTION,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return app.main(
        argv,
        prog=PROG,
        models=E2E_MODELS,
        default_model=DEFAULT_MODEL,
        model_env="E2E_MODEL",
        description=DESCRIPTION,
    )


if __name__ == "__main__":
    run_cli(main)
