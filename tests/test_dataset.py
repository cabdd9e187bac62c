"""The dataset writer and reader: schema, determinism, resume, shards, refusals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import soundfile as sf

from core.errors import InverSynthError
from generators.dataset import open_dataset
from generators.schema import FORMAT_VERSION
from generators.sine_generator import SineGenerator
from generators.sound_generator import load_generator
from generators.writer import DatasetCreator, DatasetPlan

REPO = Path(__file__).resolve().parents[1]
N_SAMPLES = 2048  # short examples keep these tests fast


def sine() -> SineGenerator:
    return SineGenerator(sample_rate=8192, n_samples=N_SAMPLES)


def creator(path: Path, **options: Any) -> DatasetCreator:
    """A writer of sine examples; the plan's options (n_examples, seed, shard) among the rest."""
    plan = {k: options.pop(k) for k in ("n_examples", "seed", "shard") if k in options}
    return DatasetCreator(sine(), path=path, plan=DatasetPlan(**plan), **options)


def make(path: Path, **kwargs: Any) -> Path:
    options: dict[str, Any] = {"n_examples": 50, "seed": 5, "workers": 1, "chunk_size": 8}
    options.update(progress=False, **kwargs)
    return creator(path, **options).run()


def test_round_trip_follows_the_schema(tmp_path: Path) -> None:
    path = make(tmp_path / "s_data.hdf5")
    with h5py.File(path, "r") as f:
        assert f["audio"].dtype == np.float32 and f["audio"].shape == (50, N_SAMPLES)
        assert f["labels"].shape == (50, 2) and np.issubdtype(f["labels"].dtype, np.integer)
        assert f["values"].dtype == np.float32
        assert f["audio"].chunks[0] == 1  # one example per chunk: random access reads no extra rows
        assert f.attrs["format_version"] == FORMAT_VERSION and bool(f.attrs["complete"])
        assert f.attrs["sample_rate"] == 8192 and f.attrs["seed"] == 5
        assert f.attrs["generator"] == "sine"
        config = json.loads(f.attrs["generator_config"])
    gen = load_generator("sine", config)
    with open_dataset(path) as ds:
        idx = np.array([49, 0, 17, 17])
        audio, labels, values = ds.read(idx, with_values=True)
        # The stored audio is what the synth renders from the stored labels and values.
        np.testing.assert_array_equal(audio, gen.render_indices(labels))
        np.testing.assert_array_equal(values, ds.parameter_set.to_values(labels).astype(np.float32))
        np.testing.assert_array_equal(
            labels, ds.parameter_set.sample_indices(seed=5, start=0, n_examples=50)[idx]
        )
        assert ds.parameter_set == gen.parameter_set
        assert ds.identity["fingerprint"] == open_dataset(path).identity["fingerprint"]


def test_same_seed_gives_the_same_bytes_with_one_or_two_workers(tmp_path: Path) -> None:
    one = make(tmp_path / "one_data.hdf5", workers=1, chunk_size=8)
    two = make(tmp_path / "two_data.hdf5", workers=2, chunk_size=5)
    with open_dataset(one) as a, open_dataset(two) as b:
        for key in ("audio", "labels", "values"):
            np.testing.assert_array_equal(a._parts[0].file[key][...], b._parts[0].file[key][...])
    other = make(tmp_path / "other_data.hdf5", seed=6)
    with open_dataset(one) as a, open_dataset(other) as c:
        assert not np.array_equal(a.read_range(0, 50)[1], c.read_range(0, 50)[1])


def test_shards_read_as_one_dataset_equal_the_whole(tmp_path: Path) -> None:
    whole = make(tmp_path / "w_data.hdf5", n_examples=23)
    shards = [
        make(tmp_path / f"s_data.shard-{k}-of-3.hdf5", n_examples=23, shard=(k, 3))
        for k in (3, 1, 2)
    ]
    with open_dataset(whole) as a, open_dataset(str(tmp_path / "s_data.shard-*")) as b:
        assert b.n_examples == 23 and len(b.paths) == 3
        idx = np.array([22, 0, 7, 8, 15, 16])
        for x, y in zip(a.read(idx), b.read(idx), strict=True):
            np.testing.assert_array_equal(x, y)
    with pytest.raises(InverSynthError, match=r"shard 3 of 3 is missing .*shard-3-of-3\.hdf5"):
        open_dataset(shards[1:])  # shards 1 and 2 of 3
    with pytest.raises(InverSynthError, match="shard 2 of 3 is missing"):
        open_dataset(shards[:2])  # shards 3 and 1: a gap
    foreign = make(tmp_path / "f_data.shard-2-of-3.hdf5", n_examples=23, shard=(2, 3), seed=99)
    with pytest.raises(InverSynthError, match="not shards of one dataset"):
        open_dataset([shards[1], foreign, shards[0]])


class _InterruptAfter(SineGenerator):
    """A sine synth that is interrupted (Ctrl-C) while rendering its 4th chunk."""

    name = "sine"  # workers and readers rebuild it as the plain sine synth
    calls = 0

    def render_examples(self, *, seed: int, start: int, n_examples: int, sampler: Any = None):
        type(self).calls += 1
        if type(self).calls == 4:
            raise KeyboardInterrupt
        return super().render_examples(seed=seed, start=start, n_examples=n_examples)


def test_interrupted_run_is_refused_then_resumes_to_the_same_dataset(tmp_path: Path) -> None:
    path = tmp_path / "r_data.hdf5"
    gen = _InterruptAfter(sample_rate=8192, n_samples=N_SAMPLES)
    creator = DatasetCreator(
        gen, path=path, plan=DatasetPlan(n_examples=50, seed=5), chunk_size=8, progress=False
    )
    with pytest.raises(KeyboardInterrupt):
        creator.run()
    partial = Path(str(path) + ".partial")
    assert partial.exists() and not path.exists()
    with pytest.raises(InverSynthError, match=r"does not exist.*--resume"):
        open_dataset(path)
    with pytest.raises(InverSynthError, match="incomplete"):
        open_dataset(partial)
    with pytest.raises(InverSynthError, match="--resume"):
        make(path)
    with pytest.raises(InverSynthError, match="seed"):
        DatasetCreator(
            sine(), path=path, plan=DatasetPlan(n_examples=50, seed=6), chunk_size=8, progress=False
        ).run(resume=True)
    resumed = DatasetCreator(
        sine(), path=path, plan=DatasetPlan(n_examples=50, seed=5), chunk_size=8, progress=False
    ).run(resume=True)
    reference = make(tmp_path / "ref_data.hdf5")
    with open_dataset(resumed) as a, open_dataset(reference) as b:
        for x, y in zip(a.read_range(0, 50), b.read_range(0, 50), strict=True):
            np.testing.assert_array_equal(x, y)


KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    import generators.writer
    from generators.writer import DatasetCreator, DatasetPlan
    from generators.sine_generator import SineGenerator

    class Killed(SineGenerator):
        name = "sine"
        calls = 0
        def render_examples(self, **kw):
            Killed.calls += 1
            if Killed.calls == 5:
                os.kill(os.getpid(), signal.SIGKILL)
            return super().render_examples(**kw)

    generators.writer._FLUSH_INTERVAL_S = 0.0  # record every chunk, so some are done
    gen = Killed(sample_rate=8192, n_samples={n})
    DatasetCreator(
        gen, path=sys.argv[1], plan=DatasetPlan(n_examples=50, seed=5), chunk_size=8,
        progress=False,
    ).run()
    """
).format(n=N_SAMPLES)


def test_resume_after_a_killed_process_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "k_data.hdf5"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(path)], cwd=REPO, capture_output=True
    )
    assert proc.returncode == -signal.SIGKILL
    with h5py.File(str(path) + ".partial", "r") as f:
        done = int(f["done_chunks"][...].sum())
    assert 0 < done < 4  # some chunks were recorded, the one cut off by the kill was not
    resumed = DatasetCreator(
        sine(), path=path, plan=DatasetPlan(n_examples=50, seed=5), chunk_size=8, progress=False
    ).run(resume=True)
    reference = make(tmp_path / "ref_data.hdf5")
    with open_dataset(resumed) as a, open_dataset(reference) as b:
        for x, y in zip(a.read_range(0, 50), b.read_range(0, 50), strict=True):
            np.testing.assert_array_equal(x, y)


def test_wav_files_hold_the_dataset_audio(tmp_path: Path) -> None:
    path = make(
        tmp_path / "w_data.hdf5", n_examples=5, wav_directory=tmp_path / "wavs", wav_prefix="w"
    )
    files = sorted((tmp_path / "wavs").glob("*.wav"))
    assert [f.name for f in files] == [f"w_{i:07d}.wav" for i in range(5)]
    audio, rate = sf.read(files[3], dtype="float32")
    assert rate == 8192
    with open_dataset(path) as ds:
        np.testing.assert_array_equal(audio, ds.read(np.array([3]))[0][0])


def test_existing_dataset_is_not_overwritten_by_accident(tmp_path: Path) -> None:
    path = make(tmp_path / "e_data.hdf5")
    with pytest.raises(InverSynthError, match="already exists"):
        make(path)
    DatasetCreator(
        sine(), path=path, plan=DatasetPlan(n_examples=50, seed=6), chunk_size=8, progress=False
    ).run(overwrite=True)
    with open_dataset(path) as ds:
        assert ds.seed == 6


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_examples": 0}, "n_examples"),
        ({"n_examples": -3}, "-3"),
        ({"seed": -1}, "seed"),
        ({"workers": 0}, "workers"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"shard": (3, 2)}, "shard"),
    ],
)
def test_bad_options_are_refused_before_anything_is_written(
    tmp_path: Path, options, message
) -> None:
    kwargs = {"n_examples": 10, "progress": False, **options}
    with pytest.raises(InverSynthError, match=message):
        creator(tmp_path / "b_data.hdf5", **kwargs).run()
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_cannot_be_made_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the dataset folder should be")
    with pytest.raises(InverSynthError, match="cannot create folder"):
        make(blocker / "sub" / "x_data.hdf5")


def test_a_file_that_is_not_a_dataset_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.hdf5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(InverSynthError, match="not a readable HDF5"):
        open_dataset(junk)
    with h5py.File(tmp_path / "other.hdf5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(InverSynthError, match="not an InverSynth dataset"):
        open_dataset(tmp_path / "other.hdf5")


def test_read_in_any_order_with_repeats_and_runs_matches_the_file(tmp_path: Path) -> None:
    path = make(tmp_path / "r_data.hdf5")
    rng = np.random.default_rng(1)
    # Runs of consecutive rows, gaps, repeats and a shuffled order, all in one request.
    idx = np.concatenate([rng.permutation(50), [3, 4, 5, 5, 6, 40, 49, 0]])
    with open_dataset(path) as ds:
        got = ds.read(idx, with_values=True)
        stored = [ds._parts[0].file[key][...] for key in ("audio", "labels", "values")]
    for x, whole in zip(got, stored, strict=True):
        np.testing.assert_array_equal(x, whole[idx])


def _rewrite_levels(path: Path, relative: float) -> None:
    """Move every stored level by ``relative``, as a file written on another CPU may have them."""
    with h5py.File(path, "r+") as f:
        data = json.loads(f.attrs["parameter_set"])
        for p in data["parameters"]:
            p["levels"] = [v * (1 + relative) for v in p["levels"]]
        f.attrs["parameter_set"] = json.dumps(data)


def test_files_of_another_cpu_join_resume_and_match_within_the_level_tolerance(
    tmp_path: Path,
) -> None:
    from generators.parameters import LEVEL_RTOL

    shards = [make(tmp_path / f"s_data.shard-{k}-of-2.hdf5", n_examples=20, shard=(k, 2)) for k in (1, 2)]  # fmt: skip
    _rewrite_levels(shards[1], 4e-16)  # a last digit apart (AVX-512 vs AVX2)
    with open_dataset(shards) as ds:
        assert ds.n_examples == 20
    DatasetCreator(  # resuming the finished file with the same options is no refusal
        sine(),
        path=shards[1],
        plan=DatasetPlan(n_examples=20, seed=5, shard=(2, 2)),
        workers=1,
        chunk_size=8,
        progress=False,
    ).run(resume=True)
    _rewrite_levels(shards[1], 100 * LEVEL_RTOL)  # a real difference is still refused
    with pytest.raises(InverSynthError, match="not shards of one dataset"):
        open_dataset(shards)
