"""The HDF5 dataset format that the writer (:mod:`generators.writer`) and the reader
(:mod:`generators.dataset`) share: names, version, file names, the silence threshold.

Schema (``FORMAT_VERSION`` 2), one file per dataset or per shard:

=================  ==========================  ==========================================
name               type, shape                 meaning
=================  ==========================  ==========================================
``audio``          float32 [N, n_samples]      the rendered examples, in [-1, 1]
``labels``         int16 [N, n_parameters]     class index of every parameter
``values``         float32 [N, n_parameters]   the parameter values the audio was made with
``failed``         bool [N]                    examples the synth failed to render (a
                                               plugin that crashed or hung on every
                                               retry): their audio is silence and
                                               readers leave them out
``done_chunks``    bool [n_chunks]             progress of an unfinished run (for resume)
=================  ==========================  ==========================================

Attributes: ``format_version``, ``complete`` (False until the writer finished),
``sample_rate`` (Hz), ``n_samples``, ``generator`` (registry name),
``generator_config`` and ``parameter_set`` (JSON), ``seed``, ``n_examples``
(rows of this file), ``example_offset`` (global index of row 0),
``total_examples`` (all shards together), ``shard`` ("K/N"), ``chunk_size``,
``silent_examples`` (examples whose peak is below ``SILENCE_PEAK`` or not
finite), ``failed_examples`` (rows marked in ``failed``), ``created_by``
(the toolkit and its format version; never a time, so that one seed gives
byte-identical files), and, optional, ``drawn_from_seed`` (False for a file whose
examples are not draws of ``(seed, index)``, such as a bank of real patches:
its ``seed`` then says nothing of which examples it holds).

Version 1 files (no ``failed`` array, no ``failed_examples``) are read as
files in which no example failed.

Row ``i`` of a file is global example ``example_offset + i``; its parameters
depend only on ``(seed, example_offset + i)``, so shards made on different
machines concatenate to exactly the dataset one job would have made.

File names: ``{directory}/{name}_data.hdf5``, or
``{name}_data.shard-K-of-N.hdf5`` for a shard; an unfinished run writes
``<file>.partial`` and renames it once complete, and holds ``<file>.lock``
while it runs. A dataset name is plain: no folders, not starting with ".".
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.checks import check_plain_name

if TYPE_CHECKING:  # only for annotations: a process that opens no file need not import HDF5
    import h5py

__all__ = [
    "CREATED_BY",
    "EXAMPLE_ARRAYS",
    "FAILED_ARRAY",
    "FORMAT_VERSION",
    "LABEL_DTYPE",
    "PROGRESS_ARRAY",
    "READABLE_VERSIONS",
    "REQUIRED_ATTRS",
    "SHARED_ATTRS",
    "SILENCE_PEAK",
    "attr_value",
    "check_dataset_name",
    "dataset_path",
    "lock_path",
    "partial_path",
]

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 2 added ``failed`` and ``failed_examples``
CREATED_BY = f"inversynth (format version {FORMAT_VERSION})"
SILENCE_PEAK = 1e-4  # below this peak an example counts as silent
LABEL_DTYPE = np.int16  # so a parameter has at most 32768 levels (ParameterSet refuses more)

EXAMPLE_ARRAYS = ("audio", "labels", "values")  # one row per example
FAILED_ARRAY = "failed"  # bool, one per example (version 2)
PROGRESS_ARRAY = "done_chunks"

# Attributes every complete file has (version 1 and 2).
REQUIRED_ATTRS = (
    "format_version",
    "complete",
    "sample_rate",
    "n_samples",
    "generator",
    "generator_config",
    "parameter_set",
    "seed",
    "n_examples",
    "example_offset",
    "total_examples",
    "shard",
)

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


def check_dataset_name(name: str) -> str:
    """``name`` if it is a plain dataset name: no folder separators, not starting with ".".

    A name like ``../../escape`` would put the file outside the dataset folder.
    """
    return check_plain_name(name, what="a dataset name", folder_option="--dataset_directory")


def dataset_path(directory: Path, name: str, shard: tuple[int, int] | None = None) -> Path:
    """``{directory}/{name}_data.hdf5``, or ``..._data.shard-K-of-N.hdf5`` for a shard."""
    check_dataset_name(name)
    if shard is None or shard == (1, 1):
        return Path(directory) / f"{name}_data.hdf5"
    k, n = shard
    width = len(str(n))
    return Path(directory) / f"{name}_data.shard-{k:0{width}d}-of-{n}.hdf5"


def partial_path(path: Path) -> Path:
    """Where an unfinished run writes the file that becomes ``path``."""
    return Path(path).with_name(Path(path).name + ".partial")


def lock_path(path: Path) -> Path:
    """The lock file a run holds while it writes the file that becomes ``path``."""
    return Path(path).with_name(Path(path).name + ".lock")
