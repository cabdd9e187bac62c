"""Several runs side by side: the paper's Tables 3 and 4 for your own runs.

``python -m models.compare runs/C1_fm runs/C6_fm runs/CE2E_fm`` reads each run's
evaluation files (``evaluation/metrics.json`` from ``python -m models.evaluate``,
``evaluation/reconstruction.json`` from ``python -m models.reconstruct`` when
present) and writes into ``--output_dir`` (default ``comparison``):

* ``comparison.md``: the mean percentile rank (MPR) per parameter group
  (Table 3's layout) and the mean and median of every reconstruction metric
  (Table 4's layout), with the paper's figures for the same models when the
  runs use the paper's FM synth;
* ``comparison.csv``: one row per run with every figure;
* ``comparison.png``: MPR per group and rho_STFT per run, as bars.

Each evaluation folder must be its run's (its records carry the run's
fingerprint): one of another run is refused, naming both. Names are escaped in
the Markdown. The library is :mod:`models.evaluation.comparison`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from core.commandline import make_parser, run_cli
from core.options import add_output_dir_argument
from models.evaluation.comparison import compare_runs, write_comparison
from models.evaluation.evaluation_folder import EVALUATION_DIR

__all__ = ["get_parser", "main"]


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        prog="python -m models.compare",
        description="Compare evaluated runs side by side (the paper's Tables 3 and 4).",
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run folders, evaluated")
    add_output_dir_argument(parser, default=Path("comparison"), help="where the tables go")
    parser.add_argument(
        "--evaluation_name",
        default=EVALUATION_DIR,
        help="evaluation folder inside each run (evaluation_NAME for another dataset); "
        "a folder of another run is refused",
    )
    parser.add_argument("--no_paper", action="store_true", help="leave out the paper's figures")
    parser.add_argument("--no_plot", action="store_true", help="skip the PNG")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    summaries = compare_runs(args.run_dirs, evaluation_name=args.evaluation_name)
    files = write_comparison(
        summaries, args.output_dir, paper=not args.no_paper, plot=not args.no_plot
    )
    print(files["markdown"].read_text(), end="")
    print(f"\nwritten: {', '.join(str(p) for p in files.values())}")
    return 0


if __name__ == "__main__":
    run_cli(main)
