"""Sound matching: predict a synth's parameters for your own sounds, and play them back.

``python -m models.predict kick.wav pad.flac --run runs/C6_fm`` reads each sound
(WAV, FLAC, OGG, MP3; any sample rate, any channels), fits it to the model
(mono, resampled, padded or trimmed, and says so), predicts every parameter,
plays the run's synth with the prediction and measures how close the
resynthesis sounds. For each sound it prints a table (parameter, predicted
value with its unit, the three most likely classes) and writes, into
``--output_dir`` (default ``{run}/predictions``):

* ``{name}.json``: the predicted parameters (values and class indices), the
  top classes, what was done to the input, the reconstruction metrics;
* ``{name}_input.wav``: the sound as the model heard it;
* ``{name}_resynthesis.wav``: the synth playing the prediction;
* ``{name}.png``: both spectrograms, the metrics in the title.

A bad file (missing, unreadable, empty, silent, NaN) gets one ``error:`` line
and the others still run; the exit code is 2 if any file failed.

The library is :mod:`models.matching.prediction`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from generators.cli import env_default, positive_int, run_cli
from generators.errors import InverSynthError
from generators.options import add_output_dir_argument
from models.common.options import make_command_parser
from models.matching.prediction import (
    format_prediction,
    predict_file,
    unique_stem,
    write_prediction,
)

__all__ = ["get_parser", "main"]


def get_parser() -> argparse.ArgumentParser:
    parser = make_command_parser(
        prog="python -m models.predict",
        description="Predict a trained model's synth parameters for sound files, play them back "
        "on the synth, and compare.",
    )
    parser.add_argument("sounds", nargs="+", type=Path, help="WAV, FLAC, OGG or MP3 files")
    parser.add_argument(
        "--run",
        type=Path,
        required=env_default("RUN", None) is None,
        default=env_default("RUN", None, Path),
        help="run folder of a trained model ({output_dir}/{run_name})",
    )
    add_output_dir_argument(
        parser,
        default=None,
        env="PREDICTIONS_DIRECTORY",
        help="where the JSON, WAV and PNG files go (default {run}/predictions)",
    )
    parser.add_argument(
        "--top_k", type=positive_int, default=3, help="most likely classes shown per parameter"
    )
    parser.add_argument("--no_plot", action="store_true", help="skip the PNG spectrograms")
    parser.add_argument(
        "--checkpoint",
        choices=("best", "latest"),
        default="best",
        help="model.keras (best validation loss) or latest.keras",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    from models.common.run import load_run

    run = load_run(args.run, checkpoint=args.checkpoint)
    output_dir = args.output_dir or run.run_dir / "predictions"
    print(
        f"model {run.model_name} from {run.run_dir}: {run.parameter_set.n_parameters} parameters "
        f"of the {run.generator_name!r} synth, {run.n_samples / run.sample_rate:g} s at "
        f"{run.sample_rate} Hz"
    )
    generator = run.make_generator()
    failed = 0
    taken: set[str] = set()
    try:
        for path in args.sounds:
            try:
                prediction = predict_file(run, path, top_k=args.top_k, generator=generator)
                files = write_prediction(
                    prediction,
                    output_dir,
                    stem=unique_stem(Path(path), taken),
                    run=run,
                    plot=not args.no_plot,
                )
            except (InverSynthError, OSError) as exc:
                failed += 1
                message = str(exc) if isinstance(exc, InverSynthError) else exc.strerror or exc
                where = "" if isinstance(exc, InverSynthError) else f"{path}: "
                sys.stdout.flush()  # keep the error next to its file when both go to one log
                print(f"error: {where}{message}", file=sys.stderr, flush=True)
                continue
            print()
            print(format_prediction(prediction))
            print(f"  wrote {', '.join(p.name for p in files.values())} in {output_dir}")
    finally:
        generator.close()
    n = len(args.sounds)
    if failed:
        print(f"\n{n - failed} of {n} sounds matched; {failed} failed", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    run_cli(main)
