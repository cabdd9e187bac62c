"""Collections of real DX7 voices, and a training sampler of them and their variations.

Random patches do not teach a network the voices people make: a real voice
uses every algorithm, envelopes shaped by hand, operators tuned to each other.
This module gathers real voices and draws training examples from them:

* :func:`gather_voices` reads any number of DX7 sysex files (32-voice banks or
  single voices), keeps each voice once (voices are the same when their 145
  parameters are, whatever their names), leaves out the voices that judge real
  matching (:data:`HELD_OUT_SET`: Yamaha's factory ROM cartridges ROM1A to
  ROM4B and Dexed's SynprezFM_17 to _32, by their bytes; given those files,
  their near copies too) and sets a share aside for validation;
  :class:`VoiceCollection` is the result, one ``.npz`` file;
* :class:`~generators.dexed.voice_mix.VoiceMix` draws training examples from a
  collection's training voices and their variations (the ``"dx7_voices"``
  sampler of :mod:`generators.sampling`).

Everything here is NumPy only; reading banks uses :mod:`generators.dexed.engine`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import InverSynthError
from generators.dexed.engine import (
    N_ENGINE_PARAMETERS,
    VOICE_BYTES,
    read_syx_voices,
    values_from_voices,
)

__all__ = [
    "HELD_OUT_SET",
    "GatherReport",
    "VoiceCollection",
    "gather_voices",
    "voice_key",
]

HELD_OUT_SET = "Yamaha DX7 ROM1A-ROM4B and Dexed SynprezFM_17-32"
_HELD_OUT_FILE = Path(__file__).with_name("held_out_voices.txt")
COLLECTION_FORMAT = 1
TRAINING, VALIDATION = 0, 1  # a voice's role in a collection
DEFAULT_NEAR_PARAMETERS = 4  # voices differing in at most this many parameters are near copies


def voice_key(voice: np.ndarray) -> str:
    """A voice's identity: SHA-256 (first 16 hex digits) of its 145 parameter bytes, name left out."""
    data = bytes(np.asarray(voice, dtype=np.uint8)[:N_ENGINE_PARAMETERS].tolist())
    return hashlib.sha256(data).hexdigest()[:16]


def held_out_keys() -> frozenset[str]:
    """:func:`voice_key` of every voice of :data:`HELD_OUT_SET`, shipped as a list of hashes."""
    lines = _HELD_OUT_FILE.read_text().splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


@dataclass(frozen=True)
class VoiceCollection:
    """Real DX7 voices, each once, with their role and the file each came from.

    Attributes
    ----------
    voices : np.ndarray [n, 155], uint8
    role : np.ndarray [n], uint8
        ``TRAINING`` (0) or ``VALIDATION`` (1).
    sources : np.ndarray [n], str
        The name (not the path) of the file each voice was read from.
    """

    voices: np.ndarray
    role: np.ndarray
    sources: np.ndarray

    @property
    def fingerprint(self) -> str:
        """SHA-256 (16 hex digits) of the voices and their roles: what a sampler was built on."""
        digest = hashlib.sha256(self.voices.tobytes() + self.role.tobytes())
        return digest.hexdigest()[:16]

    def part(self, role: int) -> np.ndarray:
        """The voices of one role: [k, 155] uint8."""
        return self.voices[self.role == role]

    def save(self, path: str | Path) -> Path:
        """Write the collection as one ``.npz`` file (whole or not at all)."""
        out = Path(path)
        if out.suffix != ".npz":
            raise InverSynthError(f"a voice collection is an .npz file, got {str(out)!r}")
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(
                    f,
                    format_version=np.int64(COLLECTION_FORMAT),
                    voices=self.voices,
                    role=self.role,
                    sources=self.sources.astype(str),
                )
            os.replace(tmp, out)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise InverSynthError(f"cannot write {str(out)!r}: {exc.strerror or exc}") from None
        return out

    @classmethod
    def load(cls, path: str | Path) -> VoiceCollection:
        """Read a collection written by :meth:`save`, checked."""
        p = Path(path)
        if not p.is_file():
            raise InverSynthError(
                f"voice collection {str(p)!r} does not exist or is not a file "
                "(make one with: python -m generators.dexed collect BANKS.syx ...)"
            )
        try:
            with np.load(p, allow_pickle=False) as data:
                version = int(data["format_version"])
                voices, role = data["voices"], data["role"]
                sources = data["sources"]
        except (OSError, KeyError, ValueError) as exc:
            raise InverSynthError(f"{str(p)!r} is not a voice collection: {exc}") from None
        if version != COLLECTION_FORMAT:
            raise InverSynthError(
                f"{str(p)!r} has collection format {version}, not {COLLECTION_FORMAT}"
            )
        shapes_ok = voices.ndim == 2 and voices.shape[1] == VOICE_BYTES and voices.dtype == np.uint8
        if not shapes_ok or role.shape != (len(voices),) or sources.shape != (len(voices),):
            raise InverSynthError(f"{str(p)!r} is damaged: arrays of {voices.shape} voices")
        values_from_voices(voices, source=str(p))  # every field within its DX7 range
        return cls(voices=voices, role=role.astype(np.uint8), sources=sources)


@dataclass(frozen=True)
class GatherReport:
    """What :func:`gather_voices` read and left out."""

    files: int
    read: int
    unique: int
    held_out_exact: int
    held_out_near: int
    validation: int
    near_validation: int
    training: int

    def lines(self) -> list[str]:
        return [
            f"read {self.read} voices from {self.files} files; {self.unique} different",
            f"left out {self.held_out_exact} voices of {HELD_OUT_SET} (the same parameters) "
            f"and {self.held_out_near} near copies of them",
            f"validation: {self.validation} voices; {self.near_validation} near copies of them "
            "left out of training",
            f"training: {self.training} voices",
        ]


def _min_differences(voices: np.ndarray, others: np.ndarray, block: int = 2048) -> np.ndarray:
    """For each voice, how many of its 145 parameters differ from the closest of ``others``: [n]."""
    out = np.full(len(voices), N_ENGINE_PARAMETERS + 1, dtype=np.int64)
    if len(others) == 0:
        return out
    b = others[:, :N_ENGINE_PARAMETERS]
    for start in range(0, len(voices), block):
        a = voices[start : start + block, :N_ENGINE_PARAMETERS]
        out[start : start + block] = (a[:, None, :] != b[None, :, :]).sum(axis=2).min(axis=1)
    return out


def _read_files(
    files: Sequence[str | Path], progress: Callable[[int], None] | None
) -> tuple[np.ndarray, list[str]]:
    voices, sources = [], []
    for k, path in enumerate(files):
        v = read_syx_voices(path)  # [32 per bank, 155]
        voices.append(v)
        sources += [Path(path).name] * len(v)
        if progress is not None:
            progress(k + 1)
    return np.concatenate(voices), sources


def gather_voices(
    files: Sequence[str | Path],
    *,
    held_out_files: Sequence[str | Path] = (),
    near_parameters: int = DEFAULT_NEAR_PARAMETERS,
    validation: int = 0,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> tuple[VoiceCollection, GatherReport]:
    """Gather the voices of DX7 sysex files into a collection.

    Parameters
    ----------
    files : sequence of path-like
        DX7 sysex files: 32-voice banks (any number in a file) or single voices.
    held_out_files : sequence of path-like
        Banks of :data:`HELD_OUT_SET` (or any voices to keep out): their voices
        and every voice within ``near_parameters`` differing parameters of one
        are left out. The held-out voices themselves are left out by their
        bytes even without these files (:func:`held_out_keys`).
    near_parameters : int >= 0
        How many of the 145 parameters a near copy may differ in.
    validation : int >= 0
        Voices set aside for validation (drawn with ``seed``); their near copies
        leave the training voices.
    seed : int
    progress : callable, optional
        Called with the number of files read so far.

    Returns
    -------
    collection : VoiceCollection
    report : GatherReport
    """
    if not files:
        raise InverSynthError("give at least one DX7 sysex file to gather voices from")
    voices, sources = _read_files(files, progress)
    keys = [voice_key(v) for v in voices]
    _, first = np.unique(np.array(keys), return_index=True)
    first = np.sort(first)  # the first copy of each voice, in file order
    unique = len(first)
    banned = held_out_keys()
    exact = np.array([keys[i] in banned for i in first], dtype=bool)
    if held_out_files:
        held, _ = _read_files(held_out_files, None)
        near = _min_differences(voices[first], held) <= near_parameters
    else:
        near = np.zeros(len(first), dtype=bool)
    keep = first[~(exact | near)]
    rng = np.random.default_rng(seed)
    if validation > len(keep):
        raise InverSynthError(f"--validation {validation} is more than the {len(keep)} voices left")
    chosen = np.sort(rng.choice(len(keep), size=validation, replace=False))
    role = np.full(len(keep), TRAINING, dtype=np.uint8)
    role[chosen] = VALIDATION
    close = _min_differences(voices[keep], voices[keep[chosen]]) <= near_parameters
    drop = close & (role == TRAINING)
    keep, role = keep[~drop], role[~drop]
    collection = VoiceCollection(
        voices=voices[keep].copy(), role=role, sources=np.array([sources[i] for i in keep])
    )
    report = GatherReport(
        files=len(files),
        read=len(voices),
        unique=unique,
        held_out_exact=int(exact.sum()),
        held_out_near=int((near & ~exact).sum()),
        validation=int(validation),
        near_validation=int(drop.sum()),
        training=int((role == TRAINING).sum()),
    )
    return collection, report
