"""Which training mix teaches a network real DX7 voices: one short run per mix, then its guesses.

Each mix is a ``dx7_voices`` sampler (:mod:`generators.dexed.voice_mix`) over
the same voice collection. For each, M1 trains for ``--budget_s`` seconds on a
stream of that mix (``--head softmax --label_sigma 1``, validation on the
collection's validation voices), then the network's guess (the median class of
every ordered parameter) of every voice of ``--validation_dataset`` (the test
half of its split) and ``--held_out_dataset`` is played and compared with the
voice: mean rho_STFT (%) and LSD (dB). Choose on the validation voices; the
held-out ones only report. Needs the ``dexed`` extra and a collection::

    uv run python -m generators.dexed collect BANKS... --held_out ROMS... --output data/dx7_voices.npz
    uv run python -m generators.dexed bank --collection data/dx7_voices.npz --role validation \\
        --config plugin_config/dexed_voice.json --name dx7val
    uv run python -m generators.dexed bank --bank ROM1A.syx ... SynprezFM_32.syx \\
        --config plugin_config/dexed_voice.json --name dx7heldout
    uv run python -m benchmarks.dexed_mix --budget_s 720
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from generators.dataset import open_dataset
from models.common.run import load_run
from models.matching.sound_metrics import reconstruction_metrics

MIXES: dict[str, dict[str, object]] = {
    "real": {"mix": {"real": 1.0}},
    "real + variants": {
        "mix": {"real": 0.5, "perturbed": 0.25, "recombined": 0.25},
        "transpose_spread": 12,
        "transposed_share": 0.5,
    },
    "real + variants + random": {
        "mix": {"real": 0.3, "perturbed": 0.3, "recombined": 0.3, "random": 0.1},
        "transpose_spread": 12,
        "transposed_share": 0.5,
    },
    "random": {"mix": {"random": 1.0}},
}


def guess_quality(run_dir: Path, dataset: Path, *, test_split: bool) -> tuple[float, float]:
    """Mean rho_STFT (%) and LSD (dB) of the network's guesses of a dataset's voices.

    ``test_split``: only the run's test rows (the run's own dataset), else every row.
    """

    run = load_run(run_dir)
    with open_dataset(dataset) as ds:
        rows = run.split.indices("test") if test_split else np.arange(ds.n_examples)
        audio, _ = ds.read(rows)
    generator = run.make_generator()
    guesses = generator.render_indices(run.parameter_set.decode_median(run.predict_scores(audio)))
    metrics = reconstruction_metrics(
        audio.astype(np.float64), guesses.astype(np.float64), sample_rate=generator.sample_rate
    )
    return 100 * float(np.mean(metrics["rho_stft"])), float(
        np.mean(metrics["log_spectral_distance"])
    )


def train(name: str, spec: dict[str, object], args: argparse.Namespace, folder: Path) -> Path:
    sampler = folder / f"{len(list(folder.iterdir()))}.json"
    sampler.write_text(
        json.dumps({"kind": "dx7_voices", "collection": str(args.collection), **spec})
    )
    run_name = "mix_" + "".join(c if c.isalnum() else "_" for c in name)
    command = [
        sys.executable, "-m", "models.spectrogram_cnn", "--model", "M1",
        "--dataset_file", str(args.validation_dataset), "--split", "0.02,0.49,0.49",
        "--stream", "--sampler", str(sampler), "--head", "softmax", "--label_sigma", "1",
        "--run_name", run_name, "--output_dir", str(args.output_dir), "--no_evaluate",
        "--no_progress", "--time_limit_s", str(args.budget_s), "--epochs", "1000",
    ]  # fmt: skip
    subprocess.run(command, check=True)
    return args.output_dir / run_name


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dexed_mix", description=__doc__)
    parser.add_argument("--collection", type=Path, default=Path("data/dx7_voices.npz"))
    parser.add_argument("--validation_dataset", type=Path, default=Path("data/dx7val_data.hdf5"))
    parser.add_argument("--held_out_dataset", type=Path, default=Path("data/dx7heldout_data.hdf5"))
    parser.add_argument("--output_dir", type=Path, default=Path("benchmarks/results/dexed_mix"))
    parser.add_argument("--budget_s", type=float, default=720.0, help="training seconds per mix")
    parser.add_argument("--mixes", nargs="+", choices=sorted(MIXES), default=list(MIXES))
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.mixes:
            run_dir = train(name, MIXES[name], args, Path(folder))
            epochs = len((run_dir / "history.csv").read_text().strip().splitlines()) - 1
            validation = guess_quality(run_dir, args.validation_dataset, test_split=True)
            held_out = guess_quality(run_dir, args.held_out_dataset, test_split=False)
            rows.append((name, epochs, validation, held_out))
    print(
        "| mix | epochs of 10,000 | validation rho_STFT % / LSD dB | held-out rho_STFT % / LSD dB |"
    )
    print("|---|---|---|---|")
    for name, epochs, (vr, vl), (hr, hl) in rows:
        print(f"| {name} | {epochs} | {vr:.1f} / {vl:.2f} | {hr:.1f} / {hl:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
