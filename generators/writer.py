"""The dataset writer: sample -> render -> write an HDF5 dataset, in chunks, across processes.

The file format is :mod:`generators.schema`; :mod:`generators.dataset` reads it.
Rendering runs in the worker pool of :mod:`generators.pool`.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import h5py
import numpy as np
from tqdm.auto import tqdm

from generators.errors import InverSynthError
from generators.options import parse_shard
from generators.pool import map_in_workers
from generators.schema import (
    EXAMPLE_ARRAYS,
    FORMAT_VERSION,
    PROGRESS_ARRAY,
    SILENCE_PEAK,
    attr_value,
    dataset_path,
    partial_path,
)
from generators.synth import SoundGenerator
from generators.validate import check_non_negative_int, check_positive_int

__all__ = ["Chunk", "DatasetCreator", "Rendered", "create_dataset_from_args", "render_chunk"]

_FLUSH_INTERVAL_S = 1.0  # how much work an interrupted run may have to redo


class Rendered(NamedTuple):
    """A rendered chunk, as sent back from a worker."""

    chunk_id: int
    labels: np.ndarray  # [n, n_parameters] int16
    values: np.ndarray  # [n, n_parameters] float32
    audio: np.ndarray  # [n, n_samples] float32
    n_silent: int


@dataclass(frozen=True)
class Chunk:
    """A unit of work: dataset rows ``[row, row + n)``, global examples ``[start, start + n)``."""

    chunk_id: int
    row: int
    start: int
    n: int


def render_chunk(
    generator: SoundGenerator,
    chunk: Chunk,
    *,
    seed: int,
    wav_directory: str | None = None,
    wav_prefix: str = "example",
) -> Rendered:
    """Sample and render one chunk; optionally write its WAV files.

    The examples depend only on ``(seed, chunk.start + i)``: the dataset writer
    and the training stream (:mod:`models.common.stream`) render with this.
    """
    indices, audio = generator.render_examples(seed=seed, start=chunk.start, n_examples=chunk.n)
    values = generator.parameter_set.to_values(indices).astype(np.float32)
    audio = np.asarray(audio, dtype=np.float32)
    if wav_directory is not None:
        import soundfile as sf

        for i in range(chunk.n):
            path = Path(wav_directory) / f"{wav_prefix}_{chunk.start + i:07d}.wav"
            sf.write(path, audio[i], generator.sample_rate, subtype="FLOAT")
    peaks = np.max(np.abs(audio), axis=1)  # [n]
    n_silent = int(np.sum(~(peaks >= SILENCE_PEAK)))  # NaN peaks count as silent
    return Rendered(chunk.chunk_id, indices.astype(np.int16), values, audio, n_silent)


class _ChunkSink:
    """Writes rendered chunks into their rows of an open file and records them as done.

    Rows first, then their marks, each made durable by its own flush: a crash
    can lose marks (the chunk is redone), never mark rows that are missing.
    Marks are recorded at most every ``_FLUSH_INTERVAL_S``, and by :meth:`record`.
    """

    def __init__(self, f: h5py.File, chunks: list[Chunk], bar: tqdm) -> None:
        self.f = f
        # Opened once and held: a dataset object writes its data out when it is closed,
        # so short-lived ones would write outside the flushes that order rows and marks.
        self.audio, self.labels, self.values = (f[name] for name in EXAMPLE_ARRAYS)
        self.done = f[PROGRESS_ARRAY]
        self.by_id = {c.chunk_id: c for c in chunks}
        self.bar = bar
        self.silent = int(f.attrs["silent_examples"])
        self.unmarked: list[int] = []  # chunks whose rows are written but not yet marked done
        self.last_flush = time.monotonic()

    def write(self, result: Rendered) -> None:
        chunk = self.by_id[result.chunk_id]
        rows = slice(chunk.row, chunk.row + chunk.n)
        self.audio[rows] = result.audio
        self.labels[rows] = result.labels
        self.values[rows] = result.values
        self.silent += result.n_silent
        self.unmarked.append(result.chunk_id)
        if time.monotonic() - self.last_flush > _FLUSH_INTERVAL_S:
            self.record()
            self.last_flush = time.monotonic()
        self.bar.update(chunk.n)

    def record(self) -> None:
        """Make the written rows durable, then mark their chunks done."""
        self.f.flush()
        for chunk_id in self.unmarked:
            self.done[chunk_id] = True
        self.f.attrs["silent_examples"] = self.silent
        self.unmarked.clear()


class DatasetCreator:
    """Sample -> render -> write an HDF5 dataset, in chunks, across worker processes.

    The examples' parameters depend only on ``(seed, global example index)``,
    so the file's bytes are the same whatever ``workers`` or ``chunk_size``,
    and the shards of a dataset concatenate to the unsharded dataset.

    The file is written as ``<path>.partial`` and renamed to ``path`` only once
    complete, so no half-written file ever sits under the final name. Every
    finished chunk is flushed and recorded; an interrupted run (Ctrl-C, a
    killed job) continues with ``run(resume=True)``, redoing only the chunks
    that were not recorded.

    Parameters
    ----------
    generator : SoundGenerator
        Rebuilt in each worker from ``generator.name`` and ``generator.config()``.
    path : path-like
        Final file name (``{dataset_directory}/{name}_data.hdf5``).
    n_examples : int > 0
        Examples in the whole dataset (all shards).
    seed : int >= 0
    workers : int > 0
        Rendering processes; 1 renders in this process.
    chunk_size : int > 0
        Examples per unit of work and per resume checkpoint.
    shard : (K, N)
        Write only the K-th (1-based) of N contiguous, near-equal parts.
    wav_directory : path-like, optional
        Also write every example as ``{wav_prefix}_{global index:07d}.wav``.
    progress : bool
        Show a progress bar with examples/s.
    """

    def __init__(
        self,
        generator: SoundGenerator,
        *,
        path: str | Path,
        n_examples: int,
        seed: int = 0,
        workers: int = 1,
        chunk_size: int = 256,
        shard: tuple[int, int] = (1, 1),
        wav_directory: str | Path | None = None,
        wav_prefix: str = "example",
        progress: bool = True,
    ) -> None:
        self.total_examples = check_positive_int(n_examples, "n_examples")
        self.seed = check_non_negative_int(seed, "seed")
        self.workers = check_positive_int(workers, "workers")
        self.chunk_size = check_positive_int(chunk_size, "chunk_size")
        k, n = shard
        if not 1 <= k <= n:
            raise InverSynthError(f"shard must be (K, N) with 1 <= K <= N, got {shard!r}")
        if n > n_examples:
            raise InverSynthError(f"cannot cut {n_examples} examples into {n} shards")
        self.generator = generator
        self.path = Path(path)
        self.shard = (int(k), int(n))
        self.start = self.total_examples * (k - 1) // n  # global index of this file's row 0
        self.stop = self.total_examples * k // n
        self.wav_directory = Path(wav_directory) if wav_directory is not None else None
        self.wav_prefix = wav_prefix
        self.progress = progress

    @property
    def n_examples(self) -> int:
        """Rows of this file (this shard's share of the dataset)."""
        return self.stop - self.start

    @property
    def partial_path(self) -> Path:
        return partial_path(self.path)

    def _chunks(self) -> list[Chunk]:
        return [
            Chunk(
                chunk_id=i,
                row=row,
                start=self.start + row,
                n=min(self.chunk_size, self.n_examples - row),
            )
            for i, row in enumerate(range(0, self.n_examples, self.chunk_size))
        ]

    def _attrs(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "sample_rate": self.generator.sample_rate,
            "n_samples": self.generator.n_samples,
            "generator": self.generator.name,
            "generator_config": json.dumps(self.generator.config(), sort_keys=True),
            "parameter_set": self.generator.parameter_set.to_json(),
            "seed": self.seed,
            "n_examples": self.n_examples,
            "example_offset": self.start,
            "total_examples": self.total_examples,
            "shard": f"{self.shard[0]}/{self.shard[1]}",
            "chunk_size": self.chunk_size,
        }

    # ---- the file ----------------------------------------------------------------
    def _prepare_folders(self) -> None:
        for folder in [self.path.parent] + ([self.wav_directory] if self.wav_directory else []):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InverSynthError(
                    f"cannot create folder {str(folder)!r}: {exc.strerror}"
                ) from None
            if not os.access(folder, os.W_OK):
                raise InverSynthError(f"folder {str(folder)!r} is not writable")

    def _create_file(self) -> h5py.File:
        n_rows, n_par = self.n_examples, self.generator.parameter_set.n_parameters
        n_chunks = len(self._chunks())
        f = h5py.File(self.partial_path, "w")
        # Early allocation: every chunk's place in the file exists from the
        # start, so writing a chunk later only writes raw data (no index
        # updates), and a run killed between flushes leaves a readable file.
        _create_preallocated(
            f,
            "audio",
            (n_rows, self.generator.n_samples),
            np.float32,
            (1, self.generator.n_samples),
        )
        rows_per_chunk = max(1, min(n_rows, 4096))
        _create_preallocated(f, "labels", (n_rows, n_par), np.int16, (rows_per_chunk, n_par))
        _create_preallocated(f, "values", (n_rows, n_par), np.float32, (rows_per_chunk, n_par))
        f.create_dataset(PROGRESS_ARRAY, data=np.zeros(n_chunks, dtype=bool))
        for key, value in self._attrs().items():
            f.attrs[key] = value
        f.attrs["complete"] = False
        f.attrs["silent_examples"] = 0
        f.attrs["created_by"] = "inversynth"
        f.flush()
        return f

    def _open_for_resume(self) -> h5py.File:
        try:
            f = h5py.File(self.partial_path, "r+")
        except OSError as exc:
            raise InverSynthError(
                f"cannot resume from {str(self.partial_path)!r} ({exc}); delete it and start again"
            ) from None
        for key, value in self._attrs().items():
            stored = attr_value(f.attrs, key) if key in f.attrs else None
            if stored != value:
                f.close()
                raise InverSynthError(
                    f"cannot resume {str(self.partial_path)!r}: it was started with {key}={stored!r}, "
                    f"this run has {key}={value!r}; use the same options or delete the file"
                )
        return f

    def _open(self, *, resume: bool, overwrite: bool) -> h5py.File:
        """The partial file to fill: a new one, or the one an interrupted run left."""
        if self.partial_path.exists() and resume:
            return self._open_for_resume()
        if self.partial_path.exists() and not overwrite:
            raise InverSynthError(
                f"an unfinished run left {str(self.partial_path)!r}; "
                "pass --resume to continue it, or --overwrite to start again"
            )
        return self._create_file()

    # ---- running -------------------------------------------------------------------
    def run(self, *, resume: bool = False, overwrite: bool = False) -> Path:
        """Write the dataset (or finish an interrupted one) and return its final path.

        Parameters
        ----------
        resume : bool
            Continue ``<path>.partial`` left by an interrupted run with the same settings.
        overwrite : bool
            Replace an existing finished file at ``path``.
        """
        self._prepare_folders()
        if self.path.exists() and not overwrite:
            if resume:
                return self.path  # an earlier run already finished
            raise InverSynthError(
                f"{str(self.path)!r} already exists; pass --overwrite to replace it"
            )
        f = self._open(resume=resume, overwrite=overwrite)
        try:
            self._fill(f)
            f.attrs["complete"] = True
            f.flush()
        finally:
            f.close()
        os.replace(self.partial_path, self.path)
        return self.path

    def _fill(self, f: h5py.File) -> None:
        done = f[PROGRESS_ARRAY][...]
        todo = [c for c in self._chunks() if not done[c.chunk_id]]
        bar = tqdm(
            total=self.n_examples,
            initial=self.n_examples - sum(c.n for c in todo),
            unit="ex",
            desc=self.path.name,
            disable=not self.progress,
            smoothing=0.1,
        )
        sink = _ChunkSink(f, todo, bar)
        results = self._render(todo)
        try:
            for result in results:
                sink.write(result)
        finally:
            results.close()  # a failed write ends the workers at once
            sink.record()
            f.flush()
            bar.close()

    def _render(self, todo: list[Chunk]) -> Generator[Rendered, None, None]:
        """The rendered chunks, in this process or in worker processes."""
        wav_dir = str(self.wav_directory) if self.wav_directory is not None else None
        task = functools.partial(
            render_chunk, seed=self.seed, wav_directory=wav_dir, wav_prefix=self.wav_prefix
        )
        if self.workers == 1 or len(todo) <= 1:
            return (task(self.generator, chunk) for chunk in todo)
        return map_in_workers(
            task,
            todo,
            generator_name=self.generator.name,
            generator_config=self.generator.config(),
            workers=self.workers,
        )


def _create_preallocated(
    f: h5py.File, name: str, shape: tuple[int, int], dtype: type, chunks: tuple[int, int]
) -> None:
    """A chunked dataset whose storage is allocated at creation and never filled."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk(chunks)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    space = h5py.h5s.create_simple(shape)
    tid = h5py.h5t.py_create(np.dtype(dtype))
    h5py.h5d.create(f.id, name.encode(), tid, space, dcpl=dcpl)


def create_dataset_from_args(generator: SoundGenerator, args: argparse.Namespace) -> Path:
    """Run a :class:`DatasetCreator` as the dataset options (:mod:`generators.options`) say."""
    shard = parse_shard(args.shard) if args.shard else None
    path = dataset_path(args.dataset_directory, args.name, shard)
    creator = DatasetCreator(
        generator,
        path=path,
        n_examples=args.num_examples,
        seed=args.seed,
        workers=args.workers,
        chunk_size=args.chunk_size,
        shard=shard or (1, 1),
        wav_directory=args.wavefile_directory if args.write_wavs else None,
        wav_prefix=args.name,
        progress=not args.no_progress,
    )
    out = creator.run(resume=args.resume, overwrite=args.overwrite)
    print(f"dataset: {out}")
    return out
