"""Command-line options that several commands of ``models`` share, defined once."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from generators.cli import env_default, positive_int

__all__ = ["add_evaluated_run_arguments", "add_workers_argument"]


def add_workers_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--workers``: rendering processes of the resynthesis (``INVERSYNTH_WORKERS``)."""
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=env_default("WORKERS", min(2, os.cpu_count() or 1), positive_int),
        help="rendering processes (the resynthesis metrics; the training examples of --stream)",
    )


def add_evaluated_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``run_dir`` and ``--evaluation_dir``: where an evaluated run's predictions are."""
    parser.add_argument("run_dir", type=Path, help="run folder, evaluated by models.evaluate")
    parser.add_argument(
        "--evaluation_dir",
        type=Path,
        default=None,
        help="folder with predictions.npz (default {run_dir}/evaluation)",
    )
