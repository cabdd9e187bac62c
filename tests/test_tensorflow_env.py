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
    inherited = {**env, "TF_CPP_MIN_LOG_LEVEL": "2", OWN_LEVEL_MARK: "2"}  # as the parent sets
    parent, child = (
        subprocess.Popen(
            [sys.executable, "-c", script], cwd=REPO, env=e, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        for e in (env, inherited)
    )  # fmt: skip
    (parent_out, parent_err), (_, child_err) = (p.communicate(timeout=300) for p in (parent, child))
    assert parent.returncode == 0 and child.returncode == 0, parent_err[-2000:] + child_err[-2000:]
    assert parent_out.split() == ["2", "2"]  # what the child was given: the level, marked
    noise = [line for line in (parent_err + child_err).splitlines() if NOISE.search(line)]
    assert not noise, noise
