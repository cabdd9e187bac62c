"""Reconstruction quality of a run: resynthesize its test-split predictions and measure them.

``python -m models.reconstruct runs/C6_fm`` reads the predictions that
``python -m models.evaluate`` saved (``evaluation/predictions.npz``), plays the
run's synth with every predicted parameter set, in worker processes, and
compares each resynthesis with the test sound it was predicted from
(:mod:`models.matching.sound_metrics`: rho_STFT, rho_FT, F_delta, spectral
convergence, log-spectral distance, MFCC L1). It writes, next to
``metrics.json``:

* ``reconstruction.json``: mean, median, std, min, max of every metric (the
  paper's Table 4), with the same figures for random patches (``chance``:
  the synth played with parameters drawn like the dataset's, against the
  same test sounds), so that a value can be read against chance;
* ``reconstruction.csv``: one row per test example;
* ``listening.npz``: the sounds the listening report plays;

and prints the summary table. An evaluation folder of another run
(``--evaluation_dir``) is refused, naming both runs. The library is
:mod:`models.evaluation.resynthesis`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from core.commandline import make_parser, positive_int, run_cli
from core.options import add_max_examples_argument, add_no_progress_argument, add_workers_argument
from models.cli.match_options import (
    add_evaluated_run_arguments,
    add_match_evaluation_arguments,
    matching_options,
)
from models.evaluation.resynthesis import ReconstructionOptions, evaluate_reconstruction

__all__ = ["get_parser", "main"]


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        prog="python -m models.reconstruct",
        description="Resynthesize a run's test predictions with its synth and measure how close "
        "they sound (rho_STFT, rho_FT, F_delta, spectral convergence, LSD, MFCC L1).",
    )
    add_evaluated_run_arguments(parser)
    add_max_examples_argument(parser, help="use only the first N predictions")
    add_workers_argument(parser, help="rendering processes of the resynthesis")
    parser.add_argument(
        "--chunk_size", type=positive_int, default=16, help="examples per unit of work"
    )
    parser.add_argument(
        "--no_chance", action="store_true", help="skip the random-patch (chance) figures"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a reconstruction.json of more examples (refused otherwise)",
    )
    add_match_evaluation_arguments(parser)
    add_no_progress_argument(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    options = ReconstructionOptions(
        evaluation_dir=args.evaluation_dir,
        max_examples=args.max_examples,
        workers=args.workers,
        chunk_size=args.chunk_size,
        chance=not args.no_chance,
        progress=not args.no_progress,
        overwrite=args.overwrite,
        matching=matching_options(args),
    )
    evaluate_reconstruction(args.run_dir, options)
    return 0


if __name__ == "__main__":
    run_cli(main)
