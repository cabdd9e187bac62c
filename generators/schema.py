"""The HDF5 dataset format that the writer (:mod:`generators.writer`) and the reader
(:mod:`generators.dataset`) share: names, version, file names, the silence threshold.

Schema (``FORMAT_VERSION`` 1), one file per dataset or per shard:

=================  ==========================  ==========================================
name               type, shape                 meaning
=================  ==========================  ==========================================
``audio``          float32 [N, n_samples]      the rendered examples, in [-1, 1]
``labels``         int16 [N, n_parameters]     class index of every parameter
``values``         float32 [N, n_parameters]   the parameter values the audio was made with
``done_chunks``    bool [n_chunks]             progress of an unfinished run (for resume)
=================  ==========================  ==========================================

Attributes: ``format_version``, ``complete`` (False until the writer finished),
``sample_rate`` (Hz), ``n_samples``, ``generator`` (registry name),
``generator_config`` and ``parameter_set`` (JSON), ``seed``, ``n_examples``
(rows of this file), ``example_offset`` (global index of row 0),
``total_examples`` (all shards together), ``shard`` ("K/N"), ``chunk_size``,
``silent_examples`` (examples whose peak is below ``SILENCE_PEAK`` or not
finite), ``created_by``.

Row ``i`` of a file is global example ``example_offset + i``; its parameters
depend only on ``(seed, example_offset + i)``, so shards made on different
machines concatenate to exactly the dataset one job would have made.

File names: ``{directory}/{name}_data.hdf5``, or
``{name}_data.shard-K-of-N.hdf5`` for a shard; an unfinished run writes
``<file>.partial`` and renames it once complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

__all__ = [
    "EXAMPLE_ARRAYS",
    "FORMAT_VERSION",
    "PROGRESS_ARRAY",
    "SHARED_ATTRS",
    "SILENCE_PEAK",
    "attr_value",
    "dataset_path",
    "partial_path",
]

FORMAT_VERSION = 1
SILENCE_PEAK = 1e-4  # below this peak an example counts as silent

EXAMPLE_ARRAYS = ("audio", "labels", "values")  # one row per example
PROGRESS_ARRAY = "done_chunks"

# Attributes that must agree between the shards of one dataset.
SHARED_ATTRS = (
    "format_version",
    "sample_rate",
    "n_samples",
    "generator",
    "generator_config",
    "parameter_set",
    "seed",
    "total_examples",
)


def attr_value(attrs: h5py.AttributeManager, name: str) -> Any:
    """An attribute as a plain Python value (``str`` for bytes, ``int``/``float`` for NumPy scalars)."""
    value = attrs[name]
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def dataset_path(directory: Path, name: str, shard: tuple[int, int] | None = None) -> Path:
    """``{directory}/{name}_data.hdf5``, or ``..._data.shard-K-of-N.hdf5`` for a shard."""
    if shard is None or shard == (1, 1):
        return Path(directory) / f"{name}_data.hdf5"
    k, n = shard
    width = len(str(n))
    return Path(directory) / f"{name}_data.shard-{k:0{width}d}-of-{n}.hdf5"


def partial_path(path: Path) -> Path:
    """Where an unfinished run writes the file that becomes ``path``."""
    return Path(path).with_name(Path(path).name + ".partial")
