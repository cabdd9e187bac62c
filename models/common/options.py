"""What the commands of ``models`` share on their command lines, defined once.

The options every toolkit command shares (``--seed``, ``--workers``,
``--no_progress``, ``--output_dir``, ``--max_examples``) are
:mod:`generators.options`'; this module adds the parser of a ``models``
command (:func:`make_command_parser`, whose help shows a default only where it
says something), the evaluated-run arguments of ``reconstruct`` and
``report``, and the bounds of the training settings.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from generators.cli import make_parser

__all__ = [
    "MAX_BATCH_SIZE",
    "MAX_EPOCHS",
    "MAX_TRAIN_SEED",
    "HelpFormatter",
    "add_evaluated_run_arguments",
    "make_command_parser",
]

# TensorFlow and NumPy take 32-bit seeds; a larger one fails deep inside them.
MAX_TRAIN_SEED = 2**32 - 1
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 65_536


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``(default: X)`` after an option's help, unless the help says it already or X says nothing.

    Left out: a default of None (no value: the help tells what happens), a
    flag that is off, a required option, and a help text that names its default.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        flag = action.nargs == 0 and action.default is not True
        silent = flag or action.default is None or action.required
        if silent or "default" in text.lower():
            return text
        return super()._get_help_string(action)


def make_command_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The parser of a ``models`` command: one-line errors (``make_parser``), tidy defaults."""
    parser = make_parser(prog=prog, description=description)
    parser.formatter_class = HelpFormatter
    return parser


def add_evaluated_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``run_dir`` and ``--evaluation_dir``: where an evaluated run's predictions are."""
    parser.add_argument("run_dir", type=Path, help="run folder, evaluated by models.evaluate")
    parser.add_argument(
        "--evaluation_dir",
        type=Path,
        default=None,
        help="folder with predictions.npz (default {run_dir}/evaluation)",
    )
