"""Training examples rendered while the model trains (``--stream``), never stored.

A dataset file still gives the run its synth, its seed, and its validation and
test examples (its rows ``[0, total)``); the training examples are the same
seed's examples from index ``total`` on, which no file row holds, so the
stream never meets a validation or test example.

* Example ``i`` of the stream is global example ``first_index + i``, sampled
  and rendered exactly as the dataset writer would have written it
  (:func:`generators.writer.render_chunk`): it depends only on
  ``(seed, first_index + i)``, whatever the number of rendering processes.
* Epoch ``e`` trains on stream examples ``[e * E, (e + 1) * E)`` for ``E``
  examples per epoch (a whole number of batches), in order: the examples are
  independent draws, there is nothing to shuffle. A resumed run starts at
  ``epochs_done * E`` (``state.json``), so no example is repeated or skipped.
* Rendering runs in the worker pool of :mod:`generators.pool` (processes that
  each hold one synth; results in job order), one job per global batch (or,
  under ``tf.distribute``, per batch share of this input pipeline). The pool
  lives as long as the stream is read in order, across epochs: the next
  epoch's first batches render while this one's last train.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import InverSynthError
from generators.chunks import Chunk, Rendered, render_chunk
from generators.dataset import SynthDataset
from generators.pool import map_in_workers
from generators.sound_generator import generator_class
from models.common.data import EpochClock, _finish

__all__ = [
    "DEFAULT_EXAMPLES_PER_EPOCH",
    "StreamInput",
    "StreamSource",
    "StreamSpec",
    "stream_first_index",
]

DEFAULT_EXAMPLES_PER_EPOCH = 10_000


def stream_first_index(dataset: SynthDataset) -> int:
    """The stream's first global example index: one past the dataset's last (all its shards)."""
    return int(dataset.attrs.get("total_examples", dataset.n_examples))


@dataclass(frozen=True)
class StreamSpec:
    """Which examples a stream renders, and how.

    Parameters
    ----------
    generator_name, generator_config
        The synth (the dataset's).
    seed : int
        The dataset's seed.
    first_index : int
        Global index of stream example 0 (:func:`stream_first_index`).
    batch_size : int
        Global batch size.
    steps_per_epoch : int
        Global batches per epoch.
    workers : int
        Rendering processes.
    sampler : dict, optional
        A :mod:`generators.sampling` spec that draws the examples (default:
        uniform draws of every parameter).
    """

    generator_name: str
    generator_config: dict[str, Any]
    seed: int
    first_index: int
    batch_size: int
    steps_per_epoch: int
    workers: int = 1
    sampler: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not generator_class(self.generator_name).streams_in_workers:
            raise InverSynthError(
                f"--stream renders in worker processes that each hold one synth; "
                f"generator {self.generator_name!r} runs processes of its own: "
                "write a dataset with it instead"
            )
        for name in ("batch_size", "steps_per_epoch", "workers"):
            value = getattr(self, name)
            if int(value) != value or value <= 0:
                raise InverSynthError(f"stream {name} must be a positive integer, got {value!r}")

    @property
    def examples_per_epoch(self) -> int:
        return self.batch_size * self.steps_per_epoch

    def batch_range(self, batch: int) -> tuple[int, int]:
        """Global example indices ``[start, stop)`` of global batch ``batch`` (counted from 0)."""
        start = self.first_index + int(batch) * self.batch_size
        return start, start + self.batch_size


def _share(start: int, stop: int, replicas: tuple[int, int, int]) -> tuple[int, int]:
    """The part ``[start, stop)`` of one global batch that replicas ``first .. first + local`` get."""
    first, local, total = replicas
    sizes = [len(piece) for piece in np.array_split(np.arange(start, stop), total)]
    edges = start + np.concatenate([[0], np.cumsum(sizes)])
    return int(edges[first]), int(edges[first + local])


class StreamSource:
    """Global batches of a stream, rendered in worker processes, read in order.

    Parameters
    ----------
    spec : StreamSpec
    replicas : (first, local, total), optional
        Render only this input pipeline's share of every global batch
        (see :func:`models.common.data.make_dataset`).
    """

    def __init__(self, spec: StreamSpec, replicas: tuple[int, int, int] = (0, 1, 1)) -> None:
        self.spec = spec
        self.replicas = replicas
        self._results: Generator[Rendered, None, None] | None = None
        self._next_batch = -1  # the global batch self._results yields next

    def _start(self, batch: int) -> None:
        self.close()
        jobs = (self._job(b) for b in itertools.count(batch))
        task = functools.partial(render_chunk, seed=self.spec.seed, sampler=self.spec.sampler)
        self._results = map_in_workers(
            task,
            jobs,
            generator_name=self.spec.generator_name,
            generator_config=self.spec.generator_config,
            workers=self.spec.workers,
        )
        self._next_batch = batch

    def _job(self, batch: int) -> Chunk:
        start, stop = _share(*self.spec.batch_range(batch), self.replicas)
        return Chunk(chunk_id=batch, row=start - self.spec.first_index, start=start, n=stop - start)

    def read(self, batch: int) -> Rendered:
        """This pipeline's share of global batch ``batch``: labels and audio, in index order."""
        if self._results is None or batch != self._next_batch:
            self._start(batch)  # out of order (a resumed run): start the pool there
        assert self._results is not None
        rendered = next(self._results)
        self._next_batch = batch + 1
        return rendered

    def batches(self, first: int, count: int) -> Iterator[Rendered]:
        for batch in range(first, first + count):
            yield self.read(batch)

    def close(self) -> None:
        """End the rendering processes (the next :meth:`read` starts new ones)."""
        if self._results is not None:
            self._results.close()
            self._results = None


class StreamInput:
    """The training input of a ``--stream`` run: one :class:`StreamSource` per input pipeline.

    Call :meth:`build` (directly, or through
    :func:`models.common.data.distribute`) for the ``tf.data`` pipeline, and
    :meth:`close` when training ends.
    """

    def __init__(self, spec: StreamSpec, *, parameter_set: Any, n_samples: int) -> None:
        self.spec = spec
        self.parameter_set = parameter_set
        self.n_samples = int(n_samples)
        self.sources: list[StreamSource] = []

    def build(
        self, *, clock: EpochClock, replicas: tuple[int, int, int] | None = None, **_: Any
    ) -> Any:
        """A ``tf.data.Dataset`` of one epoch's batches ``(audio, one_hot)``, the epoch read from ``clock``.

        Each pass over it yields the global batches ``[epoch * steps, (epoch + 1) * steps)``
        of the stream (this pipeline's share of them).
        """
        import tensorflow as tf

        replicas = replicas or (0, 1, 1)
        spec = self.spec
        if spec.batch_size % replicas[2]:
            raise InverSynthError(
                f"--batch_size {spec.batch_size} must be a multiple of the {replicas[2]} replicas"
            )
        source = StreamSource(spec, replicas)
        self.sources.append(source)
        encode = self.parameter_set.encode
        first, local, total = replicas

        def generate() -> Iterator[Any]:
            epoch_first = clock.epoch * spec.steps_per_epoch
            for rendered in source.batches(epoch_first, spec.steps_per_epoch):
                one_hot = encode(rendered.labels)
                if local == 1:
                    yield rendered.audio, one_hot
                    continue
                # Several local replicas: their pieces in order, as make_dataset does.
                sizes = [len(p) for p in np.array_split(np.arange(spec.batch_size), total)]
                cuts = np.cumsum(sizes[first : first + local])[:-1]
                yield from zip(np.split(rendered.audio, cuts), np.split(one_hot, cuts), strict=True)

        signature = (
            tf.TensorSpec(shape=(None, self.n_samples), dtype=tf.float32),
            tf.TensorSpec(shape=(None, self.parameter_set.n_outputs), dtype=tf.float32),
        )
        ds = tf.data.Dataset.from_generator(generate, output_signature=signature)
        return _finish(ds, spec.steps_per_epoch, local_replicas=local)

    def close(self) -> None:
        for source in self.sources:
            source.close()
