"""The whole path in a few minutes on a laptop CPU: ``python -m models.demo``.

1. makes a small dataset of the paper's FM synth (``{output_dir}/data``);
2. trains the paper's C6 on it for a few epochs (``{output_dir}/runs/C6_fm_demo``);
3. evaluates it on the held-out test split (the paper's metrics, Table 3);
4. resynthesizes every test prediction and measures it (Table 4);
5. matches a few held-out sounds, written as WAV files, and one sound the
   synth did not make (a 44.1 kHz stereo plucked string), as
   ``python -m models.predict`` does (``{output_dir}/predictions``);
6. writes the listening report (``.../evaluation/report.html``);

<<<<<<< HEAD
and prints where everything is. The library is :mod:`models.cli.demo`.
=======
and prints where everything is. An earlier demo in the same folder is kept: the
demo refuses to replace it, naming what it would delete, unless ``--overwrite``.
The library is :mod:`models.cli.demo`.
>>>>>>> ux
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from generators.cli import env_default, make_parser, positive_int, run_cli
from models.cli.demo import DEMO_SYNTHS, run_demo
from models.cli.options import add_workers_argument

__all__ = ["get_parser", "main"]


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        prog="python -m models.demo",
        description="The whole InverSynth path in a few minutes: dataset, training, evaluation, "
        "resynthesis, sound matching, listening report.",
    )
    parser.add_argument(
        "--output_dir",
        type=Path,
        default=env_default("DEMO_DIRECTORY", Path("demo"), Path),
        help="where everything goes",
    )
    parser.add_argument(
        "--synth", choices=DEMO_SYNTHS, default=DEMO_SYNTHS[0], help="synth to invert"
    )
    parser.add_argument("--model", default="C6", help="architecture (C1-C6, C6XL, CE2E)")
    parser.add_argument("--num_examples", type=positive_int, default=2000, help="dataset size")
    parser.add_argument("--epochs", type=positive_int, default=8, help="training epochs")
    parser.add_argument("--batch_size", type=positive_int, default=16, help="minibatch")
    add_workers_argument(parser)
    parser.add_argument(
        "--n_report", type=positive_int, default=6, help="test sounds in the listening report"
    )
    parser.add_argument("--seed", type=int, default=0, help="dataset and training seed")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier demo in --output_dir (its dataset, run folder with everything "
        "in it, sounds and predictions); without it the demo refuses, naming them",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    run_demo(
        output_dir=args.output_dir,
        synth=args.synth,
        model=args.model,
        num_examples=args.num_examples,
        epochs=args.epochs,
        batch_size=args.batch_size,
        workers=args.workers,
        n_report=args.n_report,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
