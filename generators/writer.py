"""The dataset writer: sample -> render -> write an HDF5 dataset, in chunks, across processes.

The file format is :mod:`generators.schema`; :mod:`generators.dataset` reads it.
Rendering runs in the worker pool of :mod:`generators.pool`, a chunk at a time
(:mod:`generators.chunks`).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Generator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from tqdm.auto import tqdm

from core.checks import check_int
from core.errors import InverSynthError
from core.interrupts import raise_if_interrupted
from core.options import MAX_EXAMPLES, MAX_SEED, MAX_WORKERS
from core.storage import file_in_the_way, format_size, os_reason
from generators.chunks import Chunk, Rendered, render_chunk
from generators.dataset_options import MAX_CHUNK_SIZE
from generators.disk_space import check_room, close_quietly, create_preallocated, reserve
from generators.lock import DatasetLock
from generators.pool import map_in_workers
from generators.resume_check import attrs_difference
from generators.schema import (
    CREATED_BY,
    EXAMPLE_ARRAYS,
    FAILED_ARRAY,
    FORMAT_VERSION,
    LABEL_DTYPE,
    PROGRESS_ARRAY,
    attr_value,
    partial_path,
)
from generators.sound_generator import SoundGenerator

__all__ = ["DatasetCreator", "DatasetPlan"]

_FLUSH_INTERVAL_S = 1.0  # how much work an interrupted run may have to redo
_STARTUP_NOTE_S = 5.0  # no example after this long: say why the start is slow
_MAX_CHUNK_BYTES = 1_000_000_000  # audio of one chunk; a worker holds two at a time
_ALL_FAILED_ABORT = 16  # this many examples in, all failed: the synth cannot render at all
# Fixed HDF5 format bounds: the same options give the same bytes with any newer library.
_LIBVER = ("earliest", "v110")


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
        self.failed_rows = f[FAILED_ARRAY]
        self.done = f[PROGRESS_ARRAY]
        self.by_id = {c.chunk_id: c for c in chunks}
        self.bar = bar
        self.silent = int(f.attrs["silent_examples"])
        self.failed = int(f.attrs["failed_examples"])
        self.written = 0  # examples written by this run
        self.failed_now = 0  # of which failed
        self.unmarked: list[int] = []  # chunks whose rows are written but not yet marked done
        self.last_flush = time.monotonic()

    def write(self, result: Rendered) -> None:
        chunk = self.by_id[result.chunk_id]
        rows = slice(chunk.row, chunk.row + chunk.n)
        self.audio[rows] = result.audio
        self.labels[rows] = result.labels
        self.values[rows] = result.values
        self.failed_rows[rows] = result.failed
        self.silent += result.n_silent
        self.failed += int(result.failed.sum())
        self.failed_now += int(result.failed.sum())
        self.written += chunk.n
        self.unmarked.append(result.chunk_id)
        if self.written >= _ALL_FAILED_ABORT and self.failed_now == self.written:
            self.record()
            raise InverSynthError(
                f"the synth failed to render every one of the first {self.written} examples "
                "(see the warnings above): it cannot render with these settings; the examples "
                f"so far are kept in {self.f.filename!r}"
            )
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
        self.f.attrs["failed_examples"] = self.failed
        self.unmarked.clear()


@dataclass(frozen=True, kw_only=True)
class DatasetPlan:
    """Which examples a dataset file holds: the dataset's identity, checked by the writer.

    Parameters
    ----------
    n_examples : int in [1, 1e9]
        Examples in the whole dataset (all shards).
    seed : int in [0, 2**63 - 1]
    shard : (K, N)
        Write only the K-th (1-based) of N contiguous, near-equal parts.
    """

    n_examples: int
    seed: int = 0
    shard: tuple[int, int] = (1, 1)


class DatasetCreator:
    """Sample -> render -> write an HDF5 dataset, in chunks, across worker processes.

    The examples' parameters depend only on ``(seed, global example index)``,
    so the file's bytes are the same whatever ``workers`` or ``chunk_size``,
    and the shards of a dataset concatenate to the unsharded dataset.

    The file is written as ``<path>.partial`` and renamed to ``path`` only once
    complete, so no half-written file ever sits under the final name. A run
    holds ``<path>.lock`` throughout (:class:`~generators.lock.DatasetLock`),
    so a second run for the same file stops before touching anything. Every
    finished chunk is flushed and recorded; an interrupted run (Ctrl-C,
    SIGTERM, a killed job, a full disk) continues with ``run(resume=True)``,
    redoing only the chunks that were not recorded. An example the synth
    fails to render (a plugin that crashes on it every time) is marked in
    the file's ``failed`` array and costs only itself.

    Parameters
    ----------
    generator : SoundGenerator
        Rebuilt in each worker from ``generator.name`` and ``generator.config()``.
    path : path-like
        Final file name (``{dataset_directory}/{name}_data.hdf5``).
    plan : DatasetPlan
        The examples to write: how many in the whole dataset, their seed, the shard.
    workers : int in [1, 1024]
        Rendering processes; 1 renders in this process.
    chunk_size : int in [1, 65536]
        Examples per unit of work and per resume checkpoint; a chunk's audio
        must fit in 1 GB.
    wav_directory : path-like, optional
        Also write every example as ``{wav_prefix}_{global index:07d}.wav``.
    progress : bool
        Show a progress bar with examples/s.

    Attributes
    ----------
    n_silent, n_failed : int
        After :meth:`run`: the file's silent and failed examples.
    """

    def __init__(
        self,
        generator: SoundGenerator,
        *,
        path: str | Path,
        plan: DatasetPlan,
        workers: int = 1,
        chunk_size: int = 256,
        wav_directory: str | Path | None = None,
        wav_prefix: str = "example",
        progress: bool = True,
    ) -> None:
        n_examples, shard = plan.n_examples, plan.shard
        self.total_examples = check_int(n_examples, "n_examples", low=1, high=MAX_EXAMPLES)
        self.seed = check_int(plan.seed, "seed", low=0, high=MAX_SEED)
        self.workers = check_int(workers, "workers", low=1, high=MAX_WORKERS)
        self.chunk_size = check_int(chunk_size, "chunk_size", low=1, high=MAX_CHUNK_SIZE)
        k, n = shard
        if not 1 <= k <= n:
            raise InverSynthError(f"shard must be (K, N) with 1 <= K <= N, got {shard!r}")
        if n > n_examples:
            raise InverSynthError(f"cannot cut {n_examples} examples into {n} shards")
        chunk_bytes = min(self.chunk_size, self.total_examples) * 4 * generator.n_samples
        if chunk_bytes > _MAX_CHUNK_BYTES:
            fitting = max(1, _MAX_CHUNK_BYTES // (4 * generator.n_samples))
            raise InverSynthError(
                f"chunk_size {self.chunk_size} makes chunks of {format_size(chunk_bytes)} of audio "
                f"(every worker holds two); at most {format_size(_MAX_CHUNK_BYTES)}: a chunk size of "
                f"at most {fitting} for examples of {generator.n_samples} samples"
            )
        most = int(generator.parameter_set.n_levels.max())
        if most > np.iinfo(LABEL_DTYPE).max + 1:
            raise InverSynthError(
                f"a parameter of {generator.name!r} has {most} levels; dataset labels are "
                f"int16, so at most {np.iinfo(LABEL_DTYPE).max + 1}"
            )
        self.generator = generator
        self.path = Path(path)
        self.shard = (int(k), int(n))
        self.start = self.total_examples * (k - 1) // n  # global index of this file's row 0
        self.stop = self.total_examples * k // n
        self.wav_directory = Path(wav_directory) if wav_directory is not None else None
        self.wav_prefix = wav_prefix
        self.progress = progress
        self.n_silent = 0
        self.n_failed = 0

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
            blocker = file_in_the_way(folder)
            if blocker is not None:
                raise InverSynthError(
                    f"cannot create folder {str(folder)!r}: {str(blocker)!r} is a file, not a folder"
                )
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InverSynthError(
                    f"cannot create folder {str(folder)!r}: {exc.strerror}"
                ) from None
            if not os.access(folder, os.W_OK):
                raise InverSynthError(f"folder {str(folder)!r} is not writable")

    def _file_bytes(self, n_rows: int) -> int:
        """The size of a file of ``n_rows`` examples: arrays, chunk index, metadata (an upper bound)."""
        n_par = self.generator.parameter_set.n_parameters
        label_bytes = np.dtype(LABEL_DTYPE).itemsize
        row = 4 * self.generator.n_samples + n_par * (label_bytes + 4) + 1
        index = 64  # per row: the audio's index entry (one HDF5 chunk per example)
        return n_rows * (row + index) + (1 << 20)

    def _check_disk(self, n_rows: int) -> None:
        """Refuse to start when a new file of ``n_rows`` examples cannot fit on its disk."""
        needs = [(self.path.parent, self._file_bytes(n_rows), f"{n_rows:,} examples")]
        if self.wav_directory is not None:
            wav_bytes = n_rows * (4 * self.generator.n_samples + 80)
            needs.append((self.wav_directory, wav_bytes, "their WAV files"))
        check_room(
            needs,
            advice="make fewer or shorter examples, or split the dataset with --shard K/N "
            "over several disks",
        )

    def _create_file(self) -> h5py.File:
        """A new partial file, its disk space reserved (so no later write can run out of it)."""
        n_rows, n_par = self.n_examples, self.generator.parameter_set.n_parameters
        n_chunks = len(self._chunks())
        self._check_disk(n_rows)
        where = repr(str(self.partial_path))
        # A write that fails inside HDF5 leaves its library in a state that can
        # crash the process at exit, so the file's size is tried out first: a
        # file system that cannot hold it (full, or a size limit) fails here.
        size = self._file_bytes(n_rows)
        try:
            reserve(self.partial_path, size)
            f = h5py.File(self.partial_path, "w", libver=_LIBVER)
        except BaseException as exc:
            self.partial_path.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise InverSynthError(
                    f"cannot create {where} ({format_size(size)}): {os_reason(exc)}"
                ) from None
            raise
        try:
            # Early allocation: every chunk's place in the file exists from the
            # start, so writing a chunk later only writes raw data (no index
            # updates), and a run killed between flushes leaves a readable file.
            n_samples = self.generator.n_samples
            create_preallocated(f, "audio", (n_rows, n_samples), np.float32, (1, n_samples))
            rows_per_chunk = max(1, min(n_rows, 4096))
            create_preallocated(f, "labels", (n_rows, n_par), LABEL_DTYPE, (rows_per_chunk, n_par))
            create_preallocated(f, "values", (n_rows, n_par), np.float32, (rows_per_chunk, n_par))
            create_preallocated(f, FAILED_ARRAY, (n_rows,), np.bool_, (min(n_rows, 65536),))
            f.create_dataset(PROGRESS_ARRAY, data=np.zeros(n_chunks, dtype=bool), track_times=False)
            for key, value in self._attrs().items():
                f.attrs[key] = value
            f.attrs["complete"] = False
            f.attrs["silent_examples"] = 0
            f.attrs["failed_examples"] = 0
            f.attrs["created_by"] = CREATED_BY
            f.flush()
            reserve(self.partial_path, f.id.get_filesize())
        except BaseException as exc:  # a full disk, a Ctrl-C: the file holds nothing yet
            close_quietly(f)
            self.partial_path.unlink(missing_ok=True)  # not resumable: a --resume starts afresh
            if isinstance(exc, OSError | RuntimeError):  # RuntimeError: h5py's failed flush
                raise InverSynthError(f"cannot create {where}: {os_reason(exc)}") from None
            raise
        return f

    def _open_for_resume(self) -> h5py.File:
        try:
            f = h5py.File(self.partial_path, "r+")
        except OSError as exc:
            raise InverSynthError(
                f"cannot resume from {str(self.partial_path)!r}: it is not a readable HDF5 file "
                f"({os_reason(exc)}); delete it, or run with --overwrite to start again"
            ) from None
        difference = attrs_difference(f.attrs, self._attrs())
        missing = [k for k in (FAILED_ARRAY, PROGRESS_ARRAY) if k not in f]
        if difference is None and missing:
            difference = f"it has no {missing[0]!r} array"
        if difference is not None:
            f.close()
            raise InverSynthError(
                f"cannot resume {str(self.partial_path)!r}: {difference}; use the same options, "
                "or --overwrite to start again"
            )
        size = f.id.get_filesize()
        try:
            reserve(self.partial_path, size)
        except OSError as exc:
            f.close()
            free = shutil.disk_usage(self.partial_path.parent).free
            raise InverSynthError(
                f"cannot finish {str(self.partial_path)!r} ({format_size(size)}): {os_reason(exc)} "
                f"({format_size(free)} free on its disk); make room and run again with --resume"
            ) from None
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
        if resume:
            print(f"resuming: no unfinished run of {self.path}; starting it", flush=True)
        return self._create_file()

    def _check_finished(self) -> None:
        """``--resume`` of a finished file: fine if made with these options, else refused."""
        try:
            with h5py.File(self.path, "r") as f:
                wanted = self._attrs()
                del wanted["chunk_size"]  # how it was cut into work; the rows are the same
                difference = attrs_difference(f.attrs, wanted)
                complete = bool(attr_value(f.attrs, "complete")) if "complete" in f.attrs else False
                self.n_silent = int(attr_value(f.attrs, "silent_examples") or 0)
                self.n_failed = (
                    int(attr_value(f.attrs, "failed_examples"))
                    if "failed_examples" in f.attrs
                    else 0
                )
        except OSError as exc:
            raise InverSynthError(
                f"--resume: {str(self.path)!r} exists but is not a readable dataset "
                f"({os_reason(exc)}); move it away, or pass --overwrite to replace it"
            ) from None
        if difference is not None:
            raise InverSynthError(
                f"--resume: {str(self.path)!r} is a finished dataset made with other options: "
                f"{difference}; run with the file's options, or pass --overwrite to replace it"
            )
        if not complete:
            raise InverSynthError(
                f"--resume: {str(self.path)!r} is marked incomplete (an unfinished file renamed "
                "by hand?); rename it back to .partial to resume it, or pass --overwrite"
            )

    # ---- running -------------------------------------------------------------------
    def run(self, *, resume: bool = False, overwrite: bool = False) -> Path:
        """Write the dataset (or finish an interrupted one) and return its final path.

        Parameters
        ----------
        resume : bool
            Continue ``<path>.partial`` left by an interrupted run with the same
            settings; a finished file made with the same settings is kept as it is.
        overwrite : bool
            Replace an existing finished file at ``path`` (once the new one is complete).

        Raises
        ------
        InverSynthError
            Another process writes the same file; the file exists (without
            ``overwrite``); resuming with other options; too little disk; a
            write failed (full disk: the finished examples are kept for ``resume``).
        """
        if self.path.is_dir():
            raise InverSynthError(f"{str(self.path)!r} is a folder, not a dataset file")
        self._prepare_folders()
        with DatasetLock(self.path):
            if self.path.exists() and not overwrite:
                if resume:
                    self._check_finished()
                    print(f"resuming: {self.path} is already complete", flush=True)
                    return self.path
                raise InverSynthError(
                    f"{str(self.path)!r} already exists; pass --overwrite to replace it"
                )
            f = self._open(resume=resume, overwrite=overwrite)
            try:
                self._fill(f)
                raise_if_interrupted()  # never marked complete after a Ctrl-C or SIGTERM
                f.attrs["complete"] = True
                f.flush()
                self.n_silent = int(f.attrs["silent_examples"])
                self.n_failed = int(f.attrs["failed_examples"])
            except (OSError, RuntimeError) as exc:
                close_quietly(f)
                if isinstance(exc, BrokenProcessPool):
                    raise InverSynthError(
                        "a rendering process died (out of memory? killed?); the examples finished "
                        "so far are kept: run the same command with --resume"
                    ) from None
                if isinstance(exc, RuntimeError) and "errno" not in str(exc):
                    raise  # not a failed write
                raise InverSynthError(
                    f"writing {str(self.partial_path)!r} failed: {os_reason(exc)}; the examples "
                    "finished so far are kept: make room and run the same command with --resume"
                ) from None
            except BaseException:
                close_quietly(f)
                raise
            f.close()
            os.replace(self.partial_path, self.path)
        return self.path

    def _fill(self, f: h5py.File) -> None:
        done = f[PROGRESS_ARRAY][...]
        todo = [c for c in self._chunks() if not done[c.chunk_id]]
        n_todo = sum(c.n for c in todo)
        n_done = self.n_examples - n_todo
        if n_done:
            print(
                f"resuming: {n_done:,} of {self.n_examples:,} examples already written",
                flush=True,
            )
        bar = tqdm(
            total=self.n_examples,
            initial=n_done,
            unit="ex",
            desc=self.path.name,
            disable=not self.progress,
            smoothing=0.1,
        )
        sink = _ChunkSink(f, todo, bar)
        note = threading.Timer(_STARTUP_NOTE_S, _startup_note, args=(self.workers,))
        note.daemon = True
        note.start()
        results = self._render(todo)
        try:
            for result in results:
                note.cancel()
                sink.write(result)
                raise_if_interrupted()  # a Ctrl-C dropped in h5py's finalizers ends it here
        finally:
            note.cancel()
            results.close()  # a failed write ends the workers at once
            bar.close()
            sink.record()
            f.flush()

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


def _startup_note(workers: int) -> None:
    where = f"{workers} worker processes are" if workers > 1 else "the synth is"
    tqdm.write(
        f"waiting for the first examples: {where} starting (a synth's first run on a machine "
        "compiles its code, which can take a minute; later runs start at once)",
        file=sys.stderr,
    )
