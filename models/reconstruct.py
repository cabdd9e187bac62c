"""Reconstruction quality of a run: resynthesize its test-split predictions and measure them.

``python -m models.reconstruct runs/C6_fm`` reads the predictions that
``python -m models.evaluate`` saved (``evaluation/predictions.npz``), plays the
run's synth with every predicted parameter set, in worker processes, and
compares each resynthesis with the test sound it was predicted from
(:mod:`models.common.reconstruction`: rho_STFT, rho_FT, F_delta, spectral
convergence, log-spectral distance, MFCC L1). It writes, next to
``metrics.json``:

* ``reconstruction.json``: mean, median, std, min, max of every metric (the
  paper's Table 4), with the same figures for random patches (``chance``:
  the synth played with parameters drawn like the dataset's, against the
  same test sounds), so that a value can be read against chance;
* ``reconstruction.csv``: one row per test example;

and prints the summary table.

The synth is rebuilt from the run's record (``run.json``), so the resynthesis
uses the very synth and settings that made the training data. Rendering runs
in "spawn" worker processes, which never import TensorFlow.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tqdm.auto import tqdm

from generators.cli import env_default, make_parser, positive_int, run_cli
from generators.errors import InverSynthError
from generators.pool import map_in_workers
from generators.synth import generator_class, load_generator
from generators.validate import check_positive_int
from models.common.reconstruction import METRICS, format_metric, reconstruction_metrics, summarize

__all__ = [
    "CHANCE_SEED",
    "RECONSTRUCTION_CSV",
    "RECONSTRUCTION_JSON",
    "Resynthesis",
    "add_evaluated_run_arguments",
    "add_workers_argument",
    "evaluate_reconstruction",
    "format_reconstruction_table",
    "get_parser",
    "main",
    "resynthesize",
]

RECONSTRUCTION_JSON = "reconstruction.json"
RECONSTRUCTION_CSV = "reconstruction.csv"
PREDICTIONS_FILE = "predictions.npz"
METRICS_FILE = "metrics.json"
CHANCE_SEED = 20_181_215  # random patches for the chance row; fixed so that runs compare
_MIN_EXAMPLES_FOR_WORKERS = 128


# --------------------------------------------------------------------------
# Resynthesis in worker processes
# --------------------------------------------------------------------------


class Resynthesis(NamedTuple):
    """One job's result, in job order."""

    metrics: dict[str, np.ndarray]  # key -> [b]
    chance: dict[str, np.ndarray] | None  # key -> [b], when chance indices were given
    audio: np.ndarray | None  # [b, n_samples] float32, when asked for


Job = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]
"""(predicted indices [b, P], reference audio [b, n_samples] or None, chance indices or None)."""


def _resynthesize_job(generator: Any, job: Job, *, keep_audio: bool) -> Resynthesis:
    indices, reference, chance_indices = job
    audio = np.asarray(generator.render_indices(indices), dtype=np.float32)  # [b, n_samples]
    metrics: dict[str, np.ndarray] = {}
    chance = None
    if reference is not None:
        rate = generator.sample_rate
        metrics = reconstruction_metrics(reference, audio, sample_rate=rate)
        if chance_indices is not None:
            random_audio = generator.render_indices(chance_indices)
            chance = reconstruction_metrics(reference, random_audio, sample_rate=rate)
    return Resynthesis(metrics, chance, audio if keep_audio else None)


def resynthesize(
    generator_name: str,
    generator_config: dict[str, Any],
    jobs: Iterable[Job],
    *,
    workers: int = 2,
    keep_audio: bool = False,
) -> Iterator[Resynthesis]:
    """Render class indices with a synth and measure them against references, in order.

    Parameters
    ----------
    generator_name : str
        Registry name (``run.generator_name``).
    generator_config : dict
        The synth's ``config()`` (``run.generator_config``).
    jobs : iterable of (indices, reference, chance_indices)
        ``indices`` int [b, n_parameters]; ``reference`` float32 [b, n_samples]
        or None (render only); ``chance_indices`` int [b, n_parameters] or
        None (no chance figures). Consumed lazily: at most ``2 * workers``
        jobs are in flight, so memory stays flat for any number of jobs.
    workers : int > 0
        Rendering processes ("spawn": they start without TensorFlow). With 1,
        or for a synth that has worker processes of its own (plugins), the
        synth renders in this process.
    keep_audio : bool
        Return the resynthesized audio too.

    Yields
    ------
    Resynthesis
        One per job, in job order.
    """
    workers = check_positive_int(workers, "workers")
    task = functools.partial(_resynthesize_job, keep_audio=keep_audio)
    renders_in_parallel = generator_class(generator_name).renders_in_parallel
    if workers > 1 and not renders_in_parallel:
        yield from map_in_workers(
            task,
            jobs,
            generator_name=generator_name,
            generator_config=generator_config,
            workers=workers,
        )
        return
    # In this process: one worker asked for, or a synth with processes of its own
    # (plugin hosts), which is safe here (no plugin code runs in this process) and
    # saves a second layer of processes.
    config = dict(generator_config)
    if renders_in_parallel:
        config["workers"] = workers
    generator = load_generator(generator_name, config)
    try:
        for job in jobs:
            yield task(generator, job)
    finally:
        generator.close()


# --------------------------------------------------------------------------
# A run's reconstruction evaluation
# --------------------------------------------------------------------------


def load_predictions(evaluation_dir: Path) -> dict[str, np.ndarray]:
    """``predictions.npz`` of an evaluation folder: example_indices, true_indices, scores."""
    path = Path(evaluation_dir) / PREDICTIONS_FILE
    if not path.is_file():
        raise InverSynthError(
            f"{str(path)!r} does not exist; evaluate the run first "
            f"(python -m models.evaluate {Path(evaluation_dir).parent})"
        )
    try:
        with np.load(path) as data:
            out = {
                key: np.asarray(data[key]) for key in ("example_indices", "true_indices", "scores")
            }
    except (OSError, ValueError, KeyError) as exc:
        raise InverSynthError(f"{str(path)!r} is not a predictions file: {exc}") from None
    n = out["example_indices"].shape[0]
    if out["true_indices"].shape[0] != n or out["scores"].shape[0] != n:
        raise InverSynthError(f"{str(path)!r} is malformed: its arrays disagree in length")
    return out


def evaluation_dataset_paths(evaluation_dir: Path, default: Sequence[str]) -> list[str]:
    """The dataset files an evaluation used (from its ``metrics.json``), else ``default``."""
    path = Path(evaluation_dir) / METRICS_FILE
    if path.is_file():
        try:
            paths = json.loads(path.read_text())["dataset"]["paths"]
            return [str(p) for p in paths]
        except (json.JSONDecodeError, KeyError, TypeError):
            pass
    return list(default)


def _summary_block(summary: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {key: summary[key] for key in METRICS if key in summary}


def evaluate_reconstruction(
    run_dir: str | Path,
    *,
    evaluation_dir: str | Path | None = None,
    max_examples: int | None = None,
    workers: int = 2,
    chunk_size: int = 16,
    chance: bool = True,
    progress: bool = True,
    quiet: bool = False,
) -> dict[str, Any]:
    """Resynthesize a run's saved test predictions and measure them (the paper's Table 4).

    Needs no TensorFlow: it starts from ``predictions.npz``, so call it after
    :func:`models.evaluate.evaluate_run`.

    Parameters
    ----------
    run_dir : path
        The run folder.
    evaluation_dir : path, optional
        Folder with ``predictions.npz`` (default ``{run_dir}/evaluation``);
        results are written there too.
    max_examples : int, optional
        Use only the first N predictions.
    workers : int > 0
        Rendering processes (below 128 examples the synth renders in this
        process: starting workers would take longer).
    chunk_size : int > 0
        Examples per unit of work.
    chance : bool
        Also measure random patches against the same sounds (doubles the rendering).
    progress, quiet : bool
        Progress bar; no printed table.

    Returns
    -------
    dict
        The JSON written (``summary`` per metric, ``chance`` if asked), plus
        ``per_example`` (key -> [n] arrays, and ``example_indices``) and
        ``files`` (paths written).
    """
    from generators.dataset import open_dataset
    from models.common.run import EVALUATION_DIR, RunInfo, check_dataset, write_json_atomic

    if max_examples is not None and (int(max_examples) != max_examples or max_examples <= 0):
        raise InverSynthError(f"--max_examples must be a positive integer, got {max_examples!r}")
    if int(chunk_size) != chunk_size or chunk_size <= 0:
        raise InverSynthError(f"--chunk_size must be a positive integer, got {chunk_size!r}")
    run_dir = Path(run_dir)
    info = RunInfo.load(run_dir)
    out_dir = Path(evaluation_dir) if evaluation_dir is not None else run_dir / EVALUATION_DIR
    predictions = load_predictions(out_dir)
    parameter_set = info.parameter_set
    example_indices = predictions["example_indices"].astype(np.int64)
    true_indices = parameter_set.check_indices(predictions["true_indices"])
    predicted = parameter_set.decode(predictions["scores"])  # [n, P]
    if max_examples is not None:
        example_indices = example_indices[:max_examples]
        true_indices = true_indices[:max_examples]
        predicted = predicted[:max_examples]
    n = example_indices.size
    if n == 0:
        raise InverSynthError(f"{str(out_dir / PREDICTIONS_FILE)!r} holds no predictions")
    chance_indices = (
        parameter_set.sample_indices(seed=CHANCE_SEED, start=0, n_examples=n) if chance else None
    )

    dataset_paths = evaluation_dataset_paths(out_dir, info.dataset_paths)
    dataset = open_dataset(dataset_paths)
    try:
        check_dataset(info, dataset)

        def jobs() -> Iterator[Job]:
            for start in range(0, n, chunk_size):
                rows = slice(start, start + chunk_size)
                reference, labels = dataset.read(example_indices[rows])
                if not np.array_equal(labels, true_indices[rows]):
                    raise InverSynthError(
                        f"the dataset {dataset_paths} no longer matches the saved predictions "
                        f"(labels differ); evaluate the run again"
                    )
                yield (
                    predicted[rows],
                    reference,
                    chance_indices[rows] if chance_indices is not None else None,
                )

        # Starting worker processes costs seconds; a few examples render faster here.
        workers_used = workers if n >= _MIN_EXAMPLES_FOR_WORKERS else 1
        parts: list[dict[str, np.ndarray]] = []
        chance_parts: list[dict[str, np.ndarray]] = []
        with tqdm(total=n, unit="ex", desc="resynthesizing", disable=not progress) as bar:
            for result in resynthesize(
                info.generator_name, info.generator_config, jobs(), workers=workers_used
            ):
                parts.append(result.metrics)
                if result.chance is not None:
                    chance_parts.append(result.chance)
                bar.update(next(iter(result.metrics.values())).shape[0])
    finally:
        dataset.close()

    per_example = {key: np.concatenate([p[key] for p in parts]) for key in METRICS}
    summary = summarize(per_example)
    result_json: dict[str, Any] = {
        "model": info.model_name,
        "run_dir": str(run_dir),
        "generator": info.generator_name,
        "dataset": {"paths": dataset_paths},
        "n_examples": int(n),
        "representation": {
            "stft": "periodic Hann window 512, hop 256, zero-padded at the end; magnitude",
            "log_magnitude": "dB re a full-scale sine, floored at -100 dB",
            "mfcc": "20 coefficients of 40 mel bands (DCT-II orthonormal of the dB mel power)",
        },
        "definitions": {
            key: {
                "label": m.label,
                "unit": m.unit,
                "higher_is_better": m.higher_is_better,
                "description": m.description,
            }
            for key, m in METRICS.items()
        },
        "summary": _summary_block(summary),
    }
    if chance_parts:
        chance_values = {key: np.concatenate([p[key] for p in chance_parts]) for key in METRICS}
        result_json["chance"] = _summary_block(summarize(chance_values))
        result_json["chance_seed"] = CHANCE_SEED

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"json": out_dir / RECONSTRUCTION_JSON, "csv": out_dir / RECONSTRUCTION_CSV}
    write_json_atomic(files["json"], _json_safe(result_json))
    _write_per_example_csv(files["csv"], example_indices, per_example)
    if not quiet:
        print(format_reconstruction_table(result_json))
        print(f"reconstruction written to {files['json']} and {files['csv'].name}")
    return {
        **result_json,
        "per_example": {"example_indices": example_indices, **per_example},
        "files": files,
    }


def _json_safe(value: Any) -> Any:
    """Replace non-finite floats (not valid JSON) with None."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _write_per_example_csv(
    path: Path, example_indices: np.ndarray, per_example: dict[str, np.ndarray]
) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["example_index", *per_example])
        for i, index in enumerate(example_indices):
            writer.writerow([int(index), *(f"{per_example[k][i]:.6g}" for k in per_example)])
    os.replace(tmp, path)


def _cell(stats: dict[str, Any] | None, field: str, key: str) -> str:
    return format_metric(key, None if stats is None else stats.get(field))


def format_reconstruction_table(result: dict[str, Any]) -> str:
    """The paper's Table 4 layout: mean and median of each metric, model vs chance."""
    keys = [k for k in METRICS if k in result["summary"]]
    heads = []
    for k in keys:
        m = METRICS[k]
        unit = "%" if k.startswith("rho") else m.unit
        heads.append(f"{m.label}" + (f" ({unit})" if unit else ""))
    widths = [max(len(h), 8) for h in heads]
    lines = [
        f"Reconstruction of {result['n_examples']} test sounds by {result['model']} "
        "(rho: higher is better; others: lower is better)"
    ]
    rows: list[tuple[str, dict[str, Any]]] = [("model", result["summary"])]
    if "chance" in result:
        rows.append(("random patch", result["chance"]))
    label_width = max(len(f"{label} median") for label, _ in rows) + 1
    lines.append(
        " " * label_width + "".join(f"{h:>{w + 2}}" for h, w in zip(heads, widths, strict=True))
    )
    for label, block in rows:
        for field in ("mean", "median"):
            lines.append(
                f"{label + ' ' + field:<{label_width}}"
                + "".join(
                    f"{_cell(block.get(k), field, k):>{w + 2}}"
                    for k, w in zip(keys, widths, strict=True)
                )
            )
    excluded = {
        k: result["summary"][k]["n_excluded"] for k in keys if result["summary"][k]["n_excluded"]
    }
    if excluded:
        lines.append(f"(left out as undefined, e.g. against silent sounds: {excluded})")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def add_workers_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--workers``: rendering processes of the resynthesis (``INVERSYNTH_WORKERS``)."""
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=env_default("WORKERS", min(2, os.cpu_count() or 1), positive_int),
        help="rendering processes of the resynthesis",
    )


def add_evaluated_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``run_dir`` and ``--evaluation_dir``: where an evaluated run's predictions are."""
    parser.add_argument("run_dir", type=Path, help="run folder, evaluated by models.evaluate")
    parser.add_argument(
        "--evaluation_dir",
        type=Path,
        default=None,
        help="folder with predictions.npz (default {run_dir}/evaluation)",
    )


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        prog="python -m models.reconstruct",
        description="Resynthesize a run's test predictions with its synth and measure how close "
        "they sound (rho_STFT, rho_FT, F_delta, spectral convergence, LSD, MFCC L1).",
    )
    add_evaluated_run_arguments(parser)
    parser.add_argument(
        "--max_examples", type=positive_int, default=None, help="use only the first N"
    )
    add_workers_argument(parser)
    parser.add_argument(
        "--chunk_size", type=positive_int, default=16, help="examples per unit of work"
    )
    parser.add_argument(
        "--no_chance", action="store_true", help="skip the random-patch (chance) figures"
    )
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    evaluate_reconstruction(
        args.run_dir,
        evaluation_dir=args.evaluation_dir,
        max_examples=args.max_examples,
        workers=args.workers,
        chunk_size=args.chunk_size,
        chance=not args.no_chance,
        progress=not args.no_progress,
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
