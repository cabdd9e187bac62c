"""Nearest neighbours of a sound among a dataset's examples, by a compact spectral feature.

The index is the log-mel spectrogram of every example, coarse in time and
frequency (:data:`INDEX_FEATURES`: 32 mel bands x 32 frames, float16, 2 KB per
example), computed once in chunks and stored beside the dataset as
``{first file}.index.npz``. It is keyed to the dataset's fingerprint and to the
feature settings, so a stale index (another dataset under the same name, other
settings) is rebuilt rather than used, and so is a damaged one (truncated,
arrays of the wrong shape or type, labels out of range, features not finite),
each saying so in one line. Where the index cannot be written, the lookup goes
on with the one built in memory, saying so. A query is one matrix product over
the index: about 10 ms for 20,000 examples.

>>> lookup = DatasetLookup.open("data/fm_data.hdf5", generator=synth)
>>> nearest = lookup.query(audio, k=8)  # rows, labels, values, distances
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.checks import check_audio, check_positive_int
from core.errors import InverSynthError
from core.storage import atomic_path
from generators.dataset import SynthDataset, open_dataset
from models.common.spectral import (
    ABSOLUTE_FLOOR_DB,
    band_power,
    mel_filterbank,
    power_stft,
    power_to_db,
)

__all__ = ["INDEX_FEATURES", "DatasetLookup", "Neighbours", "index_features", "index_path"]

INDEX_FORMAT_VERSION = 1
# 512-sample STFT (the metrics' own) summed into 32 mel bands, 2 frames averaged into 1.
INDEX_FEATURES: dict[str, int] = {"n_fft": 512, "hop_length": 256, "n_bands": 32, "frame_pool": 2}
_CHUNK_EXAMPLES = 512  # examples read and featurized at a time while building
_QUERY_BLOCK = 8192  # index rows converted to float32 at a time while querying
_MAX_FLOAT32_BYTES = 512 * 2**20  # a float32 copy of the index up to this size


def index_features(audio: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """The index's feature of each sound: coarse log-mel frames, flattened.

    Parameters
    ----------
    audio : np.ndarray [batch, n_samples] (or [n_samples]), float
    sample_rate : int
        Hz.

    Returns
    -------
    features : np.ndarray [batch, n_features], float32
        dB re a full-scale sine, floored at ``ABSOLUTE_FLOOR_DB`` (-100 dB).
    """
    rate = check_positive_int(sample_rate, "sample_rate")
    x = check_audio(audio, name="audio", batch=True)  # float32 [batch, n_samples]
    n_fft = INDEX_FEATURES["n_fft"]
    power = power_stft(x, n_fft=n_fft, hop_length=INDEX_FEATURES["hop_length"])
    filters = mel_filterbank(
        sample_rate=rate, n_fft=n_fft, n_mels=INDEX_FEATURES["n_bands"], min_width_bins=True
    ).astype(np.float32)  # the matching distance's bands: HTK scale, peak 1
    db = power_to_db(band_power(power, filters=filters), floor_db=ABSOLUTE_FLOOR_DB)
    pool = INDEX_FEATURES["frame_pool"]
    frames = db.shape[1] - db.shape[1] % pool or db.shape[1]
    pooled = db[:, :frames].reshape(db.shape[0], -1, min(pool, frames), db.shape[2]).mean(axis=2)
    return pooled.reshape(db.shape[0], -1).astype(np.float32)


def index_path(dataset: SynthDataset) -> Path:
    """Where the index of a dataset lives: beside its first file."""
    first = dataset.paths[0]
    return first.with_name(first.name + ".index.npz")


def _index_key(dataset: SynthDataset) -> str:
    """What an index was built from; a stored index with another key is stale."""
    payload = {
        "format": INDEX_FORMAT_VERSION,
        "dataset": dataset.identity["fingerprint"],
        "features": INDEX_FEATURES,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Neighbours:
    """The k nearest examples, nearest first.

    Attributes
    ----------
    rows : np.ndarray [k], int64
        Global example indices in the dataset.
    labels : np.ndarray [k, n_parameters], int64
        Class indices.
    values : np.ndarray [k, n_parameters], float64
    distances : np.ndarray [k], float64
        RMS dB difference of the index features.
    """

    rows: np.ndarray
    labels: np.ndarray
    values: np.ndarray
    distances: np.ndarray


def _check_synth(dataset: SynthDataset, generator: Any) -> None:
    """The dataset must be of the synth the sounds are matched with."""
    ours = (generator.name, generator.sample_rate, generator.n_samples)
    theirs = (dataset.generator_name, dataset.sample_rate, dataset.n_samples)
    if ours != theirs or not dataset.parameter_set.matches(generator.parameter_set):
        raise InverSynthError(
            f"lookup dataset {str(dataset.paths[0])!r} is of the {dataset.generator_name!r} synth "
            f"({dataset.parameter_set.n_parameters} parameters, {dataset.n_samples} samples at "
            f"{dataset.sample_rate} Hz), the sounds are matched with the {generator.name!r} synth "
            f"({generator.parameter_set.n_parameters} parameters, {generator.n_samples} samples "
            f"at {generator.sample_rate} Hz)"
        )


class DatasetLookup:
    """A dataset's examples and their feature index, ready to query.

    Use :meth:`open`. Holds the index features (float16) and every example's
    labels in memory; the dataset file is not kept open.

    Attributes
    ----------
    parameter_set : ParameterSet
    features : np.ndarray [n_examples, n_features], float16
    labels : np.ndarray [n_examples, n_parameters], int16
    path : Path
        The index file.
    built : bool
        Whether :meth:`open` (re)built the index rather than reading it.
    """

    def __init__(
        self,
        *,
        parameter_set: Any,
        sample_rate: int,
        features: np.ndarray,
        labels: np.ndarray,
        path: Path,
        built: bool,
    ) -> None:
        self.parameter_set = parameter_set
        self.sample_rate = int(sample_rate)
        self.features = features
        self.labels = labels
        self.path = path
        self.built = built
        # float32 in memory when it fits: converting float16 blocks costs more than the product.
        self._features32 = (
            features.astype(np.float32) if features.size * 4 <= _MAX_FLOAT32_BYTES else None
        )
        self._norms = np.empty(features.shape[0], dtype=np.float32)  # squared norms
        for a in range(0, features.shape[0], _QUERY_BLOCK):
            block = self._block(a)
            self._norms[a : a + block.shape[0]] = np.einsum("ij,ij->i", block, block)

    @property
    def n_examples(self) -> int:
        return int(self.features.shape[0])

    @classmethod
    def open(
        cls,
        source: str | Path | Sequence[str | Path],
        *,
        generator: Any,
        rebuild: bool = False,
        progress: bool = False,
    ) -> DatasetLookup:
        """Open a dataset's index, building it first if it is missing or stale.

        Parameters
        ----------
        source : path, glob or list of them
            The dataset (one file or its shards).
        generator : SoundGenerator
            The synth the sounds are matched with; the dataset must be of it.
        rebuild : bool
            Build the index even if a valid one is stored.
        progress : bool
            Print the build's progress.

        Raises
        ------
        InverSynthError
            The dataset is unreadable, or of another synth than ``generator``.
        """
        with open_dataset(source) as dataset:
            _check_synth(dataset, generator)
            path = index_path(dataset)
            key = _index_key(dataset)
            stored, unusable = (None, None) if rebuild else _read_index(path, key, dataset)
            if stored is not None:
                features, labels = stored
                built = False
            else:
                if unusable is not None:
                    message = f"warning: lookup index {str(path)!r} {unusable}; rebuilding it"
                    print(message, file=sys.stderr)
                features, labels = _build_index(dataset, progress=progress)
                try:
                    _write_index(path, key=key, features=features, labels=labels)
                except InverSynthError as exc:
                    print(f"warning: {exc}; using the index built in memory", file=sys.stderr)
                built = True
            return cls(
                parameter_set=dataset.parameter_set,
                sample_rate=dataset.sample_rate,
                features=features,
                labels=labels,
                path=path,
                built=built,
            )

    def without(self, rows: np.ndarray) -> DatasetLookup:
        """This lookup without the dataset's ``rows`` (sounds being matched must not be found)."""
        keep = np.setdiff1d(np.arange(self.n_examples), np.asarray(rows, dtype=np.int64))
        if keep.size == 0:
            raise InverSynthError(f"the lookup {str(self.path)!r} has no examples left to look up")
        return DatasetLookup(
            parameter_set=self.parameter_set,
            sample_rate=self.sample_rate,
            features=self.features[keep],
            labels=self.labels[keep],
            path=self.path,
            built=self.built,
        )

    def _block(self, start: int) -> np.ndarray:
        """Index rows ``[start, start + _QUERY_BLOCK)`` as float32."""
        if self._features32 is not None:
            return self._features32[start : start + _QUERY_BLOCK]
        return self.features[start : start + _QUERY_BLOCK].astype(np.float32)

    def query(self, audio: np.ndarray, *, k: int) -> Neighbours:
        """The ``k`` examples nearest to a sound.

        Parameters
        ----------
        audio : np.ndarray [n_samples], float
            At the dataset's sample rate and length.
        k : int > 0
            Neighbours returned (at most the dataset's size).
        """
        if int(k) != k or k <= 0:
            raise InverSynthError(f"k must be a positive integer, got {k!r}")
        x = np.asarray(audio)
        if x.ndim != 1:
            raise InverSynthError(f"query one sound of shape [n_samples], got {x.shape}")
        q = index_features(x[None, :], sample_rate=self.sample_rate)[0]  # [n_features]
        if q.shape[0] != self.features.shape[1]:
            raise InverSynthError(
                f"the sound has {x.shape[0]} samples, not the dataset's length "
                f"(its features differ: {q.shape[0]} vs {self.features.shape[1]})"
            )
        squared = np.empty(self.n_examples, dtype=np.float32)
        for a in range(0, self.n_examples, _QUERY_BLOCK):
            block = self._block(a)
            squared[a : a + block.shape[0]] = self._norms[a : a + block.shape[0]] - 2.0 * (
                block @ q
            )
        squared += np.float32(q @ q)
        k = min(int(k), self.n_examples)
        nearest = np.argpartition(squared, k - 1)[:k] if k < self.n_examples else np.arange(k)
        nearest = nearest[np.lexsort((nearest, squared[nearest]))]  # nearest first, ties by row
        labels = self.labels[nearest].astype(np.int64)
        distances = np.sqrt(np.maximum(squared[nearest].astype(np.float64), 0.0) / q.shape[0])
        return Neighbours(
            rows=nearest.astype(np.int64),
            labels=labels,
            values=self.parameter_set.to_values(labels),
            distances=distances,
        )


def _build_index(dataset: SynthDataset, *, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """Features (float16) and labels (int16) of every example, a chunk at a time."""
    n = dataset.n_examples
    features: np.ndarray | None = None
    labels = np.empty((n, dataset.parameter_set.n_parameters), dtype=np.int16)
    start_s = time.monotonic()
    if progress:  # the first use of a dataset as a lookup takes seconds: say why
        names = ", ".join(p.name for p in dataset.paths)
        print(
            f"building the lookup index of {names}: {n:,} examples, once (kept as "
            f"{index_path(dataset)})",
            flush=True,
        )
    for a in range(0, n, _CHUNK_EXAMPLES):
        b = min(n, a + _CHUNK_EXAMPLES)
        audio, chunk_labels = dataset.read_range(a, b)
        chunk = index_features(audio, sample_rate=dataset.sample_rate)
        if features is None:
            features = np.empty((n, chunk.shape[1]), dtype=np.float16)
        features[a:b] = chunk.astype(np.float16)
        labels[a:b] = chunk_labels
        if progress:
            print(f"\rindexing {b}/{n} examples ({time.monotonic() - start_s:.0f} s)", end="")
    if progress:
        print()
    assert features is not None  # n_examples > 0 in every readable dataset
    return features, labels


def _read_index(
    path: Path, key: str, dataset: SynthDataset
) -> tuple[tuple[np.ndarray, np.ndarray] | None, str | None]:
    """The stored index of ``dataset`` (features, labels), or None and why it cannot be used.

    No file: (None, None). A file of another dataset or other settings, or one
    that is damaged: (None, what is wrong with it).
    """
    if not path.exists():
        return None, None
    try:
        with np.load(path, allow_pickle=False) as data:
            stored_key = data["key"]
            if stored_key.shape != () or str(stored_key) != key:
                return None, "is of another dataset or other index settings"
            features, labels = data["features"], data["labels"]
    except Exception as exc:  # any failure to read a cache means the same: build it again
        return None, f"is damaged ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
    wrong = _index_problem(features, labels, dataset)
    return (None, f"is damaged ({wrong})") if wrong else ((features, labels), None)


def _index_problem(features: np.ndarray, labels: np.ndarray, dataset: SynthDataset) -> str | None:
    """What is wrong with a stored index of ``dataset``, or None."""
    n, ps = dataset.n_examples, dataset.parameter_set
    probe = np.zeros((1, dataset.n_samples), dtype=np.float32)
    n_features = index_features(probe, sample_rate=dataset.sample_rate).shape[1]
    if features.dtype != np.float16 or features.shape != (n, n_features):
        return f"features {features.dtype} {features.shape}, expected float16 {(n, n_features)}"
    if not np.issubdtype(labels.dtype, np.integer) or labels.shape != (n, ps.n_parameters):
        return f"labels {labels.dtype} {labels.shape}, expected int16 {(n, ps.n_parameters)}"
    if labels.size and ((labels < 0).any() or (labels >= ps.n_levels[None, :]).any()):
        return "labels outside their parameters' levels"
    if not np.isfinite(features).all():
        return "features that are not finite"
    return None


def _write_index(path: Path, *, key: str, features: np.ndarray, labels: np.ndarray) -> None:
    """Write the index whole or not at all (a failed write names the folder and its free space)."""
    with atomic_path(path) as tmp:
        np.savez(tmp, key=np.array(key), features=features, labels=labels)
