"""Command line of the DX7 (Dexed) generator (``python -m generators.dexed``).

::

    python -m generators.dexed describe [--config plugin_config/dexed_medium.json]
    python -m generators.dexed check --config plugin_config/dexed_medium.json
    python -m generators.dexed run --config plugin_config/dexed_medium.json --name dexed \\
        --num_examples 20000 --workers 2
    python -m generators.dexed bank --bank rom1a.syx rom1b.syx \\
        --config plugin_config/dexed_medium.json --name dexed_rom1
    python -m generators.dexed collect banks/*.syx --output data/dx7_voices.npz \\
        --held_out rom1a.syx ... SynprezFM_32.syx --validation 512
    python -m generators.dexed bank --collection data/dx7_voices.npz --role validation \\
        --config plugin_config/dexed_voice.json --name dx7_validation
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.checks import MAX_CHECK_EXAMPLES, check_render_size
from core.commandline import HelpFormatter, bounded_int, make_parser
from core.environment import env_default
from core.errors import InverSynthError
from core.options import add_seed_argument, output_file
from generators.dataset_options import (
    add_dataset_arguments,
    add_length_argument,
    add_note_arguments,
    add_sample_rate_argument,
    n_samples_from_args,
)
from generators.dexed.config import load_dexed_config
from generators.dexed.engine import describe_rows, engine_parameter, read_syx_voices
from generators.dexed.synth import DexedGenerator, write_bank_dataset
from generators.dexed.voices import (
    DEFAULT_NEAR_PARAMETERS,
    HELD_OUT_SET,
    VoiceCollection,
    gather_voices,
)
from generators.generate import create_dataset_from_args
from generators.schema import SILENCE_PEAK, dataset_path

DEFAULT_CONFIG = Path("plugin_config/dexed_medium.json")
ROLES = ("training", "validation")  # a collection's roles, in the order of their codes


def _add_synth_arguments(parser: argparse.ArgumentParser, *, with_audio: bool) -> None:
    g = parser.add_argument_group("Dexed")
    g.add_argument(
        "--config",
        type=Path,
        default=env_default("DEXED_CONFIG", DEFAULT_CONFIG, Path),
        help="Dexed config JSON (plugin_config/dexed_*.json)",
    )
    add_note_arguments(g, default_length="3/4 of the example")
    if with_audio:  # "run" has these among its dataset options
        add_length_argument(g)
        add_sample_rate_argument(g)


def _generator_from_args(args: argparse.Namespace, *, workers: int = 1) -> DexedGenerator:
    return DexedGenerator(
        dexed_config=args.config,
        sample_rate=args.sample_rate,
        n_samples=n_samples_from_args(args),
        pitch=args.pitch,
        velocity=args.velocity,
        note_length_s=args.note_length,
        workers=workers,
    )


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        prog="python -m generators.dexed",
        description="Datasets of the Yamaha DX7 through Dexed's engine (dexed-py, the optional "
        "extra 'dexed': uv sync --extra dexed).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    fmt = HelpFormatter
    describe = commands.add_parser(
        "describe", help="list the engine's 145 parameters, or a config's", formatter_class=fmt
    )
    describe.add_argument(
        "--config", type=Path, default=None, help="list this config's parameters and levels"
    )
    check = commands.add_parser(
        "check", help="render random examples: silence, levels, speed", formatter_class=fmt
    )
    _add_synth_arguments(check, with_audio=True)
    check.add_argument(
        "--examples",
        type=bounded_int(1, MAX_CHECK_EXAMPLES),
        default=256,
        help=f"examples to render, at most {MAX_CHECK_EXAMPLES:,} and 1 GiB of audio",
    )
    add_seed_argument(check, env=None, help="seed of the examples rendered (>= 0)")
    run = commands.add_parser("run", help="make a dataset of random patches", formatter_class=fmt)
    _add_synth_arguments(run, with_audio=False)
    add_dataset_arguments(run, default_name="dexed")
    bank = commands.add_parser(
        "bank",
        help="make a dataset of the voices of DX7 32-voice banks (.syx)",
        formatter_class=fmt,
    )
    source = bank.add_mutually_exclusive_group(required=True)
    source.add_argument("--bank", type=Path, nargs="+", help="DX7 bank file(s), 32 voices each")
    source.add_argument(
        "--collection", type=Path, help="a voice collection (.npz) made by the collect command"
    )
    bank.add_argument(
        "--role",
        choices=ROLES,
        default="validation",
        help="with --collection: which of its voices",
    )
    _add_synth_arguments(bank, with_audio=True)
    bank.add_argument(
        "--name",
        default="dexed_bank",
        help="dataset name; the file is {dataset_directory}/{name}_data.hdf5",
    )
    bank.add_argument(
        "--dataset_directory",
        type=Path,
        default=env_default("DATASET_DIRECTORY", Path("data"), Path),
        help="folder of the HDF5 file",
    )
    bank.add_argument(
        "--overwrite", action="store_true", help="replace an existing dataset of the same name"
    )
    bank.add_argument("--no_progress", action="store_true", help="no progress bar (for logs)")
    _add_collect_parser(commands)
    return parser


def _add_collect_parser(commands: Any) -> None:
    collect = commands.add_parser(
        "collect",
        help="gather the voices of DX7 banks into a voice collection (.npz), each voice once, "
        "the held-out voices left out",
        formatter_class=HelpFormatter,
    )
    collect.add_argument("banks", type=Path, nargs="+", help="DX7 32-voice bank files (.syx)")
    collect.add_argument(
        "--output", type=output_file, required=True, help="the collection file to write (.npz)"
    )
    collect.add_argument(
        "--held_out",
        type=Path,
        nargs="*",
        default=[],
        help=f"banks whose voices, and their near copies, stay out (the {HELD_OUT_SET} voices "
        "themselves stay out by their bytes even without these files)",
    )
    collect.add_argument(
        "--near_parameters",
        type=bounded_int(0, 145),
        default=DEFAULT_NEAR_PARAMETERS,
        help="a voice differing from a held-out or validation voice in at most this many of "
        "its 145 parameters is a near copy",
    )
    collect.add_argument(
        "--validation",
        type=bounded_int(0, 1_000_000),
        default=512,
        help="voices set aside for validation (their near copies leave the training voices)",
    )
    collect.add_argument("--seed", type=bounded_int(0, 2**63 - 1), default=0, help="which voices")
    collect.add_argument("--overwrite", action="store_true", help="replace an existing collection")


def _describe_config(path: Path) -> list[str]:
    cfg = load_dexed_config(path)
    rows = [f"{cfg.source}: {len(cfg.varied)} varied, {len(cfg.fixed)} fixed"]
    rows += describe_rows([v.name for v in cfg.varied])
    rows.append("levels, in DX7 units (a continuous parameter's value is DX7 / max):")
    for v in cfg.varied:
        p = engine_parameter(v.name)[1]
        shown = " ".join(str(p.to_dx7(x)) for x in v.levels)
        rows.append(f"  {v.name:<26} {len(v.levels):>3}: {shown}")
    rows.append("fixed, in DX7 units:")
    rows += [f"  {f.name:<26} {engine_parameter(f.name)[1].to_dx7(f.value)}" for f in cfg.fixed]
    return rows


def check_config(generator: DexedGenerator, *, seed: int, n_examples: int) -> dict[str, float]:
    """Render ``n_examples`` random examples: the silent fraction, levels and speed.

    ``n_examples`` is at most :data:`~core.checks.MAX_CHECK_EXAMPLES` and
    1 GiB of audio (:func:`~core.checks.check_render_size`).
    """
    n_examples = check_render_size(n_examples, generator.n_samples, name="--examples")
    t0 = time.perf_counter()
    audio = generator.render_examples(seed=seed, start=0, n_examples=n_examples).audio
    elapsed = time.perf_counter() - t0
    peaks = np.max(np.abs(audio), axis=1)  # [n]
    return {
        "examples": n_examples,
        "silent_fraction": float(np.mean(~(peaks >= SILENCE_PEAK))),
        "below_-40dB_fraction": float(np.mean(peaks < 1e-2)),
        "peak_median": float(np.median(peaks)),
        "scaled_down_fraction": float(np.mean(peaks >= 1.0 - 1e-6)),
        "examples_per_s": n_examples / elapsed if elapsed > 0 else float("inf"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    if args.command == "describe":
        rows = describe_rows() if args.config is None else _describe_config(args.config)
        print("\n".join(rows))
        return 0
    if args.command == "run":
        # One writer process whose generator renders with --workers engine threads
        # (no GIL while rendering), the next chunk while this one is written: that
        # starts at once and copies no audio between processes. The file is the
        # same as with worker processes.
        with _generator_from_args(args, workers=args.workers) as generator:
            create_dataset_from_args(generator, argparse.Namespace(**{**vars(args), "workers": 1}))
        return 0
    if args.command == "collect":
        return _collect(args)
    generator = _generator_from_args(args)
    if args.command == "check":
        report = check_config(generator, seed=args.seed, n_examples=args.examples)
        for key, value in report.items():
            print(f"{key:<22}: {value:.6g}")
        return 0
    if args.collection is not None:
        voices = VoiceCollection.load(args.collection).part(ROLES.index(args.role))
        label = f"{args.collection} ({args.role})"
    else:
        voices, label = np.concatenate([read_syx_voices(b) for b in args.bank]), ""
    out = write_bank_dataset(
        generator,
        voices,
        sources=[str(b) for b in args.bank] if args.bank else [label],
        path=dataset_path(args.dataset_directory, args.name),
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    print(f"dataset: {out}")
    return 0


def _collect(args: argparse.Namespace) -> int:
    if args.output.exists() and not args.overwrite:
        raise InverSynthError(
            f"{str(args.output)!r} already exists; pass --overwrite to replace it"
        )
    collection, report = gather_voices(
        args.banks,
        held_out_files=args.held_out,
        near_parameters=args.near_parameters,
        validation=args.validation,
        seed=args.seed,
    )
    collection.save(args.output)
    print("\n".join(report.lines()))
    print(f"collection: {args.output} (fingerprint {collection.fingerprint})")
    return 0
