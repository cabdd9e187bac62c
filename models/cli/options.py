"""What the commands of ``models`` share on their command lines, defined once.

The options every toolkit command shares (``--seed``, ``--workers``,
``--no_progress``, ``--output_dir``, ``--max_examples``) are
:mod:`generators.options`'; this module adds the evaluated-run arguments of ``reconstruct`` and
``report``, and the matching methods of ``reconstruct`` and ``evaluate``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from generators.cli import positive_float, positive_int
from generators.options import add_seed_argument

__all__ = [
    "add_evaluated_run_arguments",
    "add_match_evaluation_arguments",
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


def add_match_evaluation_arguments(parser: argparse.ArgumentParser) -> None:
    """``--methods``, ``--match_examples``, ``--budget_renders``, ``--budget_s``, ``--seed``."""
    from models.matching.match_sounds import DEFAULT_BUDGET_RENDERS, DEFAULT_BUDGET_S
    from models.matching.matchers import MATCHERS

    group = parser.add_argument_group("matching methods (Table 4, one row per method)")
    group.add_argument(
        "--methods",
        nargs="+",
        choices=sorted(MATCHERS),
        default=["network"],
        metavar="METHOD",
        help=f"matching methods measured on the first --match_examples sounds, next to random "
        f"patches ({', '.join(sorted(MATCHERS))}; network alone is the network's guess)",
    )
    group.add_argument(
        "--match_examples",
        type=positive_int,
        default=50,
        help="sounds matched by each method (a search costs about --budget_s each)",
    )
    group.add_argument(
        "--budget_renders",
        type=positive_int,
        default=DEFAULT_BUDGET_RENDERS,
        help="at most this many renders per sound matched",
    )
    group.add_argument(
        "--budget_s",
        type=positive_float,
        default=DEFAULT_BUDGET_S,
        help="seconds per sound matched (whichever budget ends first)",
    )
    add_seed_argument(group, env=None, help="the matchers' seed")
