"""Evaluate a run: the paper's metrics on the test split (or another dataset), tables and plots.

``python -m models.evaluate runs/C6_fm`` writes into ``runs/C6_fm/evaluation/``:

* ``metrics.json``: per-parameter and per-group top-k accuracy, MAE and MPR;
* ``per_parameter.csv``: one row per parameter;
* ``predictions.npz``: ``example_indices`` [n], ``true_indices`` [n, n_parameters],
  ``scores`` [n, n_outputs] (what further analyses, e.g. re-synthesis, start from);
* ``training_curves.png``, ``per_parameter.png``, ``top_k_by_group.png``;

and prints a summary row like the paper's Table 3 (mean MPR per group). Then,
unless ``--no_reconstruction``, it resynthesizes the predictions
(``reconstruction.json``, as ``python -m models.reconstruct``) and writes the
listening report (``report.html``, as ``python -m models.report``).

The records name the run they are of (its fingerprint); results of another run
in the output folder are replaced only with ``--overwrite``.

The libraries are :mod:`models.evaluation.run_evaluation`,
:mod:`models.evaluation.resynthesis` and :mod:`models.evaluation.listening_report`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from core.commandline import make_parser, positive_int, run_cli
from core.environment import env_default
from core.options import (
    add_max_examples_argument,
    add_no_progress_argument,
    add_output_dir_argument,
    add_workers_argument,
)
from models.cli.match_options import add_match_evaluation_arguments, matching_options
from models.evaluation.listening_report import write_report
from models.evaluation.resynthesis import ReconstructionOptions, evaluate_reconstruction
from models.evaluation.run_evaluation import SPLITS, EvaluationOptions, evaluate_run

__all__ = ["get_parser", "main"]


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        prog="python -m models.evaluate",
        description="The paper's metrics (top-k accuracy, MAE, MPR) of a trained run, with plots.",
    )
    parser.add_argument("run_dir", type=Path, help="run folder ({output_dir}/{run_name})")
    parser.add_argument(
        "--dataset_file",
        default=None,
        help="evaluate on another dataset of the same synth: a file, or a glob of its shards",
    )
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default="test",
        help="examples to use; with --dataset_file, test is every example the run neither "
        "trained nor validated on (those of the same synth, seed and index are left out) and "
        "all is every example, refused if the run trained on some of them",
    )
    parser.add_argument(
        "--batch_size",
        type=positive_int,
        default=env_default("EVAL_BATCH_SIZE", 64, positive_int),
        help="examples per forward pass",
    )
    add_max_examples_argument(parser)
    add_output_dir_argument(
        parser,
        default=None,
        help="default {run_dir}/evaluation ({run_dir}/evaluation_{dataset name} with "
        "--dataset_file)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace results of other or more examples in the output folder (refused otherwise)",
    )
    parser.add_argument("--no_plots", action="store_true", help="skip the PNG figures")
    parser.add_argument(
        "--no_reconstruction",
        action="store_true",
        help="parameters only: no resynthesis metrics (models.reconstruct) and no listening report",
    )
    add_workers_argument(parser, help="rendering processes of the resynthesis")
    add_match_evaluation_arguments(parser)
    add_no_progress_argument(parser)
    parser.add_argument(
        "--json", action="store_true", help="print metrics.json instead of the tables"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    options = EvaluationOptions(
        batch_size=args.batch_size,
        dataset_file=args.dataset_file,
        split=args.split,
        max_examples=args.max_examples,
        output_dir=args.output_dir,
        plots=not args.no_plots,
        progress=not args.no_progress,
        quiet=args.json,
        overwrite=args.overwrite,
        reconstruction=not args.no_reconstruction,
    )
    result = evaluate_run(args.run_dir, options)
    if not args.no_reconstruction:
        reconstruction = ReconstructionOptions(
            evaluation_dir=result.output_dir,
            max_examples=args.max_examples,
            workers=args.workers,
            progress=not args.no_progress,
            quiet=args.json,
            overwrite=args.overwrite,
            matching=matching_options(args),
        )
        evaluate_reconstruction(args.run_dir, reconstruction)
        report = write_report(args.run_dir, evaluation_dir=result.output_dir)
        if not args.json:
            print(f"listening report: {report}")
    if args.json:
        print(result.metrics.to_json(), end="")
    return 0


if __name__ == "__main__":
    run_cli(main)
