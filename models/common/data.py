"""HDF5 dataset -> ``tf.data`` input pipeline, streamed from disk.

* :class:`Split`: the deterministic train / validation / test split by example
  index. The examples of a dataset are independent draws, so contiguous
  blocks are as good as any random split; they also keep the reads of
  evaluation sequential. Row ``i`` is in the same split whatever machine or
  shard layout reads it.
* :func:`make_dataset`: batches of ``(audio [b, n_samples] float32,
  one-hot labels [b, n_outputs] float32)`` read from a
  :class:`~generators.dataset.SynthDataset` one batch at a time
  (:meth:`~generators.dataset.SynthDataset.read` sorts the batch's indices
  and reads one slice per run of consecutive rows), and ``prefetch`` keeps
  batches ready while the model trains. Memory use is a few batches,
  whatever the dataset's size.
  The shuffle order of an epoch depends only on ``(seed, epoch)`` (set through
  :class:`EpochClock`), so a resumed run sees the order it would have seen.
* :func:`distribute`: the same pipeline under a ``tf.distribute`` strategy,
  each worker reading only its share of every global batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.checks import check_positive_int
from core.errors import InverSynthError
from generators.dataset import SynthDataset

__all__ = [
    "SPLIT_NAMES",
    "EpochClock",
    "Shuffle",
    "Split",
    "distribute",
    "epoch_order",
    "make_dataset",
    "make_memory_dataset",
    "parse_split",
]

SPLIT_NAMES = ("train", "validation", "test")


def parse_split(text: str | Sequence[float]) -> tuple[float, float, float]:
    """``"0.8,0.1,0.1"`` (or a sequence) -> three fractions that sum to 1, each > 0."""
    if isinstance(text, str):
        try:
            values = tuple(float(v) for v in text.split(","))
        except ValueError:
            raise InverSynthError(
                f"--split must be three fractions like 0.8,0.1,0.1, got {text!r}"
            ) from None
    else:
        values = tuple(float(v) for v in text)
    if len(values) != 3 or not all(math.isfinite(v) and v > 0 for v in values):
        raise InverSynthError(
            f"--split must be three positive fractions (train,validation,test), got {text!r}"
        )
    if abs(sum(values) - 1.0) > 1e-6:
        raise InverSynthError(
            f"--split fractions must sum to 1, got {text!r} (sum {sum(values):g})"
        )
    return values[0], values[1], values[2]


@dataclass(frozen=True)
class Split:
    """Contiguous train / validation / test blocks of examples ``[0, n_examples)``.

    Parameters
    ----------
    fractions : (train, validation, test)
        Positive, summing to 1.
    n_examples : int
        Examples used (the dataset's, or fewer with ``--max_examples``).
    """

    fractions: tuple[float, float, float]
    n_examples: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "fractions", parse_split(self.fractions))
        for name, (start, stop) in self.ranges.items():
            if stop <= start:
                raise InverSynthError(
                    f"split {self.fractions} of {self.n_examples} examples leaves the {name} "
                    "split empty; use more examples or larger fractions"
                )

    @property
    def ranges(self) -> dict[str, tuple[int, int]]:
        """``{split name: (start, stop)}`` of example indices."""
        n = int(self.n_examples)
        n_train = round(self.fractions[0] * n)
        n_val = round(self.fractions[1] * n)
        return {
            "train": (0, n_train),
            "validation": (n_train, min(n, n_train + n_val)),
            "test": (min(n, n_train + n_val), n),
        }

    def indices(self, name: str) -> np.ndarray:
        """Example indices of split ``name`` (int64, increasing)."""
        if name not in SPLIT_NAMES:
            raise InverSynthError(f"split must be one of {SPLIT_NAMES}, got {name!r}")
        start, stop = self.ranges[name]
        return np.arange(start, stop, dtype=np.int64)

    def size(self, name: str) -> int:
        start, stop = self.ranges[name]
        return stop - start

    def to_dict(self) -> dict[str, Any]:
        return {
            "fractions": list(self.fractions),
            "n_examples": int(self.n_examples),
            **{name: list(r) for name, r in self.ranges.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Split:
        try:
            fractions = parse_split([float(f) for f in data["fractions"]])
            split = cls(fractions, int(data["n_examples"]))
        except (KeyError, TypeError) as exc:
            raise InverSynthError(f"malformed split record {data!r}: {exc}") from None
        return split


class EpochClock:
    """The epoch whose shuffle order the training pipeline produces (set by a callback)."""

    def __init__(self, epoch: int = 0) -> None:
        self.epoch = int(epoch)


@dataclass(frozen=True, kw_only=True)
class Shuffle:
    """How :func:`make_dataset` orders the examples of each pass.

    Parameters
    ----------
    seed : int
        With the epoch, seeds the pass's order (:func:`epoch_order`).
    clock : EpochClock, optional
        Where the current epoch is read from when a pass starts (else epoch 0).
    """

    seed: int = 0
    clock: EpochClock | None = None


def epoch_order(indices: np.ndarray, *, seed: int, epoch: int) -> np.ndarray:
    """``indices`` shuffled by a generator seeded with ``(seed, epoch)``."""
    rng = np.random.default_rng([int(seed), int(epoch)])
    return np.asarray(indices)[rng.permutation(len(indices))]


def _batches(
    indices: np.ndarray, *, batch_size: int, shuffle: Shuffle | None, drop_remainder: bool
) -> list[np.ndarray]:
    clock = shuffle.clock if shuffle else None
    order = (
        epoch_order(indices, seed=shuffle.seed, epoch=clock.epoch if clock else 0)
        if shuffle
        else indices
    )
    count = n_batches(len(order), batch_size, drop_remainder=drop_remainder)
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(count)]


def n_batches(
    n_examples: int, batch_size: int, *, drop_remainder: bool = False, min_size: int = 1
) -> int:
    """Batches of ``n_examples``; a last, smaller batch counts unless dropped or below ``min_size``."""
    full, rest = divmod(int(n_examples), int(batch_size))
    return full + int(rest > 0 and not drop_remainder and rest >= min_size)


def _replica_pieces(
    batches: list[np.ndarray], replicas: tuple[int, int, int]
) -> Iterator[np.ndarray]:
    """Each global batch cut into ``total`` pieces; the ``local`` pieces from ``first`` on."""
    first, local, total = replicas
    for batch in batches:
        if total == 1:
            yield batch
        elif len(batch) >= total:  # every replica needs at least one example
            yield from np.array_split(batch, total)[first : first + local]


def _check_batching(idx: np.ndarray, batch_size: int, total_replicas: int) -> None:
    if idx.ndim != 1 or idx.size == 0:
        raise InverSynthError(f"indices must be a non-empty 1-D array, got shape {idx.shape}")
    check_positive_int(batch_size, "batch_size")
    if batch_size % total_replicas:
        raise InverSynthError(
            f"--batch_size {batch_size} must be a multiple of the {total_replicas} replicas"
        )


def _finish(ds: Any, count: int, *, local_replicas: int) -> Any:
    """Cardinality, no automatic sharding, prefetching."""
    import tensorflow as tf

    if local_replicas == 1:
        ds = ds.apply(tf.data.experimental.assert_cardinality(count))
    # else: leave it unknown. A pipeline feeding several local replicas yields
    # `local_replicas` elements per step, but Keras would take the dataset's
    # cardinality for the number of steps; unknown, it runs to the end instead.
    options = tf.data.Options()
    # Each pipeline already reads only its own share; TF must not shard it again.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    ds = ds.with_options(options)
    return ds.prefetch(tf.data.AUTOTUNE)


def usable_indices(dataset: SynthDataset, indices: np.ndarray) -> np.ndarray:
    """``indices`` without the examples the synth failed to render (stored as silence).

    A plugin that crashes on an example costs that example only; training and
    evaluation must then leave it out rather than learn silence for its patch.
    """
    idx = np.asarray(indices, dtype=np.int64)
    return idx[dataset.usable_mask(idx)]


def make_dataset(
    dataset: SynthDataset,
    indices: np.ndarray,
    *,
    batch_size: int,
    shuffle: Shuffle | None = None,
    drop_remainder: bool = False,
    replicas: tuple[int, int, int] | None = None,
    with_labels: bool = True,
) -> Any:
    """A ``tf.data.Dataset`` of batches read from ``dataset`` at ``indices``.

    Parameters
    ----------
    dataset : SynthDataset
    indices : np.ndarray [n], int
        Example indices to read (e.g. ``Split.indices("train")``).
    batch_size : int > 0
        Global batch size (all replicas together).
    shuffle : Shuffle, optional
        Reorder the examples every epoch (its ``seed`` and ``clock.epoch``); ``None``:
        in ``indices`` order.
    drop_remainder : bool
        Leave out a last, smaller batch.
    replicas : (first, local, total), optional
        Under a ``tf.distribute`` strategy with ``total`` replicas, of which
        this input pipeline feeds ``local`` starting at replica ``first``:
        every global batch is cut into ``total`` pieces of ``batch_size /
        total`` and this pipeline yields its replicas' pieces in order (the
        layout ``distribute_datasets_from_function`` expects), reading only
        those. A last, smaller global batch is shared out as evenly as
        possible, or left out if it has fewer examples than replicas.
    with_labels : bool
        Yield ``(audio, one_hot)``; otherwise audio only.

    Returns
    -------
    tf.data.Dataset
        Elements ``(audio [b, n_samples] float32, one_hot [b, n_outputs] float32)``,
        prefetched; its cardinality is known (except when feeding several local replicas).
    """
    import tensorflow as tf

    idx = np.asarray(indices, dtype=np.int64)
    replicas = replicas or (0, 1, 1)
    _check_batching(idx, batch_size, replicas[2])
    parameter_set = dataset.parameter_set

    def generate() -> Iterator[Any]:
        batches = _batches(
            idx, batch_size=batch_size, shuffle=shuffle, drop_remainder=drop_remainder
        )  # the epoch's order, read when a pass starts
        for piece in _replica_pieces(batches, replicas):
            audio, labels = dataset.read(piece)  # sorted read inside, order kept
            yield (audio, parameter_set.encode(labels)) if with_labels else audio

    audio_spec = tf.TensorSpec(shape=(None, dataset.n_samples), dtype=tf.float32)
    label_spec = tf.TensorSpec(shape=(None, parameter_set.n_outputs), dtype=tf.float32)
    signature: Any = (audio_spec, label_spec) if with_labels else audio_spec
    ds = tf.data.Dataset.from_generator(generate, output_signature=signature)
    count = n_batches(idx.size, batch_size, drop_remainder=drop_remainder, min_size=replicas[2])
    if count == 0:
        raise InverSynthError(
            f"{idx.size} examples make no complete batch of {batch_size}; lower --batch_size"
        )
    return _finish(ds, count, local_replicas=replicas[1])


def distribute(strategy: Any, build: Callable[..., Any], **kwargs: Any) -> Any:
    """:func:`make_dataset` under ``strategy``: plain when one replica, else per-worker pipelines.

    Parameters
    ----------
    strategy : tf.distribute.Strategy
    build : callable
        :func:`make_dataset` or a function with its signature.
    **kwargs
        Passed to ``build`` (``batch_size`` is the global batch size).
    """
    if strategy.num_replicas_in_sync == 1:
        return build(**kwargs)

    def dataset_fn(context: Any) -> Any:
        local = strategy.num_replicas_in_sync // context.num_input_pipelines
        first = context.input_pipeline_id * local
        return build(**kwargs, replicas=(first, local, strategy.num_replicas_in_sync))

    return strategy.distribute_datasets_from_function(dataset_fn)


def make_memory_dataset(
    audio: np.ndarray,
    one_hot: np.ndarray,
    *,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
) -> Any:
    """The same batches from arrays held in memory (for comparisons and small experiments).

    Parameters
    ----------
    audio : np.ndarray [n, n_samples], float32
    one_hot : np.ndarray [n, n_outputs], float32
    """
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((audio, one_hot))
    if shuffle:
        ds = ds.shuffle(len(audio), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
