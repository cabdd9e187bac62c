"""The dataset reader: one dataset file, or all its shards, seen as one dataset.

The format is :mod:`generators.schema`; :mod:`generators.writer` writes it.
``python -m generators.dataset FILE...`` describes a dataset.
"""

from __future__ import annotations

import glob
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from generators.cli import make_parser, run_cli
from generators.errors import InverSynthError
from generators.parameters import ParameterSet
from generators.schema import (
    EXAMPLE_ARRAYS,
    FORMAT_VERSION,
    SHARED_ATTRS,
    attr_value,
    partial_path,
)
from generators.synth import SoundGenerator, load_generator

__all__ = ["SynthDataset", "open_dataset", "resolve_paths"]


def resolve_paths(source: str | Path | Sequence[str | Path]) -> list[Path]:
    """Files named by a path, a glob pattern, or a list of either."""
    items = [source] if isinstance(source, (str, Path)) else list(source)
    paths: list[Path] = []
    for item in items:
        text = str(item)
        if any(ch in text for ch in "*?["):
            matches = sorted(glob.glob(text))
            if not matches:
                raise InverSynthError(f"no dataset file matches {text!r}")
            paths.extend(Path(m) for m in matches)
        else:
            paths.append(Path(text))
    if not paths:
        raise InverSynthError("no dataset file given")
    return paths


class _Part:
    """One file of a dataset, opened read-only."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            hint = ""
            if partial_path(path).exists():
                hint = f" (an unfinished run left {partial_path(path)}: resume it with --resume)"
            raise InverSynthError(f"dataset file {str(path)!r} does not exist{hint}")
        try:
            self.file = h5py.File(path, "r")
        except OSError as exc:
            raise InverSynthError(f"{str(path)!r} is not a readable HDF5 file: {exc}") from None
        self.path = path
        f = self.file
        missing = [k for k in EXAMPLE_ARRAYS if k not in f]
        if missing or "format_version" not in f.attrs:
            self.file.close()
            raise InverSynthError(
                f"{str(path)!r} is not an InverSynth dataset (missing {missing or 'format_version'})"
            )
        if attr_value(f.attrs, "format_version") != FORMAT_VERSION:
            self.file.close()
            raise InverSynthError(
                f"{str(path)!r} has format version {attr_value(f.attrs, 'format_version')}, "
                f"this toolkit reads version {FORMAT_VERSION}"
            )
        if not bool(attr_value(f.attrs, "complete")):
            self.file.close()
            raise InverSynthError(
                f"dataset {str(path)!r} is incomplete: its run never finished; "
                "finish it with the same command and --resume"
            )
        self.attrs = {k: attr_value(f.attrs, k) for k in f.attrs}
        self.offset = int(self.attrs["example_offset"])
        self.n_examples = int(self.attrs["n_examples"])
        self.audio: h5py.Dataset = f["audio"]
        self.labels: h5py.Dataset = f["labels"]
        self.values: h5py.Dataset = f["values"]


class SynthDataset:
    """Read-only view of a dataset made of one file or of all its shards.

    Parameters
    ----------
    source : path, glob pattern, or sequence of them
        One complete dataset file, or every shard of one dataset (in any order).

    Raises
    ------
    InverSynthError
        For a missing, unreadable, unfinished or foreign file, shards of
        different datasets, or shards that leave a gap or overlap.
    """

    def __init__(self, source: str | Path | Sequence[str | Path]) -> None:
        parts = [_Part(p) for p in resolve_paths(source)]
        parts.sort(key=lambda part: part.offset)
        first = parts[0]
        for part in parts[1:]:
            for key in SHARED_ATTRS:
                if part.attrs.get(key) != first.attrs.get(key):
                    self._close(parts)
                    raise InverSynthError(
                        f"{str(part.path)!r} and {str(first.path)!r} are not shards of one dataset "
                        f"(their {key!r} differ)"
                    )
        expected = 0
        for part in parts:
            if part.offset != expected:
                self._close(parts)
                raise InverSynthError(
                    f"shards do not join up: {str(part.path)!r} starts at example {part.offset}, "
                    f"expected {expected}"
                )
            expected += part.n_examples
        if len(parts) > 1 and expected != int(first.attrs["total_examples"]):
            self._close(parts)
            raise InverSynthError(
                f"shards hold {expected} of the dataset's {first.attrs['total_examples']} examples: "
                "some shard is missing"
            )
        self._parts = parts
        self._starts = np.array([p.offset for p in parts], dtype=np.int64)
        self.attrs: dict[str, Any] = dict(first.attrs)
        self.paths = [p.path for p in parts]
        self.n_examples = expected
        self.sample_rate = int(self.attrs["sample_rate"])
        self.n_samples = int(self.attrs["n_samples"])
        self.generator_name = str(self.attrs["generator"])
        self.generator_config: dict[str, Any] = json.loads(self.attrs["generator_config"])
        self.parameter_set = ParameterSet.from_json(self.attrs["parameter_set"])
        self.seed = int(self.attrs["seed"])

    @staticmethod
    def _close(parts: list[_Part]) -> None:
        for part in parts:
            part.file.close()

    @property
    def identity(self) -> dict[str, Any]:
        """What makes two datasets interchangeable for a model, plus a fingerprint of it."""
        ident: dict[str, Any] = {
            "generator": self.generator_name,
            "generator_config": self.generator_config,
            "parameter_set": json.loads(self.attrs["parameter_set"]),
            "sample_rate": self.sample_rate,
            "n_samples": self.n_samples,
            "seed": self.seed,
            "n_examples": self.n_examples,
        }
        digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
        ident["fingerprint"] = digest
        return ident

    def __len__(self) -> int:
        return self.n_examples

    def _check_indices(self, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_examples):
            raise InverSynthError(
                f"example indices must be in [0, {self.n_examples}), got {idx.min()}..{idx.max()}"
            )
        return idx

    def read(self, indices: np.ndarray, *, with_values: bool = False) -> tuple[np.ndarray, ...]:
        """Examples by global index, in the order given.

        Returns
        -------
        audio : np.ndarray [batch, n_samples], float32
        labels : np.ndarray [batch, n_parameters], int64
        values : np.ndarray [batch, n_parameters], float32 (only with ``with_values``)
        """
        idx = self._check_indices(indices)
        n_par = self.parameter_set.n_parameters
        audio = np.empty((idx.size, self.n_samples), dtype=np.float32)
        labels = np.empty((idx.size, n_par), dtype=np.int64)
        values = np.empty((idx.size, n_par), dtype=np.float32) if with_values else None
        # Sort, read each file in runs of consecutive rows, scatter back in the order asked.
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        part_of = np.searchsorted(self._starts, sorted_idx, side="right") - 1
        for p in np.unique(part_of):
            part = self._parts[int(p)]
            sel = part_of == p
            local = sorted_idx[sel] - part.offset
            uniq, inverse = np.unique(local, return_inverse=True)
            block_audio = np.empty((uniq.size, self.n_samples), dtype=np.float32)
            block_labels = np.empty((uniq.size, n_par), dtype=np.int64)
            block_values = (
                np.empty((uniq.size, n_par), dtype=np.float32) if values is not None else None
            )
            # One plain slice per run of consecutive rows: h5py's fancy indexing
            # (part.audio[uniq]) costs about 1 ms per row, a slice a few microseconds
            # plus the copy, which keeps a training input pipeline off the CPU.
            breaks = np.flatnonzero(np.diff(uniq) != 1) + 1
            for a, b in zip([0, *breaks.tolist()], [*breaks.tolist(), uniq.size], strict=True):
                rows = slice(int(uniq[a]), int(uniq[b - 1]) + 1)
                block_audio[a:b] = part.audio[rows]
                block_labels[a:b] = part.labels[rows]
                if block_values is not None:
                    block_values[a:b] = part.values[rows]
            dest = order[sel]
            audio[dest] = block_audio[inverse]
            labels[dest] = block_labels[inverse]
            if values is not None and block_values is not None:
                values[dest] = block_values[inverse]
        if values is not None:
            return audio, labels, values
        return audio, labels

    def read_range(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Examples ``[start, stop)``: (audio [b, n_samples] float32, labels [b, n_parameters] int64)."""
        audio, labels = self.read(np.arange(start, stop))
        return audio, labels

    def make_generator(self) -> SoundGenerator:
        """The synth that made this dataset."""
        return load_generator(self.generator_name, self.generator_config)

    def close(self) -> None:
        self._close(self._parts)

    def __enter__(self) -> SynthDataset:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"SynthDataset({self.generator_name!r}, n_examples={self.n_examples}, "
            f"n_parameters={self.parameter_set.n_parameters}, files={len(self.paths)})"
        )


def open_dataset(source: str | Path | Sequence[str | Path]) -> SynthDataset:
    """Open a dataset file, or all shards of one (a list or a glob such as ``data/fm_data.shard-*``)."""
    return SynthDataset(source)


def _info(source: list[str]) -> str:
    with open_dataset(source) as ds:
        lines = [
            f"files          : {', '.join(str(p) for p in ds.paths)}",
            f"examples       : {ds.n_examples}",
            f"generator      : {ds.generator_name} {json.dumps(ds.generator_config, sort_keys=True)}",
            f"audio          : {ds.n_samples} samples at {ds.sample_rate} Hz",
            f"seed           : {ds.seed}",
            f"silent examples: {ds.attrs.get('silent_examples', 0)}",
            f"fingerprint    : {ds.identity['fingerprint']}",
            f"parameters     : {ds.parameter_set.n_parameters} "
            f"({ds.parameter_set.n_outputs} one-hot outputs)",
        ]
        for p in ds.parameter_set.parameters:
            unit = f" {p.unit}" if p.unit else ""
            lines.append(
                f"  {p.name:<14} {p.n_levels:>3} levels, {p.levels[0]:.6g} .. {p.levels[-1]:.6g}{unit}"
                f" ({p.spacing})"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser(
        prog="python -m generators.dataset",
        description="Describe a dataset (one file, or all shards of one: list them or give a glob).",
    )
    parser.add_argument("files", nargs="+", help="dataset file(s) or a quoted glob pattern")
    args = parser.parse_args(argv)
    print(_info(args.files))
    return 0


if __name__ == "__main__":
    run_cli(main)
