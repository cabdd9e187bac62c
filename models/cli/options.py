"""What the commands of ``models`` share on their command lines, defined once.

The options every toolkit command shares (``--seed``, ``--workers``,
``--no_progress``, ``--output_dir``, ``--max_examples``) are
:mod:`generators.options`'; this module adds the evaluated-run arguments of ``reconstruct`` and
``report``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = [
    "add_evaluated_run_arguments",
]


def add_evaluated_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``run_dir`` and ``--evaluation_dir``: where an evaluated run's predictions are."""
    parser.add_argument("run_dir", type=Path, help="run folder, evaluated by models.evaluate")
    parser.add_argument(
        "--evaluation_dir",
        type=Path,
        default=None,
        help="folder with predictions.npz (default {run_dir}/evaluation)",
    )
