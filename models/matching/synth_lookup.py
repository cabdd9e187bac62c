"""A run's lookup rebuilt from its synth, for a run whose dataset file is not here.

The lookup of ``lookup`` and ``hybrid`` (:mod:`models.matching.lookup`) is an
index of a dataset's examples. A run carries its dataset's identity, not the
file: the FM model shipped in ``models/pretrained/fm_M1`` names 20,000 FM
examples of seed 0 (1.3 GB) that a clone does not have. A synth that is
deterministic in ``(seed, example index)``, renders in this process and renders
fast (:data:`RENDERABLE_SYNTHS`) gives those examples back exactly:
:func:`open_synth_lookup` renders the run's own training examples (every row of
its dataset that is not a test row), in chunks, keeps only the index features
and labels (no audio is stored), and caches the index in the data folder
(``INVERSYNTH_DATASET_DIRECTORY``, default ``data/``) as
``{dataset}.rendered-index.npz`` (:func:`synth_lookup_path`), keyed to the
dataset's fingerprint, the rows and the index's feature settings, so a stale
one is rebuilt. The first use says so with a progress bar; later ones read it.
The index equals, to float tolerance, the one
:meth:`~models.matching.lookup.DatasetLookup.open` builds from the dataset
file without its test rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from core.errors import InverSynthError
from models.matching.lookup import INDEX_FEATURES, DatasetLookup, index_features
from models.matching.match_result import LookupRecord

__all__ = [
    "RENDERABLE_SYNTHS",
    "SYNTH_LOOKUP_SUFFIX",
    "open_synth_lookup",
    "synth_lookup_path",
    "why_not_renderable",
]

# Synths whose examples are a function of (seed, index) alone, rendered in this process
# at a fraction of a millisecond each: their lookup costs seconds to render. (Plugins
# render in host processes at milliseconds an example; Dexed needs an optional extra.)
RENDERABLE_SYNTHS = ("fm", "sine")
SYNTH_LOOKUP_SUFFIX = ".rendered-index.npz"
_FORMAT_VERSION = 1
_CHUNK_EXAMPLES = 512  # rendered and featurized at a time
CREATED_BY = "InverSynth: a lookup index rendered from the synth (models.matching.synth_lookup)"


def why_not_renderable(run: Any, generator: Any) -> str | None:
    """Why the lookup of ``run`` cannot be rendered from ``generator``; None when it can.

    Parameters
    ----------
    run : Run or RunInfo
        ``generator_name``, ``generator_config``, ``dataset_identity``.
    generator : SoundGenerator
        The run's synth (``run.make_generator()``).
    """
    if run.generator_name not in RENDERABLE_SYNTHS:
        return (
            f"the {run.generator_name!r} synth is not rendered here for a lookup (only "
            f"{', '.join(RENDERABLE_SYNTHS)})"
        )
    identity = run.dataset_identity
    seed, n = identity.get("seed"), identity.get("n_examples")
    if not isinstance(seed, int) or not isinstance(n, int) or n <= 0:
        return "the run does not record its dataset's seed and size"
    same_synth = (
        identity.get("generator") == run.generator_name
        and identity.get("generator_config") == run.generator_config
        and generator.name == run.generator_name
        and generator.config() == run.generator_config
    )
    if not same_synth:
        return "the run's dataset was made with other synth settings than the run's own"
    return None


def synth_lookup_path(run: Any, data_dir: str | Path) -> Path:
    """Where the rendered index of ``run``'s dataset is cached: ``{data_dir}/{name}.rendered-index.npz``.

    ``{name}`` is the dataset's file name without ``.hdf5`` (``fm20000_data``), or
    ``{synth}_seed{seed}_{n}`` for a run that names no file.
    """
    identity = run.dataset_identity
    paths = list(run.dataset_paths)
    name = Path(paths[0]).name.removesuffix(".hdf5") if paths else ""
    if not name or "*" in name:
        name = f"{run.generator_name}_seed{identity.get('seed')}_{identity.get('n_examples')}"
    return Path(data_dir) / f"{name}{SYNTH_LOOKUP_SUFFIX}"


def _rows(run: Any) -> np.ndarray:
    """The rows the run trained and validated on: every row of its dataset but the test rows."""
    n = int(run.dataset_identity["n_examples"])
    return np.setdiff1d(np.arange(n, dtype=np.int64), run.split.indices("test"))


def _key(run: Any, rows: np.ndarray) -> str:
    payload = {
        "format": _FORMAT_VERSION,
        "dataset": run.dataset_identity.get("fingerprint"),
        "features": INDEX_FEATURES,
        "rows": hashlib.sha256(rows.tobytes()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def open_synth_lookup(
    run: Any,
    generator: Any,
    *,
    data_dir: str | Path,
    label: str,
    progress: bool = True,
) -> tuple[DatasetLookup, LookupRecord]:
    """The lookup of ``run``'s training examples, rendered on first use and cached after.

    Parameters
    ----------
    run : Run or RunInfo
        Its synth must pass :func:`why_not_renderable`.
    generator : SoundGenerator
        The run's synth.
    data_dir : path
        Where the index is cached (created if needed).
    label : str
        The run for people (``"the shipped model"``), in the message.
    progress : bool
        Say that it builds, with a progress bar.

    Returns
    -------
    lookup : DatasetLookup
        Its rows are the rendered rows in order (no test row among them).
    record : LookupRecord

    Raises
    ------
    InverSynthError
        The synth cannot render it (:func:`why_not_renderable`).
    """
    reason = why_not_renderable(run, generator)
    if reason is not None:
        raise InverSynthError(f"cannot render the lookup of {label}: {reason}")
    rows = _rows(run)
    path = synth_lookup_path(run, data_dir)
    key = _key(run, rows)
    stored = _read(path, key)
    identity = run.dataset_identity
    if stored is None:
        features, labels = _build(
            generator, seed=int(identity["seed"]), rows=rows, label=label, progress=progress
        )
        _write(path, key=key, features=features, labels=labels, rows=rows, progress=progress)
    else:
        features, labels = stored
    lookup = DatasetLookup(
        parameter_set=run.parameter_set,
        sample_rate=generator.sample_rate,
        features=features,
        labels=labels,
        path=path,
        built=stored is None,
    )
    names = ", ".join(Path(p).name for p in run.dataset_paths) or "its dataset"
    record = LookupRecord(
        dataset=f"rendered from the {run.generator_name} synth: the {rows.size:,} examples of "
        f"seed {identity['seed']} that {label} trained and validated on ({names} without its "
        "test rows)",
        n_examples=int(rows.size),
        index=str(path),
        rendered=True,
    )
    return lookup, record


def _chunks(rows: np.ndarray) -> list[tuple[int, int]]:
    """``rows`` (sorted, unique) as ranges [start, stop) of consecutive rows, each at most a chunk."""
    out: list[tuple[int, int]] = []
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    for run_of_rows in np.split(rows, breaks):
        if run_of_rows.size == 0:
            continue
        first, last = int(run_of_rows[0]), int(run_of_rows[-1]) + 1
        out += [(a, min(a + _CHUNK_EXAMPLES, last)) for a in range(first, last, _CHUNK_EXAMPLES)]
    return out


def _build(
    generator: Any, *, seed: int, rows: np.ndarray, label: str, progress: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Index features (float16) and labels (int16) of ``rows``, rendered a chunk at a time."""
    n = int(rows.size)
    labels = np.empty((n, generator.parameter_set.n_parameters), dtype=np.int16)
    features: np.ndarray | None = None
    generator.render_examples(seed=seed, start=int(rows[0]), n_examples=1)  # compiled, cached
    bar = None
    done = 0
    started = time.monotonic()
    try:
        for a, b in _chunks(rows):
            rendered = generator.render_examples(seed=seed, start=a, n_examples=b - a)
            chunk = index_features(rendered.audio, sample_rate=generator.sample_rate)
            if features is None:
                features = np.empty((n, chunk.shape[1]), dtype=np.float16)
            features[done : done + b - a] = chunk.astype(np.float16)
            labels[done : done + b - a] = rendered.indices
            done += b - a
            if progress and bar is None:  # the first chunk tells how long the rest takes
                estimate_s = (time.monotonic() - started) * n / done
                print(
                    f"building the lookup of {label}: {n:,} {generator.name} examples of seed "
                    f"{seed}, once, ~{max(1, round(estimate_s))} s",
                    flush=True,
                )
                bar = tqdm(total=n, initial=done, unit="example", desc="lookup", file=sys.stderr)
            elif bar is not None:
                bar.update(b - a)
    finally:
        if bar is not None:
            bar.close()
    assert features is not None  # rows is never empty: a split keeps training rows
    return features, labels


def _read(path: Path, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """A cached index with this key, or None (missing, unreadable or stale)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key:
                return None
            return data["features"], data["labels"]
    except (OSError, KeyError, ValueError):
        return None


def _write(
    path: Path,
    *,
    key: str,
    features: np.ndarray,
    labels: np.ndarray,
    rows: np.ndarray,
    progress: bool,
) -> None:
    """Cache the index: a temporary file renamed into place. A folder that refuses is no error."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            tmp, key=np.array(key), created_by=np.array(CREATED_BY), features=features,
            labels=labels, rows=rows,
        )  # fmt: skip
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if progress:  # the match goes on with the index in memory; the next run builds it again
            print(f"note: cannot keep the lookup index as {str(path)!r}: {exc.strerror or exc}")
        return
    except BaseException:  # Ctrl-C, SIGTERM: no half-written file stays behind
        tmp.unlink(missing_ok=True)
        raise
    if progress:
        print(
            f"lookup index kept as {path} ({path.stat().st_size / 1e6:.0f} MB); later runs read it"
        )
