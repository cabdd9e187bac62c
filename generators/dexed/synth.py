"""The DX7 (Dexed) as a :class:`SoundGenerator`, its ``.syx`` patches, and datasets of real banks.

:class:`DexedGenerator` plays one note per example on the Dexed engine
(dexed-py), its patch the config's fixed parameters (Dexed's INIT VOICE for the
rest) with the example's values on the varied ones. Registered as ``"dexed"``,
so :class:`~generators.writer.DatasetCreator` gives it workers, seeds,
resume, shards and progress.

Patches go both ways:

* out: :meth:`DexedGenerator.write_syx` writes an example's (or a prediction's)
  patch as a DX7 single-voice dump, or as a 32-voice bank that Dexed's
  cartridge manager opens; :meth:`DexedGenerator.read_syx` reads one back;
* in: :func:`write_bank_dataset` turns DX7 banks into a dataset of the same
  schema (and the same generator config, so a model trained on random patches
  evaluates on it): each voice rendered whole, its values on the varied
  parameters as labels (the nearest level) and, exactly, as ``values``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from core.errors import InverSynthError
from core.interrupts import result_or_interrupt
from generators.dexed.config import load_dexed_config
from generators.dexed.engine import (
    ENGINE_PARAMETERS,
    INIT_VOICE,
    Engine,
    engine_parameter,
    read_voice_syx,
    render_voices,
    require_dexed,
    values_from_voices,
    voices_from_values,
    write_bank,
    write_voice_syx,
)
from generators.parameters import Parameter, ParameterSet
from generators.sound_generator import RenderedExamples, SoundGenerator
from generators.writer import DatasetCreator, DatasetPlan

if TYPE_CHECKING:
    from generators.sampling import ExampleSampler

__all__ = ["DexedGenerator", "write_bank_dataset", "write_syx"]

DEFAULT_VOICE_NAME = "INVERSYNTH"
# dexed-py's engine plays nothing at all below about 12.7 kHz (measured: silence at
# 12,724 Hz and under, Dexed's INIT VOICE at full level from 12,725 Hz up).
MIN_SAMPLE_RATE_HZ = 12_800
_TRANSPOSE = engine_parameter("transpose")[1]
_TRANSPOSE_BYTE, _MAX_TRANSPOSE = _TRANSPOSE.byte, _TRANSPOSE.max_value


def _int_in(value: Any, label: str, low: int, high: int) -> int:
    """``value`` as an int in [low, high] (integral floats such as 60.0 pass)."""
    ok = isinstance(value, (int, np.integer, float)) and not isinstance(value, bool)
    if not ok or not float(value).is_integer() or not low <= value <= high:
        raise InverSynthError(f"{label} must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


_STOP_CHECK = 16  # voices rendered between checks of a dropped job's stop flag


@dataclass
class _Job:
    """Examples ``[start, start + n)`` being rendered in blocks by the generator's threads."""

    seed: int
    start: int
    n: int
    sampler: ExampleSampler | None
    indices: np.ndarray  # [n, n_parameters]
    blocks: list[Future[np.ndarray]]  # audio of consecutive rows, in order
    stop: threading.Event = field(default_factory=threading.Event)

    def covers(self, seed: int, start: int, n: int, sampler: ExampleSampler | None) -> bool:
        same = seed == self.seed and start == self.start and sampler is self.sampler
        return same and n <= self.n

    def result(self, n: int) -> RenderedExamples:
        audio = np.concatenate(
            [result_or_interrupt(block) for block in self.blocks]
        )  # [self.n, n_samples]
        return RenderedExamples(self.indices[:n], audio[:n], np.zeros(n, dtype=bool))

    def drop(self) -> None:
        self.stop.set()
        for block in self.blocks:
            block.cancel()


class DexedGenerator(SoundGenerator):
    """The Dexed DX7 engine playing one MIDI note per example.

    Parameters
    ----------
    dexed_config : dict or path
        The config (see :mod:`generators.dexed.config`), or its JSON file. Its
        contents (not its path) go into :meth:`config`, so a dataset carries it.
    sample_rate : int > 0
        Hz; the engine runs at this rate.
    n_samples : int > 0
        Length of every example.
    pitch, velocity : int, optional
        MIDI note (0-127) and velocity (1-127); default the config's ``note``, else 60 and 100.
    note_length_s : float > 0, optional
        Note-on to note-off; default the config's ``note.length_s``, else 3/4 of the example.
    workers : int > 0
        Engines rendering in parallel threads of this process (dexed-py renders
        without the GIL). With more than one, :meth:`render_examples` also
        renders the chunk after the one asked for while the caller writes it,
        which is how ``python -m generators.dexed run --workers N`` keeps N
        cores busy from one writer process. Not part of :meth:`config`: worker
        processes that rebuild the generator render with one thread each (the
        same argument as :class:`~generators.vst.synth.VSTGenerator`'s hosts).

    Raises
    ------
    InverSynthError
        For a bad config (checked against the engine's parameters first), or
        when dexed-py (the optional extra ``dexed``) is not installed.
    """

    name = "dexed"
    renders_in_parallel = True  # its engine threads: ``workers`` of them
    lookup_hint = (
        "DX7 banks of your own make one: python -m generators.dexed collect BANKS.syx "
        "--output data/dx7_voices.npz, then python -m generators.dexed bank --collection "
        "data/dx7_voices.npz --role training --config plugin_config/dexed_voice.json --name dx7voices"
    )

    def __init__(
        self,
        *,
        dexed_config: dict[str, Any] | str | Path,
        sample_rate: int = 16384,
        n_samples: int = 16384,
        pitch: int | None = None,
        velocity: int | None = None,
        note_length_s: float | None = None,
        workers: int = 1,
    ) -> None:
        super().__init__(sample_rate=sample_rate, n_samples=n_samples)
        if self.sample_rate < MIN_SAMPLE_RATE_HZ:
            raise InverSynthError(
                f"the DX7 engine plays silence below {MIN_SAMPLE_RATE_HZ} Hz; got a sample rate "
                f"of {self.sample_rate} Hz"
            )
        self.dexed_config = load_dexed_config(dexed_config)
        note = self.dexed_config.note
        self.pitch = _int_in(pitch if pitch is not None else note.get("pitch", 60), "pitch", 0, 127)
        self.velocity = _int_in(
            velocity if velocity is not None else note.get("velocity", 100), "velocity", 1, 127
        )
        length = note_length_s if note_length_s is not None else note.get("length_s")
        self.note_length_s = float(length) if length is not None else 0.75 * self.duration_s
        if not (np.isfinite(self.note_length_s) and self.note_length_s > 0):
            raise InverSynthError(f"note_length_s must be > 0 s, got {self.note_length_s!r}")
        varied = self.dexed_config.varied
        self._parameters = ParameterSet(
            Parameter(
                name=v.name,
                levels=v.levels,
                unit="",
                spacing=v.spacing,
                group=v.group or None,
                ordered=v.ordered,
                description=ENGINE_PARAMETERS[v.column].meaning,
            )
            for v in varied
        )
        self.groups: tuple[str, ...] = tuple(v.group for v in varied)
        self._columns = np.array([v.column for v in varied], dtype=np.int64)  # [P]
        base = INIT_VOICE.copy()  # [145]
        for f in self.dexed_config.fixed:
            base[f.column] = f.value
        self._base = base
        self.workers = _int_in(workers, "workers", 1, 256)
        require_dexed()  # after the config: a bad config is reported with or without the extra
        self._engines: list[Engine] = []  # one per thread, made on first use
        # An engine renders one voice at a time: a dropped guess's block runs on to
        # its next stop check, and the next request's block for that engine waits.
        self._engine_locks: list[threading.Lock] = []
        self._pool: ThreadPoolExecutor | None = None
        self._lookahead: _Job | None = None

    # ---- SoundGenerator --------------------------------------------------------
    @property
    def parameter_set(self) -> ParameterSet:
        return self._parameters

    def config(self) -> dict[str, Any]:
        return {
            "dexed_config": self.dexed_config.raw,
            "sample_rate": self.sample_rate,
            "n_samples": self.n_samples,
            "pitch": self.pitch,
            "velocity": self.velocity,
            "note_length_s": self.note_length_s,
        }

    def render(self, values: np.ndarray) -> np.ndarray:
        """Render values [batch, n_parameters] (engine units) -> float32 [batch, n_samples]."""
        return self.render_voices(self.voices(values))

    def render_examples(
        self, *, seed: int, start: int, n_examples: int, sampler: ExampleSampler | None = None
    ) -> RenderedExamples:
        """Sample and render examples ``[start, start + n_examples)``; see the base class.

        With ``workers`` > 1 the next chunk, ``[start + n_examples, start +
        2 n_examples)``, starts rendering before this one is returned: the dataset
        writer asks for chunks in order, and gets the next one ready (or partly
        so) after writing this one. Any other request drops the guess. Examples
        depend on ``(seed, index)`` only, so the result is the same either way.
        """
        if self.workers == 1:
            return super().render_examples(
                seed=seed, start=start, n_examples=n_examples, sampler=sampler
            )
        job = self._lookahead
        if job is None or not job.covers(seed, start, n_examples, sampler):
            if job is not None:
                job.drop()
            job = self._start_job(seed, start, n_examples, sampler)
        self._lookahead = self._start_job(seed, start + n_examples, n_examples, sampler)
        return job.result(n_examples)

    def close(self) -> None:
        """Stop the guessed chunk and end the rendering threads (they restart on the next render)."""
        if self._lookahead is not None:
            self._lookahead.drop()
            self._lookahead = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> DexedGenerator:
        return self

    # ---- patches ---------------------------------------------------------------
    def engine_values(self, values: np.ndarray) -> np.ndarray:
        """All 145 engine values of examples: the fixed ones, with ``values`` on the varied columns.

        Parameters
        ----------
        values : np.ndarray [batch, n_parameters]

        Returns
        -------
        engine_values : np.ndarray [batch, 145], float64
        """
        v = self.check_values(values)
        full = np.repeat(self._base[None, :], v.shape[0], axis=0)  # [B, 145]
        full[:, self._columns] = v
        return full

    def voices(self, values: np.ndarray, *, voice_name: str = DEFAULT_VOICE_NAME) -> np.ndarray:
        """DX7 voices [batch, 155] uint8 of examples' values [batch, n_parameters]."""
        return voices_from_values(self.engine_values(values), name=voice_name)

    def values_of_voices(self, voices: np.ndarray) -> np.ndarray:
        """The varied parameters' exact values [batch, n_parameters] of DX7 voices [batch, 155]."""
        return values_from_voices(voices)[:, self._columns]

    def project_voices(self, voices: np.ndarray) -> np.ndarray:
        """DX7 voices [batch, 155] as this config plays them: [batch, 155] uint8.

        Each varied parameter moves to its nearest level, every other parameter
        to the config's fixed value (Dexed's INIT VOICE where the config names
        none): the closest voice of this config's space, whose render against
        the voice's own is the config's *reach* (``benchmarks/dexed_reach.py``).
        """
        indices = self.parameter_set.nearest_indices(self.values_of_voices(voices))
        return self.voices(self.parameter_set.to_values(indices))

    def render_voices(self, voices: np.ndarray) -> np.ndarray:
        """Render whole DX7 voices [batch, 155] with this generator's note -> float32 [batch, n_samples]."""
        v = np.asarray(voices, dtype=np.uint8)
        if self.workers == 1 or len(v) < 2:
            return self._render_block(0, v, None)
        blocks = self._submit(v, None)
        return np.concatenate([result_or_interrupt(block) for block in blocks])

    # ---- threads ---------------------------------------------------------------
    def _render_block(
        self, engine: int, voices: np.ndarray, stop: threading.Event | None
    ) -> np.ndarray:
        """Render voices [b, 155] on engine number ``engine``; a set ``stop`` ends it early."""
        self._make_engines(engine + 1)
        out = np.zeros((len(voices), self.n_samples), dtype=np.float32)
        with self._engine_locks[engine]:
            for first in range(0, len(voices), _STOP_CHECK):
                if stop is not None and stop.is_set():
                    break  # a dropped guess: nobody reads it
                out[first : first + _STOP_CHECK] = render_voices(
                    self._engines[engine],
                    voices[first : first + _STOP_CHECK],
                    pitch=self.pitch,
                    velocity=self.velocity,
                    note_length_s=self.note_length_s,
                    n_samples=self.n_samples,
                )
        return out

    def _make_engines(self, n: int) -> None:
        """At least ``n`` engines, each with its lock (called where no render runs on them)."""
        while len(self._engines) < n:
            self._engines.append(Engine(self.sample_rate))
            self._engine_locks.append(threading.Lock())

    def _submit(self, voices: np.ndarray, stop: threading.Event | None) -> list[Future[np.ndarray]]:
        """Split voices [b, 155] into one block of consecutive rows per thread, and start them."""
        if self._pool is None:
            # Engines are made here, in this thread, so that threads never append at once.
            self._make_engines(self.workers)
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="dexed")
        parts = np.array_split(voices, self.workers)
        return [
            self._pool.submit(self._render_block, k, part, stop) for k, part in enumerate(parts)
        ]

    def _start_job(self, seed: int, start: int, n: int, sampler: ExampleSampler | None) -> _Job:
        indices = self.sample_indices(seed=seed, start=start, n_examples=n, sampler=sampler)
        voices = self.voices(self.parameter_set.to_values(indices))
        stop = threading.Event()
        return _Job(seed, start, n, sampler, indices, self._submit(voices, stop), stop)

    def _one_row(self, values: np.ndarray | None, indices: np.ndarray | None) -> np.ndarray:
        if (values is None) == (indices is None):
            raise InverSynthError("give exactly one of values= or indices=")
        if indices is not None:
            return self.parameter_set.to_values(np.asarray(indices).reshape(1, -1))
        return np.asarray(values, dtype=np.float64).reshape(1, -1)

    def write_syx(
        self,
        path: str | Path,
        *,
        values: np.ndarray | None = None,
        indices: np.ndarray | None = None,
        voice_name: str = DEFAULT_VOICE_NAME,
        bank: bool = False,
        note: int | None = None,
    ) -> Path:
        """Write one example's patch as a ``.syx`` file for Dexed or a DX7.

        Parameters
        ----------
        path : path-like
            Must end in ``.syx``.
        values : np.ndarray [n_parameters], optional
            Parameter values (e.g. ``parameter_set.to_values`` of a prediction).
        indices : np.ndarray [n_parameters], optional
            Class indices instead (e.g. a model's decoded prediction).
        voice_name : str
            At most 10 ASCII characters.
        bank : bool
            False: a single-voice dump (163 bytes), what a DX7 or Dexed takes over
            MIDI (e.g. sent with a librarian). True: a 32-voice bank with the
            patch as voice 1 and INIT VOICE after it, the file Dexed's cartridge
            manager opens from disk (Dexed reads only banks from files).
        note : int, optional
            The MIDI note the voice is to be played at (:meth:`voice_for_note`);
            default this generator's own note.

        Returns
        -------
        path : Path
        """
        out = Path(path)
        if out.suffix.lower() != ".syx":
            raise InverSynthError(f"a DX7 sysex file ends in .syx, got {str(out)!r}")
        row = self._one_row(values, indices)[0]
        played = self.pitch if note is None else note
        voice = self.voice_for_note(row, played, voice_name=voice_name)[0][None, :]  # [1, 155]
        if bank:
            return write_bank(out, voice)
        return write_voice_syx(out, voice[0])

    def voice_for_note(
        self, values: np.ndarray, note: int, *, voice_name: str = DEFAULT_VOICE_NAME
    ) -> tuple[np.ndarray, int]:
        """The voice that sounds, played at ``note``, as ``values`` sound at this generator's note.

        The DX7 adds a voice's transpose (24 = none) to the key played before
        anything else, so a voice played ``k`` semitones higher with its transpose
        ``k`` lower sounds the same, sample for sample. The voice's transpose is
        moved by ``self.pitch - note``; where that leaves its range (0..48, two
        octaves either way) the note moves by octaves until it fits.

        Parameters
        ----------
        values : np.ndarray [n_parameters]
        note : int
            The MIDI note to play (the pitch of the sound matched, say), 0 to 127.
        voice_name : str

        Returns
        -------
        voice : np.ndarray [155], uint8
        played : int
            The MIDI note to play it at: ``note``, or an octave of it.
        """
        voice = self.voices(np.asarray(values, dtype=np.float64)[None, :], voice_name=voice_name)[0]
        note = _int_in(note, "note", 0, 127)
        transpose = int(voice[_TRANSPOSE_BYTE])
        for octaves in (0, 1, -1, 2, -2, 3, -3, 4, -4):
            played = note + 12 * octaves
            moved = transpose + self.pitch - played
            if 0 <= played <= 127 and 0 <= moved <= _MAX_TRANSPOSE:
                voice[_TRANSPOSE_BYTE] = moved
                return voice, played
        return voice, self.pitch  # no octave of the note fits the transpose: the generator's own

    def read_syx(self, path: str | Path, *, voice: int = 1) -> np.ndarray:
        """The varied parameters' values [n_parameters] of a ``.syx`` patch (a dump, or voice ``voice`` of a bank)."""
        return self.values_of_voices(read_voice_syx(path, voice=voice)[None, :])[0]

    def render_syx(self, path: str | Path, *, voice: int = 1) -> np.ndarray:
        """Render the whole patch of a ``.syx`` file with this generator's note: float32 [n_samples]."""
        return self.render_voices(read_voice_syx(path, voice=voice)[None, :])[0]


def write_syx(
    generator: DexedGenerator,
    path: str | Path,
    *,
    values: np.ndarray | None = None,
    indices: np.ndarray | None = None,
    bank: bool = False,
) -> Path:
    """Write a patch as a ``.syx`` file; see :meth:`DexedGenerator.write_syx`."""
    return generator.write_syx(path, values=values, indices=indices, bank=bank)


# --------------------------------------------------------------------------
# Datasets of real patches
# --------------------------------------------------------------------------


class _BankVoices(DexedGenerator):
    """A generator whose examples are given voices, in order, instead of random draws.

    Its name and :meth:`config` are those of the plain generator, so the dataset
    it writes looks like (and is checked against models as) one of random
    patches; that also means a worker process would rebuild the plain
    generator, so it renders only in the writing process (``workers=1``).
    """

    def __init__(self, *, voices: np.ndarray, **config: Any) -> None:
        super().__init__(**config)
        self.bank_voices = np.asarray(voices, dtype=np.uint8)  # [n, 155]

    def render_examples(
        self, *, seed: int, start: int, n_examples: int, sampler: ExampleSampler | None = None
    ) -> RenderedExamples:
        rows = self.bank_voices[start : start + n_examples]  # [n, 155]  (no sampler: given voices)
        indices = self.parameter_set.nearest_indices(self.values_of_voices(rows))
        return RenderedExamples(indices, self.render_voices(rows), np.zeros(len(rows), dtype=bool))


def write_bank_dataset(
    generator: DexedGenerator,
    voices: np.ndarray,
    *,
    sources: Sequence[str],
    path: str | Path,
    chunk_size: int = 256,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Turn DX7 banks into a dataset: every voice rendered with the generator's note.

    The file has the schema of :class:`~generators.writer.DatasetCreator`
    (which writes it) and the generator's name and config, so models trained on
    the generator's random patches can be evaluated on it. Per voice:

    * ``audio``: the whole voice (all 145 parameters, not only the varied ones);
    * ``labels``: the class whose level is nearest to the voice's value, per varied parameter;
    * ``values``: the voice's exact values of the varied parameters;
    * ``voices`` (uint8 [N, 155], in addition to the schema): the voices
      themselves, names included, to render or write them back as ``.syx``.

    The attribute ``bank_files`` lists where the voices came from (JSON).

    Parameters
    ----------
    generator : DexedGenerator
    voices : np.ndarray [n, 155], uint8
        DX7 voices (:func:`~generators.dexed.engine.read_syx_voices` of sysex
        files: every voice of every bank, or a voice collection's).
    sources : sequence of str
        Where they came from (bank files), recorded in the file.
    path : path-like
        The dataset file. Written under a temporary name, renamed when complete.
    chunk_size : int
    overwrite : bool
        Replace an existing file.
    progress : bool
    """
    voices = np.asarray(voices, dtype=np.uint8)
    if voices.ndim != 2 or len(voices) == 0:
        raise InverSynthError("give at least one DX7 voice")
    final = Path(path)
    if final.exists() and not overwrite:
        raise InverSynthError(f"{str(final)!r} already exists; pass --overwrite to replace it")
    source = _BankVoices(voices=voices, **generator.config())
    exact = source.values_of_voices(voices).astype(np.float32)  # [N, P]
    staging = final.with_name(final.name + ".bank.partial")
    DatasetCreator(
        source,
        path=staging,
        plan=DatasetPlan(n_examples=len(voices), seed=0),
        workers=1,
        chunk_size=chunk_size,
        progress=progress,
    ).run(overwrite=True)
    with h5py.File(staging, "r+") as f:
        f["values"][...] = exact  # the writer stored the labels' levels
        f.create_dataset("voices", data=voices)
        f.attrs["bank_files"] = json.dumps(list(sources))
        f.attrs["drawn_from_seed"] = False  # real voices, not draws of (seed, index)
    os.replace(staging, final)
    return final
