"""Making a dataset from a command line: the dataset options in, a checked file out.

The FM, plugin and DX7 commands share this: it runs :class:`~generators.writer.DatasetCreator`
as the options of :func:`core.options.add_dataset_arguments` say, then
checks what came out (silent or failed examples).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.errors import InverSynthError
from core.options import cap_workers
from generators.dataset_options import parse_shard
from generators.pool import started_workers
from generators.schema import SILENCE_PEAK, dataset_path
from generators.sound_generator import SoundGenerator

__all__ = ["check_outcome", "create_dataset_from_args"]


def create_dataset_from_args(generator: SoundGenerator, args: argparse.Namespace) -> Path:
    """Run a :class:`DatasetCreator` as the dataset options (:mod:`core.options`) say.

    More ``--workers`` than CPU cores are cut to the core count, with a
    warning. After the run, a warning says when more than half the examples
    are silent or some failed; an error (exit code 2) when every one is, since
    such a dataset trains nothing (the file is kept, complete).
    """
    shard = parse_shard(args.shard) if args.shard else None
    path = dataset_path(args.dataset_directory, args.name, shard)
    workers = cap_workers(args.workers)
    # The workers start first: they import the synth while this process imports the
    # writer (HDF5) and makes the file, which is most of a small dataset's start-up.
    with started_workers(
        generator_name=generator.name, generator_config=generator.config(), workers=workers
    ):
        from generators.writer import DatasetCreator, DatasetPlan

        creator = DatasetCreator(
            generator,
            path=path,
            plan=DatasetPlan(n_examples=args.num_examples, seed=args.seed, shard=shard or (1, 1)),
            workers=workers,
            chunk_size=args.chunk_size,
            wav_directory=args.wavefile_directory if args.write_wavs else None,
            wav_prefix=args.name,
            progress=not args.no_progress,
        )
        out = creator.run(resume=args.resume, overwrite=args.overwrite)
    print(f"dataset: {out}")
    check_outcome(
        out, n_examples=creator.n_examples, n_silent=creator.n_silent, n_failed=creator.n_failed
    )
    return out


def check_outcome(path: Path, *, n_examples: int, n_silent: int, n_failed: int) -> None:
    """Warn on stderr about silent or failed examples; raise when no example is usable."""
    if n_failed:
        print(
            f"warning: {n_failed:,} of {n_examples:,} examples failed to render (the synth "
            "crashed or hung on every retry); the file marks them in 'failed' and readers "
            "leave them out",
            file=sys.stderr,
        )
    if n_failed == n_examples:
        raise InverSynthError(
            f"every one of the {n_examples:,} examples failed to render; {str(path)!r} is "
            "complete but holds no usable example"
        )
    if n_silent + n_failed == n_examples:
        raise InverSynthError(
            f"every one of the {n_examples:,} examples is silent (peak below {SILENCE_PEAK:g}): "
            "the synth makes no sound with these settings (an effect plugin? a volume at 0?); "
            f"{str(path)!r} is complete but trains nothing"
        )
    if n_silent > n_examples / 2:
        print(
            f"warning: {n_silent:,} of {n_examples:,} examples "
            f"({100 * n_silent / n_examples:.0f} %) are silent (peak below {SILENCE_PEAK:g}); "
            "check the synth's settings (for a plugin: python -m generators.vst check, or "
            "--resample_silent)",
            file=sys.stderr,
        )
