"""One chunk of a dataset: sample, render and check it, in whatever process renders.

The dataset writer (:mod:`generators.writer`) renders chunks with
:func:`render_chunk` in its worker processes, and so does the training stream
(:mod:`models.common.stream`). It is a module of its own, with no HDF5 or
progress-bar imports, so that a worker that unpickles the task imports only
what rendering needs.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from core.storage import write_atomic
from generators.sampling import load_sampler
from generators.schema import LABEL_DTYPE, SILENCE_PEAK
from generators.sound_generator import SoundGenerator

__all__ = ["Chunk", "Rendered", "render_chunk"]


class Rendered(NamedTuple):
    """A rendered chunk, as sent back from a worker."""

    chunk_id: int
    labels: np.ndarray  # [n, n_parameters] int16
    values: np.ndarray  # [n, n_parameters] float32
    audio: np.ndarray  # [n, n_samples] float32
    failed: np.ndarray  # [n] bool
    n_silent: int  # examples that rendered silent (failed ones not counted)


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
    sampler: dict[str, Any] | None = None,
    wav_directory: str | None = None,
    wav_prefix: str = "example",
) -> Rendered:
    """Sample and render one chunk; optionally write its WAV files (not those of failed examples).

    The examples depend only on ``(seed, chunk.start + i)``: the dataset writer
    and the training stream (:mod:`models.common.stream`) render with this.
    ``sampler`` is the spec of a :mod:`generators.sampling` sampler (None:
    uniform draws); it is built once per process.
    """
    if sampler is None:
        indices, audio, failed = generator.render_examples(
            seed=seed, start=chunk.start, n_examples=chunk.n
        )
    else:
        indices, audio, failed = generator.render_examples(
            seed=seed, start=chunk.start, n_examples=chunk.n, sampler=load_sampler(sampler)
        )
    values = generator.parameter_set.to_values(indices).astype(np.float32)
    audio = np.asarray(audio, dtype=np.float32)
    failed = np.asarray(failed, dtype=bool)
    audio[failed] = 0.0
    if wav_directory is not None:
        names = [f"{wav_directory}/{wav_prefix}_{chunk.start + i:07d}.wav" for i in range(chunk.n)]
        _write_wavs(audio, np.flatnonzero(~failed), generator.sample_rate, names)
    peaks = np.max(np.abs(audio), axis=1)  # [n]
    n_silent = int(np.sum(~(peaks >= SILENCE_PEAK) & ~failed))  # NaN peaks count as silent
    labels = indices.astype(LABEL_DTYPE)
    return Rendered(chunk.chunk_id, labels, values, audio, failed, n_silent)


def _write_wavs(audio: np.ndarray, rows: np.ndarray, rate: int, names: list[str]) -> None:
    """Rows of audio [n, n_samples] as float WAV files ``names[i]``, each whole or not at all."""
    import soundfile as sf  # deferred: the render workers of a dataset without WAVs never need it

    kept = "the examples finished so far are kept: make room and run again with --resume"
    for i in rows:
        buffer = io.BytesIO()  # the file in memory: libsndfile's own writes fail unnamed
        sf.write(buffer, audio[i], rate, subtype="FLOAT", format="WAV")
        write_atomic(names[i], buffer.getvalue(), kept=kept)
