"""The plugin command, ``python -m generators.vst``: describe a plugin, check a config, make a dataset.

Command line::

    python -m generators.vst describe --plugin /usr/lib/vst/amsynth_vst.so \\
        --output ~/synths/my_amsynth.json
    python -m generators.vst check --config plugin_config/amsynth.json
    python -m generators.vst run --config plugin_config/amsynth.json \\
        --num_examples 20000 --name amsynth --workers 2
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.checks import MAX_CHECK_EXAMPLES, check_render_size
from core.commandline import HelpFormatter, bounded_int, make_parser
from core.environment import env_default
from core.errors import InverSynthError
from core.options import add_bool_argument, add_seed_argument, cap_workers, output_file
from generators.dataset_options import (
    add_dataset_arguments,
    add_length_argument,
    add_note_arguments,
    add_sample_rate_argument,
    n_samples_from_args,
)
from generators.generate import create_dataset_from_args
from generators.vst.describe import (
    describe_plugin,
    format_plugin_table,
    plugin_config_template,
    write_text_atomic,
)
from generators.vst.hosts import default_retries, default_timeout_s, retries_type, timeout_type
from generators.vst.synth import HostSettings, PlaySettings, VSTGenerator

__all__ = ["check_determinism", "get_parser", "main"]


def _generator_from_args(args: argparse.Namespace, *, workers: int = 1) -> VSTGenerator:
    return VSTGenerator(
        plugin_config=args.config,
        plugin=args.plugin,
        sample_rate=args.sample_rate,
        n_samples=n_samples_from_args(args),
        play=PlaySettings(pitch=args.pitch, velocity=args.velocity, note_length_s=args.note_length),
        resample_silent=getattr(args, "resample_silent", False),
        hosts=HostSettings(workers=workers, timeout_s=args.timeout, retries=args.retries),
    )


def _add_synth_arguments(parser: argparse.ArgumentParser, *, with_dataset: bool) -> None:
    g = parser.add_argument_group("plugin")
    g.add_argument(
        "--config",
        type=Path,
        default=env_default("PLUGIN_CONFIG", None, Path),
        required=env_default("PLUGIN_CONFIG", None) is None,
        help="plugin config JSON (plugin_config/*.json)",
    )
    g.add_argument(
        "--plugin",
        default=env_default("PLUGIN", None),
        help="plugin file (unset: the config's 'plugin')",
    )
    add_note_arguments(g, default_length="half the example")
    g.add_argument(
        "--timeout",
        type=timeout_type,
        default=default_timeout_s(),
        help="seconds one render may take before its plugin host counts as hung (0.01 to 86400)",
    )
    g.add_argument(
        "--retries",
        type=retries_type,
        default=default_retries(),
        help="fresh attempts for an example whose plugin host crashed or hung (0 to 100); "
        "an example that fails them all is marked failed in the dataset, which goes on",
    )
    if with_dataset:
        add_bool_argument(
            g,
            "resample_silent",
            env="RESAMPLE_SILENT",
            help="redraw (deterministically) the parameters of examples that render silent",
        )
    else:
        add_sample_rate_argument(g)
        add_length_argument(g)


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        prog="python -m generators.vst",
        description="Datasets from real synthesizer plugins (VST2/VST3, hosted by DawDreamer).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    describe = commands.add_parser(
        "describe",
        help="list a plugin's parameters; write a plugin config template",
        formatter_class=HelpFormatter,
    )
    describe.add_argument("--plugin", required=True, help="plugin file (.so, .vst3)")
    describe.add_argument(
        "--output", type=output_file, default=None, help="write a plugin config template here"
    )
    describe.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing file at --output (without it, an existing file is refused: "
        "it may be a config edited by hand)",
    )
    check = commands.add_parser(
        "check",
        help="render a few examples twice: determinism, levels, silence",
        formatter_class=HelpFormatter,
    )
    _add_synth_arguments(check, with_dataset=False)
    check.add_argument(
        "--examples",
        type=bounded_int(1, MAX_CHECK_EXAMPLES),
        default=32,
        help=f"examples to render, at most {MAX_CHECK_EXAMPLES:,} and 1 GiB of audio",
    )
    add_seed_argument(check, env=None, help="seed of the examples rendered")
    run = commands.add_parser(
        "run",
        help="make a dataset",
        formatter_class=HelpFormatter,
    )
    _add_synth_arguments(run, with_dataset=True)
    add_dataset_arguments(run, default_name="vst")
    # A plugin's renders are reproducible to about 1e-7, not bit for bit (its
    # internal state differs slightly with what a host rendered before).
    for action in run._actions:
        if action.dest == "workers":
            action.help = (
                "plugin host processes (at most one per CPU core); the labels are the same "
                "whatever the number, the audio to within 1e-7 (measured: 1 row of 1,000 "
                "differed, by 3e-8, between 1 and 2 hosts)"
            )
        elif action.dest == "seed":
            action.help = (
                "random seed (>= 0): the same seed gives the same labels and, for a plugin, "
                "the same audio to within 1e-7 (not bit for bit)"
            )
    return parser


def check_determinism(generator: VSTGenerator, *, seed: int, n_examples: int) -> dict[str, Any]:
    """Render examples in order, then again in reverse order in fresh hosts; compare.

    A plugin config whose renders depend on what was rendered before (a noise
    oscillator, a free-running LFO) shows up as a large ``max_difference``.
    """
    # Rendered twice, both kept: half the budget of audio each.
    n_examples = check_render_size(n_examples, 2 * generator.n_samples, name="--examples")
    ps = generator.parameter_set
    indices = ps.sample_indices(seed=seed, start=0, n_examples=n_examples)
    values = ps.to_values(indices)
    t0 = time.perf_counter()
    first, silent = generator.render_checked(values)
    elapsed = time.perf_counter() - t0
    generator.close()  # fresh hosts: a different history for every example
    again = generator.render(values[::-1])[::-1]
    peaks = np.max(np.abs(first), axis=1)
    return {
        "examples": n_examples,
        "max_difference": float(np.max(np.abs(first - again))),
        "peak_min": float(peaks.min()),
        "peak_max": float(peaks.max()),
        "silent": int(silent.sum()),
        "examples_per_s": n_examples / elapsed if elapsed > 0 else float("inf"),
    }


def _describe(args: argparse.Namespace) -> None:
    output = args.output
    if output is not None and (output.exists() or output.is_symlink()) and not args.overwrite:
        raise InverSynthError(
            f"{str(output)!r} exists (perhaps a config edited by hand); pass --overwrite to "
            "replace it, or choose another --output"
        )
    info = describe_plugin(args.plugin)
    print(format_plugin_table(info))
    if output is not None:
        write_text_atomic(output, json.dumps(plugin_config_template(info), indent=2) + "\n")
        print(f"template: {output}")


def _check(args: argparse.Namespace) -> None:
    with _generator_from_args(args) as generator:
        report = check_determinism(generator, seed=args.seed, n_examples=args.examples)
    for key, value in report.items():
        print(f"{key:<16}: {value:.6g}" if isinstance(value, float) else f"{key:<16}: {value}")
    verdict = "ok" if report["max_difference"] <= 1e-3 else "NOT reproducible"
    print(f"renders depend on the parameters only: {verdict}")


def _run(args: argparse.Namespace) -> None:
    # The generator's plugin hosts are the workers, fed by one writer process.
    # That starts faster and copies less audio than writer processes with a
    # host each (the dataset is the same either way).
    with _generator_from_args(args, workers=cap_workers(args.workers)) as generator:
        generator.validate()  # a bad config fails here, before a dataset file exists
        create_dataset_from_args(generator, argparse.Namespace(**{**vars(args), "workers": 1}))


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    {"describe": _describe, "check": _check, "run": _run}[args.command](args)
    return 0
