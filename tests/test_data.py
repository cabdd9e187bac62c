"""The input pipeline: split, streamed batches, per-epoch shuffling, shards, replicas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.errors import InverSynthError
from generators.dataset import SynthDataset, open_dataset
from generators.sine_generator import SineGenerator
from generators.writer import DatasetCreator, DatasetPlan
from models.common.data import EpochClock, Shuffle, Split, make_dataset, parse_split

N_EXAMPLES = 103  # not a multiple of the batch sizes used below


def _make(path: Path, shard: tuple[int, int] = (1, 1)) -> Path:
    gen = SineGenerator(sample_rate=8192, n_samples=512, n_levels=6)
    return DatasetCreator(
        gen,
        path=path,
        plan=DatasetPlan(n_examples=N_EXAMPLES, seed=3, shard=shard),
        workers=1,
        chunk_size=16,
        progress=False,
    ).run()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("data")
    single = _make(folder / "s_data.hdf5")
    shards = [_make(folder / f"s_data.shard-{k}-of-3.hdf5", (k, 3)) for k in (1, 2, 3)]
    return {"single": single, "shards": shards}


@pytest.fixture()
def dataset(files: dict[str, object]) -> SynthDataset:
    return open_dataset(files["single"])  # type: ignore[arg-type]


def collect(ds: object) -> tuple[np.ndarray, np.ndarray]:
    audio, labels = zip(*[(np.asarray(a), np.asarray(y)) for a, y in ds], strict=True)  # type: ignore[attr-defined]
    return np.concatenate(audio), np.concatenate(labels)


def test_split_is_contiguous_and_complete() -> None:
    split = Split((0.8, 0.1, 0.1), 1000)
    assert split.ranges == {"train": (0, 800), "validation": (800, 900), "test": (900, 1000)}
    odd = Split((0.7, 0.2, 0.1), 103)
    parts = [odd.indices(n) for n in ("train", "validation", "test")]
    np.testing.assert_array_equal(np.concatenate(parts), np.arange(103))
    assert [len(p) for p in parts] == [72, 21, 10]
    assert Split.from_dict(odd.to_dict()) == odd


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0.8,0.2", "three"),
        ("0.8,0.1,x", "fractions"),
        ("0.5,0.1,0.1", "sum to 1"),
        ("1,0,0", "positive"),
    ],
)
def test_bad_splits_are_refused(text: str, message: str) -> None:
    with pytest.raises(InverSynthError, match=message):
        parse_split(text)


def test_too_few_examples_for_a_split() -> None:
    with pytest.raises(InverSynthError, match="empty"):
        Split((0.8, 0.1, 0.1), 4)


def test_batches_hold_the_examples_and_their_one_hot_labels(dataset: SynthDataset) -> None:
    indices = np.arange(10, 90)
    audio, one_hot = collect(make_dataset(dataset, indices, batch_size=16))
    ref_audio, ref_labels = dataset.read(indices)
    np.testing.assert_array_equal(audio, ref_audio)
    np.testing.assert_array_equal(one_hot, dataset.parameter_set.encode(ref_labels))


def test_shuffling_depends_on_seed_and_epoch_only(
    dataset: SynthDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    indices = np.arange(N_EXAMPLES)
    seen: list[np.ndarray] = []
    real_read = dataset.read

    def spy(idx: np.ndarray, **kw: object) -> tuple[np.ndarray, ...]:
        seen.append(np.asarray(idx).copy())
        return real_read(idx, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(dataset, "read", spy)

    def order(seed: int, epoch: int) -> np.ndarray:
        seen.clear()
        clock = EpochClock(epoch)
        audio, _ = collect(
            make_dataset(dataset, indices, batch_size=10, shuffle=Shuffle(seed=seed, clock=clock))
        )
        read_order = np.concatenate(seen)
        # Rows come out in the order they were asked for.
        ref_audio, _ = real_read(read_order)
        np.testing.assert_array_equal(audio, ref_audio)
        return read_order

    e0, e0_again, e1, other_seed = order(1, 0), order(1, 0), order(1, 1), order(2, 0)
    assert sorted(e0.tolist()) == list(range(N_EXAMPLES))  # every example once per epoch
    np.testing.assert_array_equal(e0, e0_again)
    assert not np.array_equal(e0, e1) and not np.array_equal(e0, other_seed)
    assert not np.array_equal(e0, indices)


def test_reads_are_batched_not_whole(
    dataset: SynthDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streaming: the pipeline asks the file for one batch at a time."""
    sizes: list[int] = []
    real_read = dataset.read

    def spy(idx: np.ndarray, **kw: object) -> tuple[np.ndarray, ...]:
        sizes.append(len(idx))
        return real_read(idx, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(dataset, "read", spy)
    ds = make_dataset(dataset, np.arange(N_EXAMPLES), batch_size=8, shuffle=Shuffle())
    assert int(ds.cardinality()) == 13
    collect(ds)
    assert max(sizes) == 8 and sum(sizes) == N_EXAMPLES


def test_shards_read_as_one_dataset(files: dict[str, object], dataset: SynthDataset) -> None:
    sharded = open_dataset(files["shards"])  # type: ignore[arg-type]
    indices = np.arange(N_EXAMPLES)
    a = collect(make_dataset(sharded, indices, batch_size=16, shuffle=Shuffle(seed=4)))
    b = collect(make_dataset(dataset, indices, batch_size=16, shuffle=Shuffle(seed=4)))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_replica_pieces_make_up_the_global_batches(dataset: SynthDataset) -> None:
    """Two input pipelines of one replica each see disjoint halves of each global batch."""
    indices = np.arange(N_EXAMPLES)
    kw: dict[str, Any] = {"batch_size": 8, "shuffle": Shuffle(seed=9)}
    whole = [np.asarray(a) for a, _ in make_dataset(dataset, indices, **kw)]
    halves = [
        [np.asarray(a) for a, _ in make_dataset(dataset, indices, replicas=(r, 1, 2), **kw)]
        for r in (0, 1)
    ]
    # 103 = 12 * 8 + 7: the last global batch is shared 4 + 3.
    assert len(halves[0]) == len(halves[1]) == len(whole) == 13
    assert [len(h[-1]) for h in halves] == [4, 3]
    for a, b, w in zip(*halves, whole, strict=True):
        np.testing.assert_array_equal(np.concatenate([a, b]), w)
    with pytest.raises(InverSynthError, match="multiple"):
        make_dataset(dataset, indices, batch_size=9, replicas=(0, 1, 2))
    # A last batch smaller than the replica count is left out (a replica cannot get nothing).
    tiny = make_dataset(dataset, np.arange(17), batch_size=8, replicas=(0, 1, 2))
    assert int(tiny.cardinality()) == 2 == len(list(tiny))
    one_each = make_dataset(dataset, np.arange(18), batch_size=8, replicas=(1, 1, 2))
    assert int(one_each.cardinality()) == 3 == len(list(one_each))
