"""Sound matching: predict a synth's parameters for your own sounds, and play them back.

``python -m models.predict kick.wav pad.flac --run runs/C6_fm`` reads each sound
(WAV, FLAC, OGG, MP3; any sample rate, any channels), fits it to the model
(mono, resampled, the part from ``--offset_s`` padded or cut to the model's
length, and says which part), predicts every parameter, plays the run's synth
with the prediction and measures how close the resynthesis sounds. Then a
matcher refines the guess by listening (``--method``, default ``hybrid``: the
network's guess and the nearest examples of ``--lookup_dataset`` start a search
over the synth's settings, at most ``--budget_renders`` renders and
``--budget_s`` seconds per sound; ``network``, ``lookup`` and ``search`` alone
are the other methods).
Without ``--run`` it uses the FM model shipped in ``models/pretrained/fm_M1``
(:mod:`models.common.pretrained`) and writes into ``predictions/``.
``--segments N`` matches N parts of a long sound, ``--hop_s`` apart.
``--example N`` matches test example N of the run's own dataset and shows the
true value of every parameter beside the predicted one. For each sound it
prints a table (parameter, predicted value with its unit, the three most
likely classes) and writes, into ``--output_dir`` (default ``{run}/predictions``):

* ``{name}.json``: the predicted parameters (values and class indices), the
  top classes, which part was matched and what was done to the input, the
  reconstruction metrics;
* ``{name}_input.wav``: the sound as the model heard it;
* ``{name}_resynthesis.wav``: the synth playing the final match;
* ``{name}_network.wav``: the network's guess (``--method hybrid``);
* ``{name}.png``: both spectrograms, the metrics in the title;
* ``{name}.fxp`` (a plugin run) or ``{name}.syx`` (a Dexed run): the match as a
  preset the synth loads.

The JSON holds the method, its renders and seconds, and the reconstruction
metrics of the network's guess and of the final match.

``{name}`` is the file's name without its extension (``kick``), with the
part's start for several segments (``kick_at_1.000s``), or ``test_{N:06d}``
for ``--example N``.

A bad file (missing, unreadable, empty, silent, NaN) gets one ``error:`` line
and the others still run; the exit code is 2 if any file failed.

The library is :mod:`models.matching.prediction`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generators.cli import (
    env_default,
    make_parser,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    run_cli,
)
from generators.errors import InverSynthError
from generators.options import add_output_dir_argument, add_seed_argument
from models.matching.match_sounds import (
    DEFAULT_BUDGET_RENDERS,
    DEFAULT_BUDGET_S,
    match_prediction,
    run_matcher,
)
from models.matching.matchers import DEFAULT_METHOD, MATCHERS
from models.matching.prediction import (
    Prediction,
    format_prediction,
    predict_example,
    predict_segments,
    unique_stem,
    write_prediction,
)

if TYPE_CHECKING:
    from models.common.run import Run

__all__ = ["get_parser", "main"]

SHIPPED_PREDICTIONS_DIR = Path("predictions")


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        prog="python -m models.predict",
        description="Predict a trained model's synth parameters for sound files, play them back "
        "on the synth, and compare. For each sound it writes {name}.json (the prediction), "
        "{name}_input.wav (the sound as the model heard it: mono, at the model's rate, the part "
        "matched), {name}_resynthesis.wav (the final match), {name}_network.wav (the network's "
        "guess, for --method hybrid), {name}.png (both spectrograms) and for a plugin or Dexed "
        "run {name}.fxp or {name}.syx (the match as a preset) into --output_dir, by default "
        "{run}/predictions.",
    )
    parser.add_argument(
        "sounds", nargs="*", type=Path, help="WAV, FLAC, OGG or MP3 files (or use --example)"
    )
    parser.add_argument(
        "--example",
        nargs="+",
        type=non_negative_int,
        default=[],
        metavar="N",
        help="test example N of the run's own dataset (as the report numbers them): "
        "prints its true parameters beside the predicted ones",
    )
    parser.add_argument(
        "--offset_s",
        type=non_negative_float,
        default=0.0,
        help="seconds into each sound where the part matched starts (the model hears "
        "only its own length)",
    )
    parser.add_argument(
        "--segments",
        type=positive_int,
        default=1,
        help="match this many parts of each sound, from --offset_s on, --hop_s apart",
    )
    parser.add_argument(
        "--hop_s",
        type=positive_float,
        default=None,
        help="seconds between the starts of the parts (unset: the model's length)",
    )
    parser.add_argument(
        "--run",
        type=Path,
        default=env_default("RUN", None, Path),
        help="run folder of a trained model ({output_dir}/{run_name}); default: the FM model "
        "shipped in models/pretrained/fm_M1",
    )
    add_output_dir_argument(
        parser,
        default=None,
        env="PREDICTIONS_DIRECTORY",
        help=f"where the JSON, WAV and PNG files go (default {{run}}/predictions, and "
        f"{SHIPPED_PREDICTIONS_DIR}/ for the shipped model)",
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
    add_matching_arguments(parser)
    return parser


def add_matching_arguments(parser: argparse.ArgumentParser) -> None:
    """``--method``, the budgets, ``--lookup_dataset``, ``--continuous``, ``--seed``."""
    group = parser.add_argument_group("matching (refine the network's guess by listening)")
    group.add_argument(
        "--method",
        choices=sorted(MATCHERS),
        default=env_default("MATCH_METHOD", DEFAULT_METHOD),
        help="network: the network's guess (and draws from its probabilities); lookup: the "
        "nearest examples of --lookup_dataset; search: a search from random patches; hybrid: "
        "the network's guess and the lookup's neighbours start the search, never worse than "
        "the network (env INVERSYNTH_MATCH_METHOD)",
    )
    group.add_argument(
        "--budget_renders",
        type=positive_int,
        default=DEFAULT_BUDGET_RENDERS,
        help="at most this many sounds rendered per sound matched",
    )
    group.add_argument(
        "--budget_s",
        type=positive_float,
        default=DEFAULT_BUDGET_S,
        help="seconds per sound matched (whichever budget ends first)",
    )
    group.add_argument(
        "--lookup_dataset",
        type=Path,
        default=None,
        help="dataset of the run's synth for lookup and hybrid (default: the run's own dataset "
        "if it still exists); its index is built once and stored beside it",
    )
    group.add_argument(
        "--continuous", action="store_true", help="let the search end between the levels"
    )
    add_seed_argument(group, env=None, help="the matcher's seed")


def _predictions(
    run: Run, path: Path, args: argparse.Namespace, generator: Any
) -> list[Prediction]:
    return predict_segments(
        run, path, offset_s=args.offset_s, n_segments=args.segments, hop_s=args.hop_s,
        top_k=args.top_k, generator=generator,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = get_parser()
    args = parser.parse_args(argv)
    if not args.sounds and not args.example:
        parser.error("give sound files, or --example N")
    from models.common.pretrained import pretrained_run_dir
    from models.common.run import load_run

    shipped = args.run is None
    if shipped and args.checkpoint != "best":
        parser.error("--checkpoint latest needs --run: the shipped model keeps only its best")
    run = load_run(pretrained_run_dir() if shipped else args.run, checkpoint=args.checkpoint)
    # Never write into the package: the shipped model's predictions go to the working folder.
    output_dir = args.output_dir or (
        SHIPPED_PREDICTIONS_DIR if shipped else run.run_dir / "predictions"
    )
    print(
        f"model {run.model_name} from {run.run_dir}: {run.parameter_set.n_parameters} parameters "
        f"of the {run.generator_name!r} synth, {run.n_samples / run.sample_rate:g} s at "
        f"{run.sample_rate} Hz"
    )
    generator = run.make_generator()
    try:
        matcher = run_matcher(
            run,
            method=args.method,
            generator=generator,
            lookup_dataset=args.lookup_dataset,
            continuous=args.continuous,
            # The run's own dataset without its held-out sounds: --example N is not looked up.
            exclude_rows=None if args.lookup_dataset else run.split.indices("test"),
        )
    except BaseException:
        generator.close()
        raise
    print(
        f"matching with {args.method!r}: at most {args.budget_renders} renders and "
        f"{args.budget_s:g} s per sound"
    )
    failed = 0
    taken: set[str] = set()
    inputs: list[Path | int] = [*args.sounds, *args.example]
    try:
        for item in inputs:
            try:
                if isinstance(item, int):
                    predictions = [
                        predict_example(run, item, top_k=args.top_k, generator=generator)
                    ]
                    stems = [unique_stem(Path(f"test_{item:06d}"), taken)]
                else:
                    predictions = _predictions(run, item, args, generator)
                    stem = unique_stem(item, taken)
                    stems = (
                        [f"{stem}_at_{p.input.offset_s:.3f}s" for p in predictions]
                        if args.segments > 1
                        else [stem]
                    )
                for prediction, stem in zip(predictions, stems, strict=True):
                    match_prediction(
                        prediction, matcher, max_renders=args.budget_renders,
                        time_limit_s=args.budget_s, seed=args.seed,
                    )  # fmt: skip
                    files = write_prediction(
                        prediction, output_dir, stem=stem, run=run, plot=not args.no_plot,
                        generator=generator,
                    )  # fmt: skip
                    print()
                    print(format_prediction(prediction, parameter_set=run.parameter_set))
                    print(f"  wrote {', '.join(p.name for p in files.values())} in {output_dir}")
            except (InverSynthError, OSError) as exc:
                failed += 1
                message = str(exc) if isinstance(exc, InverSynthError) else exc.strerror or exc
                where = "" if isinstance(exc, InverSynthError) else f"{item}: "
                sys.stdout.flush()  # keep the error next to its file when both go to one log
                print(f"error: {where}{message}", file=sys.stderr, flush=True)
                continue
    finally:
        generator.close()
    n = len(inputs)
    if failed:
        print(f"\n{n - failed} of {n} sounds matched; {failed} failed", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    run_cli(main)
