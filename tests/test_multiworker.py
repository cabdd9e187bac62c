"""Training on several machines: MultiWorkerMirroredStrategy from TF_CONFIG, two workers on loopback."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from generators.sine_generator import SineGenerator
from generators.writer import DatasetCreator, DatasetPlan

REPO = Path(__file__).resolve().parents[1]


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


WORKER = textwrap.dedent(
    """
    import sys
    import keras
    import numpy as np

    from models.common.training import TrainConfig, train

    data, out, weights, stream = sys.argv[1:5]
    fit = keras.Model.fit

    def fit_and_keep_weights(self, *args, **kwargs):  # what this worker's copy ended with
        history = fit(self, *args, **kwargs)
        np.savez(weights, *self.get_weights())
        return history

    keras.Model.fit = fit_and_keep_weights
    extra = {"stream": True, "examples_per_epoch": 64, "workers": 1} if stream == "1" else {}
    train(TrainConfig(model="C1", dataset=[data], output_dir=out, run_name="cluster",
                      epochs=2, batch_size=16, max_examples=160, seed=5, verbose=2, **extra))
    print("done")
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True], ids=["dataset", "stream"])
def test_two_workers_on_loopback_train_one_model(tmp_path: Path, stream: bool) -> None:
    data = DatasetCreator(
        SineGenerator(n_levels=4),
        path=tmp_path / "sine_data.hdf5",
        plan=DatasetPlan(n_examples=160, seed=2),
        workers=1,
        progress=False,
    ).run()
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    procs = []
    for index in range(2):
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
            "CUDA_VISIBLE_DEVICES": "",
        }
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    WORKER,
                    str(data),
                    str(tmp_path / "runs"),
                    str(tmp_path / f"weights{index}.npz"),
                    "1" if stream else "0",
                ],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=400))
    finally:
        for proc in procs:
            proc.kill()
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0 and "done" in out, err[-3000:]
    assert "2 replica(s)" in outputs[0][0]
    # One model: both workers' copies end with the same weights...
    w0, w1 = np.load(tmp_path / "weights0.npz"), np.load(tmp_path / "weights1.npz")
    assert len(w0.files) == len(w1.files) > 0
    for key in w0.files:
        np.testing.assert_array_equal(w0[key], w1[key])
    # ... and the chief (worker 0) alone wrote the run, once.
    run_dir = tmp_path / "runs" / "cluster"
    assert json.loads((run_dir / "run.json").read_text())["settings"]["stream"] is stream
    with open(run_dir / "history.csv", newline="") as fh:
        assert [int(row["epoch"]) for row in csv.DictReader(fh)] == [1, 2]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["cluster"]
