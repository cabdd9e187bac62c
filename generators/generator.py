"""The synth interface (`SoundGenerator`), the registry of synths, and the dataset writer.

A synth turns parameter values into audio; it declares its parameter set, its
sample rate and its length. Its ``config()`` is JSON and rebuilds an identical
synth through :func:`load_generator`, which is how a dataset file or a trained
model carries the synth that made it (to resynthesize predictions later).
"""

from __future__ import annotations

import abc
import importlib
import itertools
import json
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import h5py
import numpy as np
from tqdm.auto import tqdm

from generators.dataset import FORMAT_VERSION, SILENCE_PEAK
from generators.errors import InverSynthError
from generators.parameters import ParameterSet

__all__ = ["GENERATORS", "DatasetCreator", "SoundGenerator", "load_generator"]

# name -> "module:Class". Imported lazily so that naming a synth never costs
# importing every synth's dependencies (DawDreamer, Numba kernels).
GENERATORS: dict[str, str] = {
    "dexed": "generators.dexed.synth:DexedGenerator",
    "fm": "generators.fm_generator:FMGenerator",
    "sine": "generators.sine_generator:SineGenerator",
    "vst": "generators.vst_generator:VSTGenerator",
}


class SoundGenerator(abc.ABC):
    """Renders batches of parameter values to fixed-length mono audio.

    Subclasses set ``name`` (their key in :data:`GENERATORS`) and implement
    :attr:`parameter_set`, :meth:`render` and :meth:`config`.

    Parameters
    ----------
    sample_rate : int > 0
        Hz.
    n_samples : int > 0
        Length of every rendered example.
    """

    name: ClassVar[str]

    def __init__(self, *, sample_rate: int, n_samples: int) -> None:
        if int(sample_rate) != sample_rate or sample_rate <= 0:
            raise InverSynthError(f"sample_rate must be a positive integer, got {sample_rate!r}")
        if int(n_samples) != n_samples or n_samples <= 0:
            raise InverSynthError(f"n_samples must be a positive integer, got {n_samples!r}")
        self.sample_rate = int(sample_rate)
        self.n_samples = int(n_samples)

    @property
    @abc.abstractmethod
    def parameter_set(self) -> ParameterSet:
        """The parameters this synth is played with, in column order."""

    @abc.abstractmethod
    def render(self, values: np.ndarray) -> np.ndarray:
        """Render parameter values.

        Parameters
        ----------
        values : np.ndarray [batch, n_parameters], float
            One row per example, columns in :attr:`parameter_set` order.

        Returns
        -------
        audio : np.ndarray [batch, n_samples], float32 in [-1, 1]
        """

    @abc.abstractmethod
    def config(self) -> dict[str, Any]:
        """JSON-able keyword arguments that rebuild this synth with ``type(self)(**config)``."""

    def render_indices(self, indices: np.ndarray) -> np.ndarray:
        """Render class indices [batch, n_parameters]; see :meth:`render`."""
        return self.render(self.parameter_set.to_values(indices))

    def render_examples(
        self, *, seed: int, start: int, n_examples: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sample and render the dataset examples ``[start, start + n_examples)``.

        The dataset writer calls this; a synth that must redraw some examples
        (a plugin patch that renders silence, say) overrides it, and must keep
        the result a function of ``(seed, example index)`` alone.

        Returns
        -------
        indices : np.ndarray [n_examples, n_parameters], int64
        audio : np.ndarray [n_examples, n_samples], float32
        """
        indices = self.parameter_set.sample_indices(seed=seed, start=start, n_examples=n_examples)
        return indices, self.render_indices(indices)

    def close(self) -> None:  # noqa: B027 - optional hook, most synths hold nothing
        """Release resources (worker processes, plugin instances). Safe to call twice."""

    def __enter__(self) -> SoundGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate

    def check_values(self, values: np.ndarray) -> np.ndarray:
        """Validate a [batch, n_parameters] array of finite values; returns float64."""
        v = np.asarray(values, dtype=np.float64)
        n = self.parameter_set.n_parameters
        if v.ndim != 2 or v.shape[1] != n:
            raise InverSynthError(
                f"{self.name}: values must have shape [batch, {n}], got {v.shape}"
            )
        if not np.isfinite(v).all():
            raise InverSynthError(f"{self.name}: parameter values must be finite")
        return v


def load_generator(name: str, config: dict[str, Any]) -> SoundGenerator:
    """Build the synth registered as ``name`` from its ``config()``."""
    if name not in GENERATORS:
        raise InverSynthError(f"unknown generator {name!r}; known: {sorted(GENERATORS)}")
    module_name, class_name = GENERATORS[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        gen: SoundGenerator = cls(**config)
    except TypeError as exc:
        raise InverSynthError(f"bad configuration for generator {name!r}: {exc}") from None
    return gen


# --------------------------------------------------------------------------
# Dataset writing
# --------------------------------------------------------------------------

_worker_generator: SoundGenerator | None = None
_FLUSH_INTERVAL_S = 1.0  # how much work an interrupted run may have to redo


def _init_worker(name: str, config: dict[str, Any]) -> None:
    """Build the synth once per worker process."""
    global _worker_generator
    _worker_generator = load_generator(name, config)


class _Rendered(NamedTuple):
    """A rendered chunk, as sent back from a worker."""

    chunk_id: int
    labels: np.ndarray  # [n, n_parameters] int16
    values: np.ndarray  # [n, n_parameters] float32
    audio: np.ndarray  # [n, n_samples] float32
    n_silent: int


@dataclass(frozen=True)
class _Chunk:
    """A unit of work: dataset rows ``[row, row + n)``, global examples ``[start, start + n)``."""

    chunk_id: int
    row: int
    start: int
    n: int


def _render_chunk(
    generator: SoundGenerator,
    chunk: _Chunk,
    seed: int,
    wav_directory: str | None,
    wav_prefix: str,
) -> _Rendered:
    """Sample and render one chunk; optionally write its WAV files."""
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
    return _Rendered(chunk.chunk_id, indices.astype(np.int16), values, audio, n_silent)


def _render_chunk_in_worker(
    chunk: _Chunk, seed: int, wav_directory: str | None, wav_prefix: str
) -> _Rendered:
    if _worker_generator is None:  # pragma: no cover - the initializer always ran
        raise RuntimeError("worker has no generator")
    return _render_chunk(_worker_generator, chunk, seed, wav_directory, wav_prefix)


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
        if int(n_examples) != n_examples or n_examples <= 0:
            raise InverSynthError(f"n_examples must be a positive integer, got {n_examples!r}")
        if int(seed) != seed or seed < 0:
            raise InverSynthError(f"seed must be an integer >= 0, got {seed!r}")
        if int(workers) != workers or workers <= 0:
            raise InverSynthError(f"workers must be a positive integer, got {workers!r}")
        if int(chunk_size) != chunk_size or chunk_size <= 0:
            raise InverSynthError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        k, n = shard
        if not 1 <= k <= n:
            raise InverSynthError(f"shard must be (K, N) with 1 <= K <= N, got {shard!r}")
        if n > n_examples:
            raise InverSynthError(f"cannot cut {n_examples} examples into {n} shards")
        self.generator = generator
        self.path = Path(path)
        self.total_examples = int(n_examples)
        self.seed = int(seed)
        self.workers = int(workers)
        self.chunk_size = int(chunk_size)
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
        return self.path.with_name(self.path.name + ".partial")

    def _chunks(self) -> list[_Chunk]:
        return [
            _Chunk(
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
        f.create_dataset("done_chunks", data=np.zeros(n_chunks, dtype=bool))
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
        expected = self._attrs()
        for key, value in expected.items():
            stored = f.attrs.get(key)
            if isinstance(stored, bytes):
                stored = stored.decode()
            if isinstance(stored, np.generic):
                stored = stored.item()
            if stored != value:
                f.close()
                raise InverSynthError(
                    f"cannot resume {str(self.partial_path)!r}: it was started with {key}={stored!r}, "
                    f"this run has {key}={value!r}; use the same options or delete the file"
                )
        return f

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
        if self.partial_path.exists() and resume:
            f = self._open_for_resume()
        elif self.partial_path.exists() and not overwrite:
            raise InverSynthError(
                f"an unfinished run left {str(self.partial_path)!r}; "
                "pass --resume to continue it, or --overwrite to start again"
            )
        else:
            f = self._create_file()
        try:
            self._fill(f)
            f.attrs["complete"] = True
            f.flush()
        finally:
            f.close()
        os.replace(self.partial_path, self.path)
        return self.path

    def _fill(self, f: h5py.File) -> None:
        done = f["done_chunks"][...]
        todo = [c for c in self._chunks() if not done[c.chunk_id]]
        by_id = {c.chunk_id: c for c in todo}
        silent = int(f.attrs["silent_examples"])
        wav_dir = str(self.wav_directory) if self.wav_directory is not None else None
        bar = tqdm(
            total=self.n_examples,
            initial=self.n_examples - sum(c.n for c in todo),
            unit="ex",
            desc=self.path.name,
            disable=not self.progress,
            smoothing=0.1,
        )

        audio_ds, labels_ds, values_ds, done_ds = (
            f["audio"],
            f["labels"],
            f["values"],
            f["done_chunks"],
        )

        unmarked: list[int] = []  # chunks whose rows are written but not yet recorded as done
        last_flush = time.monotonic()

        def record() -> None:
            # Rows first, then their marks, each made durable by its own flush:
            # a crash can lose marks (the chunk is redone), never mark missing rows.
            f.flush()
            for chunk_id in unmarked:
                done_ds[chunk_id] = True
            f.attrs["silent_examples"] = silent
            unmarked.clear()

        def write(result: _Rendered) -> None:
            nonlocal silent, last_flush
            chunk = by_id[result.chunk_id]
            rows = slice(chunk.row, chunk.row + chunk.n)
            audio_ds[rows] = result.audio
            labels_ds[rows] = result.labels
            values_ds[rows] = result.values
            silent += result.n_silent
            unmarked.append(result.chunk_id)
            if time.monotonic() - last_flush > _FLUSH_INTERVAL_S:
                record()
                last_flush = time.monotonic()
            bar.update(chunk.n)

        try:
            if self.workers == 1 or len(todo) <= 1:
                for chunk in todo:
                    write(_render_chunk(self.generator, chunk, self.seed, wav_dir, self.wav_prefix))
            else:
                self._fill_parallel(todo, write, wav_dir)
        finally:
            record()
            f.flush()
            bar.close()

    def _fill_parallel(
        self,
        todo: list[_Chunk],
        write: Callable[[_Rendered], None],
        wav_dir: str | None,
    ) -> None:
        # "spawn": workers start clean, without whatever the parent imported
        # (TensorFlow and DawDreamer must never meet in one process).
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(self.generator.name, self.generator.config()),
        )
        pending: set[Future[_Rendered]] = set()
        queue = iter(todo)
        try:
            # Keep a bounded number of chunks in flight so memory stays flat.
            for chunk in itertools.islice(queue, 2 * self.workers):
                pending.add(
                    pool.submit(_render_chunk_in_worker, chunk, self.seed, wav_dir, self.wav_prefix)
                )
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    write(future.result())
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending.add(
                            pool.submit(
                                _render_chunk_in_worker, nxt, self.seed, wav_dir, self.wav_prefix
                            )
                        )
        except BaseException:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


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
