"""Package a trained run to share or ship: ``python -m models.export_run runs/M1_fm models/pretrained/fm_M1``.

Copies the run's best model without its optimizer state (a third of the size)
and its records (``run.json``, ``state.json``, ``history.csv``) into a new
folder that ``python -m models.predict --run`` loads like the run itself. The
folder appears whole or not at all. ``--overwrite`` replaces an earlier export
only: never the run, a folder that holds it or lies inside it, nor a folder
with anything else in it. The library is :mod:`models.common.pretrained`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from core.commandline import make_parser, run_cli

__all__ = ["get_parser", "main"]


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        prog="python -m models.export_run",
        description="Copy a run's best model (without optimizer state) and its records into a "
        "folder of their own, to share or ship.",
    )
    parser.add_argument("run", type=Path, help="run folder ({output_dir}/{run_name})")
    parser.add_argument("destination", type=Path, help="the new folder")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier export there (a folder of run.json, model.keras, state.json, "
        "history.csv and nothing else); no other folder is ever replaced",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    from models.common.pretrained import export_run

    destination = export_run(args.run, args.destination, overwrite=args.overwrite)
    size_mb = sum(p.stat().st_size for p in destination.iterdir()) / 1e6
    print(f"exported {args.run} to {destination} ({size_mb:.1f} MB)")
    return 0


if __name__ == "__main__":
    run_cli(main)
