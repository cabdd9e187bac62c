"""How long the default match takes: the figure :data:`DEFAULT_BUDGET_RENDERS` is sized by.

Matches held-out FM sounds (seed 987654, which no training set uses) as
``python -m models.predict`` does by default (the shipped model, ``hybrid``,
its lookup, the default budget of renders) and prints, per sound, the wall
time and the CPU time of the match and of the whole pipeline (prediction and
match). On a machine shared with other jobs the wall time measures the load;
the CPU time of this single-threaded work (run it with
``OPENBLAS_NUM_THREADS=1``) is what the same match takes on an idle core, so
the renders that fit :data:`BUDGET_REFERENCE_S` are taken from it.

    OPENBLAS_NUM_THREADS=1 python -m benchmarks.default_budget --n_sounds 20
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.cli.demo_app import HELD_OUT_SEED
from models.common.pretrained import pretrained_run_dir
from models.common.run import load_run
from models.matching.match_sounds import match_prediction, run_matcher
from models.matching.objective import BUDGET_REFERENCE_S, DEFAULT_BUDGET_RENDERS
from models.matching.prediction import predict_audio


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.default_budget", description=__doc__
    )
    parser.add_argument("--n_sounds", type=int, default=20)
    parser.add_argument("--data_dir", type=Path, default=Path("data"), help="the lookup's cache")
    parser.add_argument("--budget_renders", type=int, default=DEFAULT_BUDGET_RENDERS)
    args = parser.parse_args(argv)
    print(f"machine load at start: {os.getloadavg()}", flush=True)

    run = load_run(pretrained_run_dir())
    generator = run.make_generator()
    matcher = run_matcher(
        run, generator=generator, exclude_rows=run.split.indices("test"), data_dir=args.data_dir
    )  # the default method, hybrid
    targets = generator.render_examples(seed=HELD_OUT_SEED, start=0, n_examples=args.n_sounds)
    predict_audio(run, targets.audio[0], generator=generator)  # the model traced, outside
    rows = []
    for i, audio in enumerate(targets.audio):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        prediction = predict_audio(run, audio, generator=generator)
        wall1, cpu1 = time.perf_counter(), time.process_time()
        match = match_prediction(prediction, matcher, max_renders=args.budget_renders, seed=i)
        wall2, cpu2 = time.perf_counter(), time.process_time()
        rows.append((match.renders, wall2 - wall1, cpu2 - cpu1, wall2 - wall0, cpu2 - cpu0))
        print(
            f"sound {i}: {match.renders} renders, match {wall2 - wall1:.2f} s wall / "
            f"{cpu2 - cpu1:.2f} s CPU, with the prediction {wall2 - wall0:.2f} / "
            f"{cpu2 - cpu0:.2f} s; rho_STFT {100 * match.metrics['rho_stft']:.1f} %",
            flush=True,
        )
    generator.close()
    renders, match_wall, match_cpu, all_wall, all_cpu = np.asarray(rows, dtype=np.float64).T
    per_render_s = float(np.sum(all_cpu) / np.sum(renders))
    print(
        f"\n{len(rows)} sounds, {np.mean(renders):.0f} renders each: match {np.mean(match_wall):.2f} "
        f"s wall / {np.mean(match_cpu):.2f} s CPU; with the prediction {np.mean(all_wall):.2f} s "
        f"wall / {np.mean(all_cpu):.2f} s CPU ({1000 * per_render_s:.3f} CPU-ms per render)\n"
        f"renders in {BUDGET_REFERENCE_S:g} s of CPU: {BUDGET_REFERENCE_S / per_render_s:.0f} "
        f"(DEFAULT_BUDGET_RENDERS is {DEFAULT_BUDGET_RENDERS}); load at the end: {os.getloadavg()}"
    )


if __name__ == "__main__":
    main()
