"""The whole path in a few minutes on a laptop CPU: ``python -m models.demo``.

1. makes a small dataset of the paper's FM synth (``{output_dir}/data``);
2. trains the paper's C6 on it for a few epochs (``{output_dir}/runs/C6_fm_demo``);
3. evaluates it on the held-out test split (the paper's metrics, Table 3);
4. resynthesizes every test prediction and measures it (Table 4);
5. matches a few held-out sounds, written as WAV files, and one sound the
   synth did not make (a 44.1 kHz stereo plucked string), as
   ``python -m models.predict`` does (``{output_dir}/predictions``);
6. writes the listening report (``.../evaluation/report.html``);

and prints where everything is. ``--pretrained`` skips 1-4 and 6: the FM model shipped
in ``models/pretrained/fm_M1`` matches new FM sounds and the plucked string at once, in
a folder of its own (``{output_dir}/pretrained``), so the two demos run one after the
other in either order. An earlier demo in the same folder is kept: the demo refuses to
replace it, naming what it would delete, unless ``--overwrite``.
The library is :mod:`models.cli.demo_app`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from core.checks import check_int
from core.commandline import bounded_int, make_parser, positive_int, run_cli
from core.options import add_output_dir_argument, add_seed_argument, add_workers_argument
from models.cli.demo_app import (
    DEMO_BUDGET_RENDERS,
    DEMO_SYNTHS,
    DemoOptions,
    run_demo,
    run_pretrained_demo,
)
from models.common.model_table import MODELS
from models.common.training import MAX_BATCH_SIZE, MAX_EPOCHS, MAX_TRAIN_SEED
from models.matching.objective import MAX_BUDGET_RENDERS

__all__ = ["get_parser", "main"]


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        prog="python -m models.demo",
        description="The whole InverSynth path in a few minutes: dataset, training, evaluation, "
        "resynthesis, sound matching, listening report.",
    )
    add_output_dir_argument(
        parser, default=Path("demo"), env="DEMO_DIRECTORY", help="where everything goes"
    )
    parser.add_argument(
        "--synth", choices=DEMO_SYNTHS, default=DEMO_SYNTHS[0], help="synth to invert"
    )
    parser.add_argument("--model", choices=list(MODELS), default="C6", help="architecture")
    parser.add_argument("--num_examples", type=positive_int, default=2000, help="dataset size")
    parser.add_argument(
        "--epochs", type=positive_int, default=8, help=f"training epochs (1 to {MAX_EPOCHS})"
    )
    parser.add_argument(
        "--batch_size", type=positive_int, default=16, help=f"minibatch (1 to {MAX_BATCH_SIZE})"
    )
    add_workers_argument(parser, help="rendering processes (dataset and resynthesis)")
    parser.add_argument(
        "--n_report", type=positive_int, default=6, help="test sounds in the listening report"
    )
    parser.add_argument(
        "--n_matches",
        type=positive_int,
        default=None,
        help="sounds matched as files, besides the plucked string (3 held-out test sounds; "
        "5 new FM sounds with --pretrained)",
    )
    parser.add_argument(
        "--budget_renders",
        type=bounded_int(1, MAX_BUDGET_RENDERS),
        default=DEMO_BUDGET_RENDERS,
        help="renders of hybrid matching per sound (about 1 s on 2 cores)",
    )
    add_seed_argument(parser, env=None, help=f"dataset and training seed (0 to {MAX_TRAIN_SEED})")
    parser.add_argument(
        "--pretrained",
        action="store_true",
        help="no dataset or training: match new FM sounds and the plucked string at once with "
        "the model shipped in models/pretrained/fm_M1, into {output_dir}/pretrained (about 15 s "
        "on 2 cores, and once about 15 s more to render the model's lookup)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier demo in --output_dir (its dataset, run folder with everything "
        "in it, sounds and predictions); without it the demo refuses, naming them",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    if args.pretrained:
        run_pretrained_demo(
            output_dir=args.output_dir, overwrite=args.overwrite,
            n_matches=args.n_matches or 5, budget_renders=args.budget_renders,
        )  # fmt: skip
        return 0
    # Training would refuse these after the dataset is made; refuse them first.
    check_int(args.seed, "--seed", low=0, high=MAX_TRAIN_SEED)
    check_int(args.epochs, "--epochs", low=1, high=MAX_EPOCHS)
    check_int(args.batch_size, "--batch_size", low=1, high=MAX_BATCH_SIZE)
    options = DemoOptions(
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
        n_matches=args.n_matches or 3,
        budget_renders=args.budget_renders,
    )
    run_demo(options)
    return 0


if __name__ == "__main__":
    run_cli(main)
