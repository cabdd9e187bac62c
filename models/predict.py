"""Sound matching: predict a synth's parameters for your own sounds, and play them back.

``python -m models.predict kick.wav pad.flac --run runs/C6_fm`` reads each sound
(WAV, FLAC, OGG, MP3; any sample rate, any channels), fits it to the model
(mono, resampled, the part from ``--offset_s`` padded or cut to the model's
length, and says which part), predicts every parameter, plays the run's synth
with the prediction and measures how close the resynthesis sounds. Then a
matcher refines the guess by listening (``--method``, default ``hybrid``: the
network's guess and the nearest examples of the lookup start a search over
the synth's settings, ``--budget_renders`` renders per sound, and at most
``--budget_s`` seconds if given; ``network``, ``lookup`` and ``search`` alone
are the other methods). The same sound, seed and renders give the same match
on any machine.
Without ``--run`` it uses the FM model shipped in ``models/pretrained/fm_M1``
(:mod:`models.common.pretrained`) and writes into ``predictions/``; its lookup
is rendered from the FM synth on first use and kept in the data folder.
``--segments N`` matches N parts of a long sound, ``--hop_s`` apart.
``--example N`` matches test example N of the run's own dataset and shows the
true value of every parameter beside the predicted one. For each sound it
prints how close the match sounds, a table (parameter, matched value with its
unit, the network's guess, its three most likely classes) and the details,
once a legend of the parameters, and writes, into ``--output_dir`` (default
``{run}/predictions``), the files of :mod:`models.matching.match_output`:
``{name}.json`` (the record: input, method, seed, budgets, lookup, and the
match and the network's guess, each with its named parameters and how close
it sounds), ``{name}_input.wav``, ``{name}_resynthesis.wav`` (the match),
``{name}_network.wav`` (the network's guess, when the match differs from it),
``{name}.png`` and, for a plugin or Dexed run, ``{name}.fxp`` / ``{name}.syx``.
The synth's WAVs are brought to the input's loudness, never clipped, at the
model's rate or ``--output_sample_rate``.

``{name}`` is the file's name without its extension (``kick``), with the
part's start for several segments (``kick_at_1.000s``), or ``test_{N:06d}``
for ``--example N``.

A bad file (missing, unreadable, empty, silent, NaN) gets one ``error:`` line
and the others still run; the exit code is 2 if any file failed.

The library is :func:`models.matching.match_sounds.match_sound_file`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from core.commandline import (
    make_parser,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    run_cli,
)
from core.environment import env_default
from core.errors import InverSynthError
from core.options import add_output_dir_argument, add_seed_argument, add_workers_argument
from generators.dexed.engine import require_dexed
from generators.outputs import mark_predictions_folder, predictions_folder
from models.cli.match_options import add_budget_arguments
from models.common.pretrained import pretrained_run_dir
from models.common.run import Run, load_run
from models.matching.legend import legend_lines, with_descriptions
from models.matching.match_output import OUTPUT_RATES_HZ, check_output_rate, unique_stem
from models.matching.match_settings import MatchSettings
from models.matching.match_sounds import (
    MatchOutcome,
    match_and_write,
    match_sound_file,
    run_label,
    run_matcher,
)
from models.matching.match_text import format_prediction
from models.matching.matchers import DEFAULT_METHOD, MATCHERS, Matcher
from models.matching.objective import Budget
from models.matching.prediction import predict_example, predict_segments

__all__ = ["get_parser", "main"]

SHIPPED_PREDICTIONS_DIR = Path("predictions")


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        prog="python -m models.predict",
        description="Predict a trained model's synth parameters for sound files, refine them by "
        "listening, and play them back. For each sound it writes {name}.json (the record: the "
        "match and the network's guess, each with its named parameters and how close it "
        "sounds), {name}_input.wav (the sound as the model heard it: mono, at the model's rate, "
        "the part matched), {name}_resynthesis.wav (the match), {name}_network.wav (the "
        "network's guess, when the match differs from it), {name}.png (the spectrograms) and "
        "for a plugin or Dexed run {name}.fxp or {name}.syx (the match as a preset) into "
        "--output_dir, by default {run}/predictions.",
    )
    _add_sound_arguments(parser)
    _add_model_arguments(parser)
    _add_output_arguments(parser)
    parser.add_argument(
        "--checkpoint",
        choices=("best", "latest"),
        default="best",
        help="model.keras (best validation loss) or latest.keras",
    )
    add_matching_arguments(parser)
    return parser


def _add_sound_arguments(parser: argparse.ArgumentParser) -> None:
    """What is matched: the sound files or the run's test examples, and which parts."""
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


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The model that listens: a run folder, or the one shipped for a synth."""
    parser.add_argument(
        "--run",
        type=Path,
        default=env_default("RUN", None, Path),
        help="run folder of a trained model ({output_dir}/{run_name}); default: the model "
        "shipped for --synth",
    )
    parser.add_argument(
        "--synth",
        choices=("fm", "dexed"),
        default="fm",
        help="without --run, the shipped model to match with: the paper's FM synth "
        "(models/pretrained/fm_M1) or the DX7 (models/pretrained/dexed_M1, a voice Dexed "
        "loads; needs the extra: uv sync --extra dexed)",
    )


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the files go, at what rate, and what is printed and drawn."""
    add_output_dir_argument(
        parser,
        default=None,
        env="PREDICTIONS_DIRECTORY",
        help=f"where the JSON, WAV and PNG files go (default {{run}}/predictions, and "
        f"{SHIPPED_PREDICTIONS_DIR}/ for the shipped model)",
    )
    parser.add_argument(
        "--output_sample_rate",
        type=_output_rate,
        default=None,
        metavar="RATE",
        help="sample rate of the WAVs written: 'model' (the default: the model's), 'input' (each "
        f"input file's own) or a rate in Hz ({OUTPUT_RATES_HZ[0]} to {OUTPUT_RATES_HZ[1]})",
    )
    parser.add_argument(
        "--top_k", type=positive_int, default=3, help="most likely classes shown per parameter"
    )
    parser.add_argument("--no_plot", action="store_true", help="skip the PNG spectrograms")


def _output_rate(text: str) -> int | str | None:
    """``--output_sample_rate``: ``model``, ``input`` or a rate in Hz."""
    value: int | str = text
    if text not in ("input", "model"):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"'input', 'model' or a rate in Hz, got {text!r}"
            ) from None
    try:
        return check_output_rate(value)
    except InverSynthError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(" must be ", 1)[-1]) from None


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
    add_budget_arguments(group)
    group.add_argument(
        "--lookup_dataset",
        type=Path,
        default=None,
        help="dataset of the run's synth for lookup and hybrid (default: the run's own dataset "
        "if it is here, else, for the FM synth, its examples rendered once and kept in the data "
        "folder); its index is built once and stored beside it",
    )
    group.add_argument(
        "--continuous", action="store_true", help="let the search end between the levels"
    )
    add_seed_argument(group, env=None, help="the matcher's seed")
    add_workers_argument(
        group,
        help="threads (a plugin's processes) that render and score a match's candidates, one "
        "per core; the same seed, renders and workers give the same match",
    )


def _match_settings(args: argparse.Namespace) -> MatchSettings:
    """The match the command's options ask for."""
    return MatchSettings(
        method=args.method,
        seed=args.seed,
        budget=Budget(renders=args.budget_renders, seconds=args.budget_s),
        lookup_dataset=args.lookup_dataset,
        continuous=args.continuous,
        workers=args.workers,
        top_k=args.top_k,
        output_sample_rate=args.output_sample_rate,
        plot=not args.no_plot,
    )


def _matcher(run: Run, settings: MatchSettings, generator: Any) -> Matcher:
    """The run's matcher, and what it uses or goes without, said once."""
    matcher = run_matcher(
        run,
        generator=generator,
        settings=settings,
        # The run's own dataset without its held-out sounds: --example N is not looked up.
        exclude_rows=None if settings.lookup_dataset else run.split.indices("test"),
    )
    budget = f"{settings.budget.renders} renders per sound"
    if settings.budget.seconds is not None:
        budget += f" (at most {settings.budget.seconds:g} s)"
    print(f"matching with {settings.method!r}: {budget}, seed {settings.seed}")
    if matcher.lookup_record is not None:
        print(f"  lookup: {matcher.lookup_record.dataset}")
    for note in matcher.notes:
        print(f"note: {note}")
    return matcher


def _loudness_lines(record: dict[str, Any]) -> list[str]:
    """How the synth's WAVs were brought to the input's loudness."""
    lines = []
    for candidate in record["candidates"]:
        loudness = candidate.get("wav_loudness")
        if not loudness or candidate.get("wav") is None:
            continue
        text = f"  {candidate['wav']}: {loudness['gain_db']:+.1f} dB to the input's loudness"
        if loudness["limited"]:
            text += (
                f" (the same loudness needs {loudness['wanted_gain_db']:+.1f} dB; limited so it "
                "never clips)"
            )
        if text not in lines:
            lines.append(text)
    return lines


def _match_item(
    run: Run, item: Path | int, args: argparse.Namespace, *, matcher: Matcher,
    settings: MatchSettings, output_dir: Path, taken: set[str],
) -> list[MatchOutcome]:  # fmt: skip
    """Match one file (each of its parts) or one test example; write and return what was found."""
    common: dict[str, Any] = {"matcher": matcher, "output_dir": output_dir, "settings": settings}
    generator, top_k = matcher.generator, settings.top_k
    if isinstance(item, int):
        prediction = predict_example(run, item, top_k=top_k, generator=generator)
        stem = unique_stem(Path(f"test_{item:06d}"), taken)
        return [match_and_write(run, prediction, stem=stem, **common)]
    stem = unique_stem(item, taken)
    if args.segments == 1:
        return [match_sound_file(run, item, stem=stem, offset_s=args.offset_s, **common)]
    predictions = predict_segments(
        run, item, offset_s=args.offset_s, n_segments=args.segments, hop_s=args.hop_s,
        top_k=top_k, generator=generator,
    )  # fmt: skip
    return [
        match_and_write(run, p, stem=f"{stem}_at_{p.input.offset_s:.3f}s", **common)
        for p in predictions
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = get_parser()
    args = parser.parse_args(argv)
    if not args.sounds and not args.example:
        parser.error("give sound files, or --example N")
    settings = _match_settings(args)  # checked before the model loads
    shipped = args.run is None
    if shipped and args.checkpoint != "best":
        parser.error("--checkpoint latest needs --run: the shipped model keeps only its best")
    if shipped and args.synth == "dexed":
        require_dexed()  # one line saying how to install the extra, before loading anything
    run = load_run(
        pretrained_run_dir(args.synth) if shipped else args.run, checkpoint=args.checkpoint
    )
    # Never write into the package: the shipped model's predictions go to the working folder.
    output_dir = args.output_dir or (
        SHIPPED_PREDICTIONS_DIR if shipped else run.run_dir / "predictions"
    )
    print(
        f"model {run.model_name} from {run.run_dir} ({run_label(run)}): "
        f"{run.parameter_set.n_parameters} parameters of the {run.generator_name!r} synth, "
        f"{run.n_samples / run.sample_rate:g} s at {run.sample_rate} Hz"
    )
    generator = run.make_generator(workers=settings.workers)
    failed = 0
    taken: set[str] = set()
    inputs: list[Path | int] = [*args.sounds, *args.example]
    legend_shown = False
    try:
        matcher = _matcher(run, settings, generator)
        for item in inputs:
            try:
                # One BLAS thread: the match renders and scores in its own --workers threads,
                # and BLAS's threads would only wait on them (2.5x slower under load).
                with threadpool_limits(limits=1, user_api="blas"):
                    outcomes = _match_item(
                        run, item, args, matcher=matcher, settings=settings,
                        output_dir=output_dir, taken=taken,
                    )  # fmt: skip
            except (InverSynthError, OSError) as exc:
                failed += 1
                message = str(exc) if isinstance(exc, InverSynthError) else exc.strerror or exc
                where = "" if isinstance(exc, InverSynthError) else f"{item}: "
                sys.stdout.flush()  # keep the error next to its file when both go to one log
                print(f"error: {where}{message}", file=sys.stderr, flush=True)
                continue
            for outcome in outcomes:
                print()
                if not legend_shown:
                    _print_legend(run, generator)
                    legend_shown = True
                print(format_prediction(outcome.prediction, parameter_set=run.parameter_set))
                for line in _loudness_lines(outcome.record):
                    print(line)
                names = ", ".join(p.name for p in outcome.files.values())
                print(f"  wrote {names} in {output_dir}")
    finally:
        generator.close()
        if output_dir == predictions_folder():  # clean_outputs tells predict's folder by its mark
            mark_predictions_folder(output_dir)
    n = len(inputs)
    if failed:
        print(f"\n{n - failed} of {n} sounds matched; {failed} failed", file=sys.stderr)
        return 2
    return 0


def _print_legend(run: Run, generator: Any) -> None:
    """What each parameter is (name, group, unit: what it does), printed once."""
    described = with_descriptions(run.parameter_set, generator=generator)
    print(f"The parameters of the {run.generator_name!r} synth (group, unit: what each does):")
    for line in legend_lines(described):
        print(f"  {line}")
    print()


if __name__ == "__main__":
    run_cli(main)
