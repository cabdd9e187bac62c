"""--stream: examples rendered on the fly, deterministic by (seed, index), continued on resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.errors import InverSynthError
from generators.dataset import open_dataset
from generators.sine_generator import SineGenerator
from generators.writer import DatasetCreator, DatasetPlan
from models import spectrogram_cnn
from models.common.data import EpochClock
from models.common.stream import StreamInput, StreamSource, StreamSpec, stream_first_index

SINE = {"sample_rate": 8192, "n_samples": 512, "n_levels": 5}


def _file(path: Path, n: int, *, seed: int = 4, **synth: Any) -> Path:
    return DatasetCreator(
        SineGenerator(**{**SINE, **synth}),
        path=path,
        plan=DatasetPlan(n_examples=n, seed=seed),
        workers=1,
        chunk_size=7,
        progress=False,
    ).run()


def _spec(first_index: int, *, workers: int, batch_size: int = 6, steps: int = 4) -> StreamSpec:
    return StreamSpec(
        generator_name="sine",
        generator_config=SineGenerator(**SINE).config(),
        seed=4,
        first_index=first_index,
        batch_size=batch_size,
        steps_per_epoch=steps,
        workers=workers,
    )


def test_stream_examples_are_the_seeds_examples_past_the_dataset(tmp_path: Path) -> None:
    """Same (seed, index) -> same bytes, whatever the workers; and what the writer would write."""
    small = _file(tmp_path / "small_data.hdf5", 20)
    with open_dataset(small) as dataset:
        first = stream_first_index(dataset)
    assert first == 20
    big = _file(tmp_path / "big_data.hdf5", 20 + 5 * 6)  # the same seed, 30 rows further
    with open_dataset(big) as dataset:
        audio_ref, labels_ref = dataset.read(np.arange(20, 50))
    for workers in (1, 2):
        source = StreamSource(_spec(first, workers=workers))
        try:
            batches = list(source.batches(0, 5))
        finally:
            source.close()
        assert [b.chunk_id for b in batches] == [0, 1, 2, 3, 4]
        audio = np.concatenate([b.audio for b in batches])
        labels = np.concatenate([b.labels for b in batches])
        assert audio.tobytes() == audio_ref.tobytes(), workers
        np.testing.assert_array_equal(labels, labels_ref)


def test_each_epoch_continues_the_stream_and_a_restart_resumes_it() -> None:
    parameter_set = SineGenerator(**SINE).parameter_set
    clock = EpochClock(0)
    spec = _spec(100, workers=1, batch_size=4, steps=3)
    stream = StreamInput(spec, parameter_set=parameter_set, n_samples=SINE["n_samples"])
    data = stream.build(clock=clock)
    epochs = []
    try:
        for epoch in range(3):
            clock.epoch = epoch
            epochs.append(np.concatenate([np.asarray(a) for a, _ in data]))
    finally:
        stream.close()
    assert all(e.shape == (12, SINE["n_samples"]) for e in epochs)
    # A resumed run builds a new pipeline at epoch 2: the same examples as the third epoch.
    resumed = StreamInput(spec, parameter_set=parameter_set, n_samples=SINE["n_samples"])
    try:
        again = np.concatenate([np.asarray(a) for a, _ in resumed.build(clock=EpochClock(2))])
    finally:
        resumed.close()
    assert again.tobytes() == epochs[2].tobytes()
    # No example repeated: the epochs hold 36 different stream examples.
    rows = {row.tobytes() for e in epochs for row in e}
    reference = SineGenerator(**SINE).render_examples(seed=4, start=100, n_examples=36)[1]
    assert np.concatenate(epochs).tobytes() == reference.astype(np.float32).tobytes()
    assert len(rows) == len({r.tobytes() for r in reference})


def test_replica_shares_make_up_the_global_batches() -> None:
    spec = _spec(0, workers=1, batch_size=6, steps=2)
    whole = StreamSource(spec)
    halves = [StreamSource(spec, (k, 1, 2)) for k in (0, 1)]
    try:
        for batch in range(2):
            full = whole.read(batch)
            parts = [h.read(batch) for h in halves]
            joined = np.concatenate([p.audio for p in parts])
            assert joined.tobytes() == full.audio.tobytes()
    finally:
        for source in [whole, *halves]:
            source.close()


def test_plugins_cannot_stream() -> None:
    with pytest.raises(InverSynthError, match="processes of its own"):
        StreamSpec(
            generator_name="vst", generator_config={}, seed=0, first_index=0,
            batch_size=4, steps_per_epoch=1,
        )  # fmt: skip


@pytest.mark.slow
def test_a_resumed_stream_run_continues_the_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _file(tmp_path / "fixed_data.hdf5", 40, n_samples=16384, sample_rate=16384)
    read: list[int] = []
    original = StreamSource.read

    def spy(self: StreamSource, batch: int) -> Any:
        read.append(batch)
        return original(self, batch)

    monkeypatch.setattr(StreamSource, "read", spy)
    args = [
        "--model", "C1", "--dataset_file", str(data), "--output_dir", str(tmp_path),
        "--run_name", "s", "--batch_size", "8", "--stream", "--examples_per_epoch", "20",
        "--workers", "1", "--split", "0.5,0.25,0.25", "--no_progress", "--no_evaluate",
    ]  # fmt: skip
    assert spectrogram_cnn.main([*args, "--epochs", "2"]) == 0
    assert read == [0, 1, 2, 3]  # 20 examples per epoch: 2 whole batches of 8
    with pytest.raises(InverSynthError, match="examples_per_epoch=20"):
        spectrogram_cnn.main([*args, "--epochs", "3", "--resume", "--examples_per_epoch", "32"])
    assert spectrogram_cnn.main([*args, "--epochs", "3", "--resume"]) == 0
    assert read == [0, 1, 2, 3, 4, 5]  # epoch 3 went on from batch 4: nothing repeated or skipped
    run = json.loads((tmp_path / "s" / "run.json").read_text())
    assert run["settings"]["stream"] is True
    assert run["settings"]["stream_first_index"] == 40
    assert run["settings"]["examples_per_epoch"] == 20
    state = json.loads((tmp_path / "s" / "state.json").read_text())
    assert state["epochs_done"] == 3


def test_stream_options_are_checked() -> None:
    from models.common.training import TrainConfig

    with pytest.raises(InverSynthError, match="needs --stream"):
        TrainConfig(model="C1", dataset=["x"], examples_per_epoch=100).validate()
    with pytest.raises(InverSynthError, match="less than one batch"):
        TrainConfig(model="C1", dataset=["x"], stream=True, examples_per_epoch=8).validate()
    config = TrainConfig(model="C1", dataset=["x"], stream=True)
    config.validate()
    assert config.examples_per_epoch == 10_000
