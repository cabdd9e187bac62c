"""The dataset reader: one dataset file, or all its shards, seen as one dataset.

The format is :mod:`generators.schema`; :mod:`generators.writer` writes it.
``python -m generators.dataset FILE...`` describes a dataset.
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import h5py
import numpy as np

from core.commandline import make_parser, run_cli
from core.errors import InverSynthError
from generators.parameters import ParameterSet
from generators.schema import (
    EXAMPLE_ARRAYS,
    FAILED_ARRAY,
    READABLE_VERSIONS,
    REQUIRED_ATTRS,
    SHARED_ATTRS,
    attr_value,
    dataset_path,
    partial_path,
)
from generators.sound_generator import SoundGenerator, load_generator

__all__ = ["SynthDataset", "open_dataset", "resolve_paths"]

T = TypeVar("T")


def _parse_json_attr(part: Any, key: str, parse: Callable[[str], T]) -> T:
    """A JSON attribute, parsed; a malformed one names the file and the attribute."""
    try:
        return parse(part.attrs[key])
    except (TypeError, ValueError) as exc:  # JSONDecodeError and InverSynthError are ValueErrors
        raise InverSynthError(
            f"{str(part.path)!r}: attribute {key!r} is malformed: {exc}"
        ) from None


def resolve_paths(source: str | Path | Sequence[str | Path]) -> list[Path]:
    """Files named by a path, a glob pattern, or a list of either.

    A glob leaves out the ``.partial`` and ``.lock`` files of runs in progress.
    """
    items = [source] if isinstance(source, (str, Path)) else list(source)
    paths: list[Path] = []
    for item in items:
        text = str(item)
        if any(ch in text for ch in "*?["):
            matches = [m for m in sorted(glob.glob(text)) if not m.endswith(_WORK_SUFFIXES)]
            if not matches:
                raise InverSynthError(f"no dataset file matches {text!r}")
            paths.extend(Path(m) for m in matches)
        else:
            paths.append(Path(text))
    if not paths:
        raise InverSynthError("no dataset file given")
    return paths


_WORK_SUFFIXES = (".partial", ".lock")
_SHARD_NAME = re.compile(r"^(?P<name>.+)_data\.shard-\d+-of-\d+\.hdf5$")
_LABEL_CHECK_ROWS = 1 << 16  # labels are checked in blocks of this many rows


class _Part:
    """One file of a dataset, opened read-only and checked against the schema."""

    def __init__(self, path: Path) -> None:
        if path.is_dir():
            raise InverSynthError(f"{str(path)!r} is a folder, not a dataset file")
        if not path.exists():
            hint = ""
            if partial_path(path).exists():
                hint = f" (an unfinished run left {partial_path(path)}: resume it with --resume)"
            raise InverSynthError(f"dataset file {str(path)!r} does not exist{hint}")
        try:
            self.file = h5py.File(path, "r")
        except OSError as exc:
            reason = " ".join(str(exc).split())[:160]
            raise InverSynthError(f"{str(path)!r} is not a readable HDF5 file: {reason}") from None
        self.path = path
        try:
            self._check()
        except BaseException:
            self.file.close()
            raise
        f = self.file
        self.attrs = {k: attr_value(f.attrs, k) for k in f.attrs}
        self.offset = int(self.attrs["example_offset"])
        self.n_examples = int(self.attrs["n_examples"])
        self.shard = _parse_shard_attr(self.attrs["shard"], path)
        self.audio: h5py.Dataset = f["audio"]
        self.labels: h5py.Dataset = f["labels"]
        self.values: h5py.Dataset = f["values"]
        self.failed = (
            np.asarray(f[FAILED_ARRAY][...], dtype=bool)
            if FAILED_ARRAY in f
            else np.zeros(self.n_examples, dtype=bool)
        )  # [n_examples]

    def _check(self) -> None:
        f, where = self.file, repr(str(self.path))
        missing = [k for k in EXAMPLE_ARRAYS if k not in f]
        if missing or "format_version" not in f.attrs:
            raise InverSynthError(
                f"{where} is not an InverSynth dataset (missing {missing or 'format_version'})"
            )
        version = attr_value(f.attrs, "format_version")
        if version not in READABLE_VERSIONS:
            raise InverSynthError(
                f"{where} has format version {version}, this toolkit reads versions "
                f"{', '.join(str(v) for v in READABLE_VERSIONS)}"
            )
        absent = [k for k in REQUIRED_ATTRS if k not in f.attrs]
        if absent:
            raise InverSynthError(
                f"{where} lacks the attribute {absent[0]!r} of every dataset file: it is "
                "damaged, or was not written by this toolkit"
            )
        if not bool(attr_value(f.attrs, "complete")):
            raise InverSynthError(
                f"dataset {where} is incomplete: its run never finished; "
                "finish it with the same command and --resume"
            )
        if version >= 2 and FAILED_ARRAY not in f:
            raise InverSynthError(f"{where} lacks the {FAILED_ARRAY!r} array of format version 2")
        n, n_samples = int(attr_value(f.attrs, "n_examples")), int(attr_value(f.attrs, "n_samples"))
        expected = {"audio": (n, n_samples), FAILED_ARRAY: (n,)}
        for name, shape in expected.items():
            if name in f and f[name].shape != shape:
                raise InverSynthError(
                    f"{where}: {name!r} has shape {f[name].shape}, the file's attributes say "
                    f"{shape} (n_examples={n}, n_samples={n_samples}): the file is damaged"
                )
        for name in ("labels", "values"):
            if f[name].ndim != 2 or f[name].shape[0] != n:
                raise InverSynthError(
                    f"{where}: {name!r} has shape {f[name].shape}, expected {n} rows "
                    f"(n_examples={n}): the file is damaged"
                )
        if not np.issubdtype(f["labels"].dtype, np.integer):
            raise InverSynthError(f"{where}: 'labels' are {f['labels'].dtype}, not integers")

    def check_rows(self, parameter_set: ParameterSet) -> None:
        """Every label row has one class per parameter, each within its parameter's levels."""
        where = repr(str(self.path))
        n_par = parameter_set.n_parameters
        for name in ("labels", "values"):
            got = self.file[name].shape[1]
            if got != n_par:
                raise InverSynthError(
                    f"{where}: {name!r} has {got} columns, its parameter set has {n_par} "
                    "parameters: the file is damaged"
                )
        n_levels = parameter_set.n_levels[None, :]  # [1, n_parameters]
        for a in range(0, self.n_examples, _LABEL_CHECK_ROWS):
            block = self.labels[a : a + _LABEL_CHECK_ROWS]  # [rows, n_parameters]
            bad = (block < 0) | (block >= n_levels)
            if bad.any():
                row, col = np.argwhere(bad)[0]
                p = parameter_set.parameters[col]
                raise InverSynthError(
                    f"{where}: example {self.offset + a + row} has class {int(block[row, col])} "
                    f"for parameter {p.name!r}, which has {p.n_levels} levels "
                    f"(0..{p.n_levels - 1}): the file is damaged"
                )


def _parse_shard_attr(text: Any, path: Path) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise InverSynthError(f"{str(path)!r}: its 'shard' attribute {text!r} is not K/N") from None
    if not 1 <= k <= n:
        raise InverSynthError(f"{str(path)!r}: its 'shard' attribute {text!r} is not K/N")
    return k, n


def _missing_shards_message(parts: list[_Part], n_shards: int, missing: list[int]) -> str:
    """Which shards are missing, by file name where the files follow the naming scheme."""
    first = parts[0].path
    numbers = ", ".join(str(k) for k in missing[:8]) + (" ..." if len(missing) > 8 else "")
    verb = "is" if len(missing) == 1 else "are"
    message = f"incomplete dataset: shard{'s' if len(missing) > 1 else ''} {numbers} of {n_shards} {verb} missing"
    match = _SHARD_NAME.match(first.name)
    if match:
        files = [dataset_path(first.parent, match["name"], (k, n_shards)) for k in missing]
        message += " (" + ", ".join(repr(str(p)) for p in files[:3])
        message += ", ...)" if len(files) > 3 else ")"
        unfinished = [p for p in files if partial_path(p).exists()]
        if unfinished:
            message += f"; {partial_path(unfinished[0])} is unfinished: finish it with --resume"
        pattern = str(first.parent / f"{match['name']}_data.shard-*")
        return message + f"; give every shard, e.g. the quoted glob {pattern!r}"
    return message + "; give every shard"


_NOT_IDENTITY = ("description", "ordered")  # how parameters are shown and trained, not the data


def _without_descriptions(parameter_set: dict[str, Any]) -> dict[str, Any]:
    """A parameter set's JSON without what does not make the data (descriptions, ``ordered``)."""
    parameters = [
        {k: v for k, v in p.items() if k not in _NOT_IDENTITY} for p in parameter_set["parameters"]
    ]
    return {**parameter_set, "parameters": parameters}


def _same_attr(key: str, a: Any, b: Any) -> bool:
    """Shards agree on an attribute; parameter levels made on two machines within LEVEL_RTOL."""
    if key == "parameter_set" and a != b and a is not None and b is not None:
        try:
            return ParameterSet.from_json(str(a)).matches(ParameterSet.from_json(str(b)))
        except InverSynthError:
            return False
    return bool(a == b)


class SynthDataset:
    """Read-only view of a dataset made of one file or of all its shards.

    Parameters
    ----------
    source : path, glob pattern, or sequence of them
        One complete dataset file, or every shard of one dataset (in any order).

    Attributes
    ----------
    failed_indices : np.ndarray [n_failed], int64
        Global indices of the examples the synth failed to render (their audio
        is silence); training and evaluation must leave them out.

    Raises
    ------
    InverSynthError
        For a missing, unreadable, unfinished, damaged or foreign file (array
        shapes that disagree with the attributes, a label outside its
        parameter's levels), shards of different datasets, or an incomplete
        set of shards (the message names the missing ones).
    """

    def __init__(self, source: str | Path | Sequence[str | Path]) -> None:
        parts: list[_Part] = []
        try:
            for p in resolve_paths(source):
                parts.append(_Part(p))
            self._join(parts)
            parameter_set = _parse_json_attr(parts[0], "parameter_set", ParameterSet.from_json)
            generator_config = _parse_json_attr(parts[0], "generator_config", json.loads)
            for part in parts:
                part.check_rows(parameter_set)
        except BaseException:
            self._close(parts)
            raise
        first = parts[0]
        self._parts = parts
        self._starts = np.array([p.offset for p in parts], dtype=np.int64)
        self.attrs: dict[str, Any] = dict(first.attrs)
        self.paths = [p.path for p in parts]
        self.n_examples = sum(p.n_examples for p in parts)
        self.sample_rate = int(self.attrs["sample_rate"])
        self.n_samples = int(self.attrs["n_samples"])
        self.generator_name = str(self.attrs["generator"])
        self.generator_config: dict[str, Any] = generator_config
        self.parameter_set = parameter_set
        self.seed = int(self.attrs["seed"])
        # False for real patches (a bank): no run trained on these rows by their seed.
        self.drawn_from_seed = bool(self.attrs.get("drawn_from_seed", True))
        self.failed_indices = np.concatenate(
            [np.flatnonzero(p.failed).astype(np.int64) + p.offset for p in parts]
        )

    @staticmethod
    def _join(parts: list[_Part]) -> None:
        """Check that the parts are all the shards of one dataset, sorted by offset."""
        parts.sort(key=lambda part: part.offset)
        first = parts[0]
        for part in parts[1:]:
            for key in SHARED_ATTRS:
                if not _same_attr(key, part.attrs.get(key), first.attrs.get(key)):
                    raise InverSynthError(
                        f"{str(part.path)!r} and {str(first.path)!r} are not shards of one dataset "
                        f"(their {key!r} differ)"
                    )
            if part.shard[1] != first.shard[1]:
                raise InverSynthError(
                    f"{str(part.path)!r} is shard {part.shard[0]}/{part.shard[1]}, "
                    f"{str(first.path)!r} is shard {first.shard[0]}/{first.shard[1]}: not one split"
                )
        n_shards = first.shard[1]
        given = [part.shard[0] for part in parts]
        twice = sorted({k for k in given if given.count(k) > 1})
        if twice:
            raise InverSynthError(f"shard {twice[0]}/{n_shards} is given twice")
        missing = sorted(set(range(1, n_shards + 1)) - set(given))
        if missing:
            raise InverSynthError(_missing_shards_message(parts, n_shards, missing))
        expected = 0
        for part in parts:
            if part.offset != expected:
                raise InverSynthError(
                    f"shards do not join up: {str(part.path)!r} starts at example {part.offset}, "
                    f"expected {expected}"
                )
            expected += part.n_examples
        total = int(first.attrs["total_examples"])
        if expected != total:
            raise InverSynthError(
                f"the files hold {expected} of the dataset's {total} examples "
                f"(attribute total_examples of {str(first.path)!r}): the file is damaged"
            )

    @property
    def n_failed(self) -> int:
        """Examples the synth failed to render (see :attr:`failed_indices`)."""
        return int(self.failed_indices.size)

    def usable_mask(self, indices: np.ndarray) -> np.ndarray:
        """For global example indices, True where the example rendered (is not failed): bool [n]."""
        idx = self._check_indices(indices)
        return ~np.isin(idx, self.failed_indices)

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
            # Descriptions are for people: a dataset made before parameters carried them is
            # the same dataset.
            "parameter_set": _without_descriptions(json.loads(self.attrs["parameter_set"])),
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


_WIDTH = 100  # of the description's lines
_SHOWN_ELSEWHERE = {
    "generator_config": "(synth options, above)",
    "parameter_set": "(parameters, above)",
}


def _field(label: str, value: object) -> list[str]:
    """``label : value`` wrapped to ``_WIDTH`` columns, continuation lines indented."""
    head = f"{label:<18}: "
    return textwrap.wrap(
        str(value),
        width=_WIDTH,
        initial_indent=head,
        subsequent_indent=" " * len(head),
        break_on_hyphens=False,
    ) or [head.rstrip()]


def _synth_options(config: dict[str, Any]) -> list[str]:
    """The synth's config, one option a line; a plugin config summarised (its parameters are listed below)."""
    lines: list[str] = []
    for key in sorted(config):
        value = config[key]
        if key == "plugin_config" and isinstance(value, dict):
            varied = value.get("parameters") or []
            fixed = value.get("fixed_parameters") or []
            summary = f"{len(varied)} varied parameters (listed below), {len(fixed)} fixed"
            for section in ("note", "render"):
                if value.get(section):
                    summary += f"; {section} {json.dumps(value[section], sort_keys=True)}"
            value = summary
        elif not isinstance(value, str):
            value = json.dumps(value, sort_keys=True)
        lines += _field(f"  {key}", value)
    return lines


def _info(source: list[str]) -> str:
    with open_dataset(source) as ds:
        silent = sum(int(p.attrs.get("silent_examples", 0)) for p in ds._parts)
        lines = [
            *_field("files", ", ".join(str(p) for p in ds.paths)),
            f"{'examples':<18}: {ds.n_examples} ({silent} silent, {ds.n_failed} failed to render)",
            f"{'generator':<18}: {ds.generator_name}",
            *_synth_options(ds.generator_config),
            f"{'audio':<18}: {ds.n_samples} samples at {ds.sample_rate} Hz",
            f"{'seed':<18}: {ds.seed}",
            f"{'fingerprint':<18}: {ds.identity['fingerprint']}",
            f"{'parameters':<18}: {ds.parameter_set.n_parameters} "
            f"({ds.parameter_set.n_outputs} one-hot outputs)",
        ]
        for p in ds.parameter_set.parameters:
            unit = f" {p.unit}" if p.unit else ""
            lines.append(
                f"  {p.name:<14} {p.n_levels:>3} levels, {p.levels[0]:.6g} .. {p.levels[-1]:.6g}{unit}"
                f" ({p.spacing})"
            )
        for part in ds._parts:
            lines.append(f"attributes of {part.path}:")
            for key in sorted(part.attrs):
                value = _SHOWN_ELSEWHERE.get(key, part.attrs[key])
                lines += _field(f"  {key}", value)
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
