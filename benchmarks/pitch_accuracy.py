"""How well the matcher hears a sound's note: pitch estimates of notes of known pitch.

Reads the notes listed in ``DIR/manifest.csv`` (``file,instrument,midi_note``), as
``predict`` hears them (the first second, mono, at the model's 16,384 Hz), runs
:func:`models.matching.pitch.estimate_pitch` and counts: notes given a pitch, within 50
cents of the true note, octave errors, the median error in cents, per instrument and in
all. Run by hand::

    uv run python -m benchmarks.pitch_accuracy NOTES_DIR
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.matching.audio_io import load_for_model
from models.matching.pitch import estimate_pitch

RATE, N_SAMPLES = 16384, 16384


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pitch_accuracy", description=__doc__
    )
    parser.add_argument("folder", type=Path, help="a folder with manifest.csv and its sounds")
    args = parser.parse_args(argv)
    rows = list(csv.DictReader((args.folder / "manifest.csv").open()))
    errors: dict[str, list[float | None]] = {}
    t0 = time.perf_counter()
    for row in rows:
        sound = load_for_model(args.folder / row["file"], sample_rate=RATE, n_samples=N_SAMPLES)
        pitch = estimate_pitch(sound.audio, sample_rate=RATE)
        error = None if pitch.midi is None else pitch.midi - int(row["midi_note"])
        errors.setdefault(row["instrument"], []).append(error)
    seconds = (time.perf_counter() - t0) / len(rows)
    print(
        "| instrument | notes | pitch found | within 50 cents | octave errors | median error, cents |"
    )
    print("|---|---|---|---|---|---|")
    for name, found in [*errors.items(), ("**all**", [e for v in errors.values() for e in v])]:
        known = np.array([e for e in found if e is not None])
        near = int(np.sum(np.abs(known) <= 0.5))
        octave = int(np.sum(np.abs(np.abs(known) - 12) <= 0.5))
        median = f"{100 * np.median(np.abs(known)):.1f}" if known.size else "-"
        print(f"| {name} | {len(found)} | {known.size} | {near} | {octave} | {median} |")
    print(f"\n{seconds:.2f} s per note")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
