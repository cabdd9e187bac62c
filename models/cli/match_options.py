"""What the commands of ``models`` share on their command lines, defined once.

The options every toolkit command shares (``--seed``, ``--workers``,
``--no_progress``, ``--output_dir``, ``--max_examples``) are
:mod:`core.options`'; this module adds the evaluated-run arguments of ``reconstruct`` and
``report``, the matching methods of ``reconstruct`` and ``evaluate``, and a
match's budget (theirs and ``predict``'s).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from core.commandline import bounded_float, bounded_int, positive_int
from core.options import add_seed_argument
from models.matching.matchers import MATCHERS
from models.matching.objective import (
    DEFAULT_BUDGET_RENDERS,
    DEFAULT_BUDGET_S,
    MAX_BUDGET_RENDERS,
    MAX_BUDGET_S,
    MIN_BUDGET_S,
)

if TYPE_CHECKING:
    from models.evaluation.match_evaluation import MatchingOptions

__all__ = [
    "add_budget_arguments",
    "add_evaluated_run_arguments",
    "add_match_evaluation_arguments",
    "matching_options",
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


def add_budget_arguments(group: argparse._ActionsContainer) -> None:
    """``--budget_renders`` and ``--budget_s``: a match's budget, renders and an optional cap."""
    group.add_argument(
        "--budget_renders",
        type=bounded_int(1, MAX_BUDGET_RENDERS),
        default=DEFAULT_BUDGET_RENDERS,
        help="renders per sound matched: the same renders and seed give the same match on any "
        "machine",
    )
    group.add_argument(
        "--budget_s",
        type=bounded_float(MIN_BUDGET_S, MAX_BUDGET_S, "s"),
        default=DEFAULT_BUDGET_S,
        help="an optional time limit per sound matched, seconds (default: none; whichever "
        "budget ends first)",
    )


def add_match_evaluation_arguments(parser: argparse.ArgumentParser) -> None:
    """``--methods``, ``--match_examples``, ``--budget_renders``, ``--budget_s``, ``--seed``."""
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
        help="sounds matched by each method (a search costs its --budget_renders each)",
    )
    add_budget_arguments(group)
    add_seed_argument(group, env=None, help="the matchers' seed")


def matching_options(args: argparse.Namespace) -> MatchingOptions:
    """What :func:`add_match_evaluation_arguments` parsed, as the evaluation takes it."""
    from models.evaluation.match_evaluation import MatchingOptions

    return MatchingOptions(
        methods=tuple(args.methods),
        n_examples=args.match_examples,
        max_renders=args.budget_renders,
        time_limit_s=args.budget_s,
        seed=args.seed,
    )
