"""TensorFlow's start-up noise stays out of the terminal, whoever started the process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from models.common.tensorflow_env import NOISE, OWN_LEVEL_MARK

REPO = Path(__file__).resolve().parents[1]


def test_a_process_started_by_a_toolkit_process_filters_the_noise_too() -> None:
    # A toolkit process sets the log level and starts another (a benchmark's worker, a
    # command run from a script): the level comes with the environment, and a level of 2
    # alone lets cuInit's ERROR line through on a machine with CUDA's stubs and no GPU.
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", OWN_LEVEL_MARK)}
    script = (
        "import os\n"
        "from models.common.tensorflow_env import import_tensorflow\n"
        "tf = import_tensorflow()\n"
        "tf.config.list_logical_devices('GPU')\n"  # as training asks, later: CUDA starts here
        "print(os.environ['TF_CPP_MIN_LOG_LEVEL'], os.environ['" + OWN_LEVEL_MARK + "'])\n"
    )
    parent = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert parent.returncode == 0, parent.stderr[-2000:]
    level, mark = parent.stdout.split()
    child = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": level, OWN_LEVEL_MARK: mark},
    )  # fmt: skip
    assert child.returncode == 0, child.stderr[-2000:]
    noise = [line for line in (parent.stderr + child.stderr).splitlines() if NOISE.search(line)]
    assert not noise, noise
