"""A listening report of an evaluated run: hear and see how well the model matches sounds.

``python -m models.report runs/C6_fm`` writes ``runs/C6_fm/evaluation/report.html``:
for a sample of test sounds, the sound and its resynthesis (the run's synth
playing the predicted parameters) as audio players, their spectrograms, the
reconstruction metrics, and the predicted against the true value of every
parameter; above them the run's summary when the evaluation files exist.
One self-contained file that opens in any browser, offline. It plays the
sounds ``python -m models.reconstruct`` kept (``listening.npz``): reconstruct first. An evaluation
folder of another run (``--evaluation_dir``) is refused, naming both runs. The
library is :mod:`models.evaluation.listening_report`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from core.commandline import make_parser, positive_int, run_cli
from core.options import add_seed_argument, output_file
from models.cli.match_options import add_evaluated_run_arguments
from models.evaluation.listening_report import write_report

__all__ = ["get_parser", "main"]


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        prog="python -m models.report",
        description="A self-contained HTML listening report of an evaluated run: test sounds, "
        "their resyntheses, spectrograms, predicted vs true parameters.",
    )
    add_evaluated_run_arguments(parser)
    parser.add_argument("--n_examples", type=positive_int, default=8, help="test sounds shown")
    add_seed_argument(parser, env=None, help="which random sample of them (>= 0)")
    parser.add_argument(
        "--output", type=output_file, default=None, help="default {evaluation_dir}/report.html"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    path = write_report(
        args.run_dir,
        evaluation_dir=args.evaluation_dir,
        n_examples=args.n_examples,
        seed=args.seed,
        output=args.output,
    )
    print(f"report: {path} (open it in a browser)")
    return 0


if __name__ == "__main__":
    run_cli(main)
