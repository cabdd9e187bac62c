"""How close a DX7 config can come to real voices: its *reach*.

Every voice of the banks (or of a voice collection's part) is projected onto
the config (:meth:`DexedGenerator.project_voices`: each varied parameter to its
nearest level, the rest as the config fixes them) and both are played with the
config's note; the projected voice against the voice itself is the best any
matcher on this config can do. Needs the optional extra (``uv sync --extra
dexed``). Run by hand::

    uv run python -m benchmarks.dexed_reach --config plugin_config/dexed_voice.json \\
        --banks ROM1A.syx ... SynprezFM_32.syx
    uv run python -m benchmarks.dexed_reach --config plugin_config/dexed_full.json \\
        --collection data/dx7_voices.npz --role validation

Prints the mean rho_STFT (%) and LSD (dB), and the share of voices within
rho_STFT 95 %; ``--coarsen FAMILY STEP`` also measures the config with one
family of parameters (``env_rate``, ``env_level``, ``output_level``, ``fine``,
``breakpoint``, ``depth``, ``pitch_env``, ``lfo``) on a coarser grid of every
STEP-th DX7 value, which is how the voice config's levels were chosen.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from generators.dexed.engine import engine_parameter, read_bank
from generators.dexed.synth import DexedGenerator
from generators.dexed.voices import TRAINING, VALIDATION, VoiceCollection
from models.matching.sound_metrics import reconstruction_metrics

FAMILIES: dict[str, Callable[[str], bool]] = {
    "env_rate": lambda n: n.startswith("op") and "_env_rate" in n,
    "env_level": lambda n: n.startswith("op") and "_env_level" in n,
    "output_level": lambda n: n.endswith("_output_level"),
    "fine": lambda n: n.endswith("_frequency_fine"),
    "breakpoint": lambda n: n.endswith("_breakpoint"),
    "depth": lambda n: n.startswith("op") and n.endswith("_depth"),
    "pitch_env": lambda n: n.startswith("pitch_env_"),
    "lfo": lambda n: n in ("lfo_speed", "lfo_delay", "lfo_pitch_mod_depth", "lfo_amp_mod_depth"),
}


def reach(generator: DexedGenerator, voices: np.ndarray) -> dict[str, np.ndarray]:
    """rho_STFT and LSD of every voice's projection against the voice: arrays [n]."""
    reference = generator.render_voices(voices).astype(np.float64)
    projected = generator.render_voices(generator.project_voices(voices)).astype(np.float64)
    metrics = reconstruction_metrics(reference, projected, sample_rate=generator.sample_rate)
    return {"rho_stft": metrics["rho_stft"], "lsd_db": metrics["log_spectral_distance"]}


def coarsened(config: dict[str, Any], family: str, step: int) -> dict[str, Any]:
    """The config with every parameter of ``family`` on every ``step``-th DX7 value (ends kept)."""
    out = dict(config)
    entries = []
    for entry in config["parameters"]:
        p = engine_parameter(entry["name"])[1]
        if FAMILIES[family](entry["name"]) and not p.discrete:
            values = sorted({*range(0, p.max_value + 1, step), p.max_value})
            entry = {"name": entry["name"], "dx7_values": values}
        entries.append(entry)
    out["parameters"] = entries
    return out


def _voices(args: argparse.Namespace) -> np.ndarray:
    if args.collection is not None:
        role = {"training": TRAINING, "validation": VALIDATION}[args.role]
        return VoiceCollection.load(args.collection).part(role)
    return np.concatenate([read_bank(b) for b in args.banks])


def _report(label: str, result: dict[str, np.ndarray]) -> None:
    rho, lsd = result["rho_stft"], result["lsd_db"]
    print(
        f"{label:<34} rho_STFT {100 * np.mean(rho):6.2f} %  LSD {np.mean(lsd):5.2f} dB  "
        f"within rho 95: {100 * np.mean(rho >= 0.95):5.1f} %  (min rho {100 * np.min(rho):.1f})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dexed_reach", description=__doc__)
    parser.add_argument("--config", type=Path, default=Path("plugin_config/dexed_voice.json"))
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--banks", type=Path, nargs="+", help="DX7 bank files")
    source.add_argument("--collection", type=Path, help="a voice collection (.npz)")
    parser.add_argument("--role", choices=("training", "validation"), default="validation")
    parser.add_argument("--max_voices", type=int, default=None)
    parser.add_argument(
        "--coarsen", nargs=2, action="append", default=[], metavar=("FAMILY", "STEP")
    )
    args = parser.parse_args(argv)
    voices = _voices(args)[: args.max_voices]
    generator = DexedGenerator(dexed_config=args.config)
    print(f"{len(voices)} voices, {args.config} ({generator.parameter_set.n_outputs} outputs)")
    _report(str(args.config.name), reach(generator, voices))
    for family, step in args.coarsen:
        config = coarsened(generator.dexed_config.raw, family, int(step))
        smaller = DexedGenerator(dexed_config=config)
        label = f"  {family} every {step} ({smaller.parameter_set.n_outputs} outputs)"
        _report(label, reach(smaller, voices))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
