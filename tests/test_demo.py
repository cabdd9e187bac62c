"""The demos of the Quickstart, run as a newcomer runs them: one after the other, in a shell.

Each runs as a command of its own (a fresh process, as ``uv run task demo``
starts it), so what it writes to the terminal is what a user sees: no line of
TensorFlow's start-up noise among it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from models.common.tensorflow_env import NOISE, OWN_LEVEL_MARK

REPO = Path(__file__).resolve().parents[1]


def _environment(data_dir: Path) -> dict[str, str]:
    """The user's environment: no TensorFlow log level that this test process set."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", OWN_LEVEL_MARK)}
    env["INVERSYNTH_DATASET_DIRECTORY"] = str(data_dir)  # the shipped model's lookup goes here
    return env


def _command(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


def _noise(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if NOISE.search(line)]


@pytest.mark.slow
def test_the_quickstart_demos_run_one_after_the_other(
    tmp_path: Path, shipped_lookup_dir: Path
) -> None:
    out = tmp_path / "demo"
    env = _environment(shipped_lookup_dir)
    run_dir = out / "runs" / "C1_sine_demo"
    # A run left by an earlier demo is replaced with --overwrite, and the demo says so.
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text("{}")
    (run_dir / "stale.txt").write_text("from an earlier demo")
    demo = _command(
        "models.demo", "--output_dir", str(out), "--synth", "sine", "--model", "C1",
        "--workers", "1", "--num_examples", "60", "--epochs", "1", "--batch_size", "8",
        "--n_report", "2", "--budget_renders", "200", "--overwrite", env=env,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert not _noise(demo.stderr), _noise(demo.stderr)  # cuInit's line among them
    printed = demo.stdout
    assert "Demo finished in" in printed
    assert "replacing the earlier demo" in printed and "stale.txt" in printed
    assert not (run_dir / "stale.txt").exists()
    evaluation = run_dir / "evaluation"
    for name in ("metrics.json", "predictions.npz", "reconstruction.json", "report.html"):
        assert (evaluation / name).is_file(), name
    matched = sorted(p.name for p in (out / "predictions").glob("*.json"))
    assert len(matched) == 4 and "plucked_string_44k_stereo.json" in matched
    assert "resampled from 44100 Hz to 16384 Hz" in printed
    # Held-out sounds and the plucked string are matched with hybrid, beside the network.
    assert printed.count("\n  hybrid:  ") == printed.count("\n  network: ") == 2
    assert printed.count("\n  match (hybrid, ") == printed.count("\n  network's guess: ") == 2
    plucked = json.loads((out / "predictions" / "plucked_string_44k_stereo.json").read_text())
    assert plucked["method"] == "hybrid" and plucked["budget_renders"] == 200
    match, network = plucked["candidates"]
    assert match["distance_db"] <= network["distance_db"]
    first = {p: p.stat().st_mtime_ns for p in (out / "predictions").iterdir()}

    # The next line of the Quickstart: the shipped model, in a folder of its own.
    pretrained = _command(
        "models.demo", "--pretrained", "--output_dir", str(out), "--n_matches", "1",
        "--budget_renders", "64", env=env,
    )  # fmt: skip
    assert pretrained.returncode == 0, pretrained.stderr[-3000:]
    assert not _noise(pretrained.stderr), _noise(pretrained.stderr)
    assert "lookup: rendered from the fm synth: the 19,000 examples" in pretrained.stdout
    record = json.loads((out / "pretrained" / "predictions" / "seed987654_000.json").read_text())
    assert record["lookup"]["n_examples"] == 19000 and record["lookup"]["rendered"]
    assert record["notes"] == []  # hybrid with every part
    assert {p: p.stat().st_mtime_ns for p in (out / "predictions").iterdir()} == first
