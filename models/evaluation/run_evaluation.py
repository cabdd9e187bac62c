"""Evaluating a run: the paper's metrics on its test split (or another dataset), tables, plots.

:func:`evaluate_run` predicts every example, computes the metrics
(:func:`~models.common.metrics.evaluate_scores`) and writes them into the
run's evaluation folder (:mod:`models.evaluation.evaluation_folder`):
``metrics.json``, ``per_parameter.csv``, ``predictions.npz`` (what further
analyses, e.g. resynthesis, start from) and the plots. :func:`format_table`
is the summary printed: a row like the paper's Table 3 (mean MPR per group),
then every parameter.

An example of a dataset is determined by its synth (name, config, parameter
set, sample rate, length), the dataset's seed and its index: two datasets
made alike with the same seed hold the same examples. So on another dataset
(``dataset_file``) the run's own training and validation examples are
found exactly (:func:`training_rows`) and never scored as test examples.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from core.checks import check_positive_int
from core.errors import InverSynthError
from generators.dataset import SynthDataset
from models.common.data import usable_indices
from models.common.metrics import Evaluation, evaluate_scores
from models.common.paper import PAPER_MPR, SHORT_GROUP_NAMES, describes
from models.common.run import HISTORY_FILE, Run, RunInfo, load_run
from models.evaluation.evaluation_folder import (
    MATCHES_FILE,
    METRICS_FILE,
    PLOT_FILES,
    RECONSTRUCTION_CSV,
    RECONSTRUCTION_JSON,
    REPORT_FILE,
    MetricsRecord,
    Predictions,
    check_output_folder,
    check_replaceable,
    default_evaluation_dir,
    make_output_folder,
    read_metrics,
    read_reconstruction,
    write_per_parameter_csv,
)
from models.evaluation.evaluation_identity import foreign_records
from models.evaluation.listening_sounds import LISTENING_FILE

__all__ = [
    "SPLITS",
    "EvaluationOptions",
    "RunEvaluation",
    "evaluate_run",
    "format_table",
    "predict_dataset",
    "training_rows",
]

SPLITS = ("train", "validation", "test", "all")


@dataclass(frozen=True)
class RunEvaluation:
    """What :func:`evaluate_run` computed and wrote.

    ``result["metrics"]`` etc. read the fields by name.
    """

    metrics: MetricsRecord  # metrics.json
    predictions: Predictions  # predictions.npz
    output_dir: Path
    files: dict[str, Path]

    @property
    def evaluation(self) -> Evaluation:
        return self.metrics.evaluation

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)


def predict_dataset(
    run: Run,
    dataset: SynthDataset,
    indices: np.ndarray,
    *,
    batch_size: int = 64,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and true class indices of examples ``indices``, read in sequential batches.

    Returns
    -------
    scores : np.ndarray [n, n_outputs], float32
    true_indices : np.ndarray [n, n_parameters], int64
    """
    idx = np.asarray(indices, dtype=np.int64)
    scores = np.empty((idx.size, run.parameter_set.n_outputs), dtype=np.float32)
    true = np.empty((idx.size, run.parameter_set.n_parameters), dtype=np.int64)
    read_size = max(batch_size, 256)
    with tqdm(total=idx.size, unit="ex", desc="predicting", disable=not progress) as bar:
        for start in range(0, idx.size, read_size):
            chunk = idx[start : start + read_size]
            audio, labels = dataset.read(chunk)
            scores[start : start + chunk.size] = run.predict_scores(audio, batch_size=batch_size)
            true[start : start + chunk.size] = labels
            bar.update(chunk.size)
    return scores, true


def format_table(evaluation: Evaluation, *, model_name: str, paper_row: bool = False) -> str:
    """Mean MPR per group (one row, like the paper's Table 3), then the per-parameter table."""
    groups = list(evaluation.groups)
    heads = [SHORT_GROUP_NAMES.get(g, g) for g in groups]
    widths = [max(7, len(h)) for h in heads]
    lines = ["Mean percentile rank (MPR; 100 = perfect, 50 = chance)"]
    lines.append(
        f"{'model':<10}" + "".join(f"{h:>{w + 1}}" for h, w in zip(heads, widths, strict=True))
    )
    lines.append(
        f"{model_name:<10}"
        + "".join(
            f"{evaluation.groups[g].mpr:>{w + 1}.2f}" for g, w in zip(groups, widths, strict=True)
        )
    )
    if paper_row and model_name in PAPER_MPR:
        lines.append(
            f"{'paper':<10}"
            + " " * sum(w + 1 for w in widths[:-1])
            + f"{PAPER_MPR[model_name]:>{widths[-1] + 1}.2f}"
        )
    lines.append("")
    name_w = max(9, *(len(p.name) for p in evaluation.parameters))
    lines.append(
        f"{'parameter':<{name_w}}"
        + "".join(f"{f'top{k}':>7}" for k in range(1, 6))
        + f"{'MAE':>7}{'MPR':>7}"
    )
    for p in evaluation.parameters:
        lines.append(
            f"{p.name:<{name_w}}"
            + "".join(f"{100 * a:>7.1f}" for a in p.top_k)
            + f"{p.mae:>7.2f}{p.mpr:>7.2f}"
        )
    lines.append(f"({evaluation.n_examples} examples; top-k in %, MAE in class indices)")
    return "\n".join(lines)


def _check_options(batch_size: int, max_examples: int | None, split: str) -> None:
    check_positive_int(batch_size, "--batch_size")
    if max_examples is not None:
        check_positive_int(max_examples, "--max_examples")
    if split not in SPLITS:
        raise InverSynthError(f"--split must be train, validation, test or all, got {split!r}")


def training_rows(info: RunInfo, dataset: SynthDataset) -> np.ndarray:
    """Which rows of ``dataset`` are examples the run trained or validated on: bool [n_examples].

    ``dataset`` must have passed :func:`~models.common.run.check_dataset`
    (same synth, settings and parameter set as the run's); then the same seed
    means the same example at the same global index. A file not drawn from its
    seed (real patches) holds none of them.
    """
    seen = np.zeros(dataset.n_examples, dtype=bool)
    if not dataset.drawn_from_seed or dataset.seed != info.dataset_identity.get("seed"):
        return seen
    first = int(dataset.attrs.get("example_offset", 0))  # global index of row 0
    index = first + np.arange(dataset.n_examples, dtype=np.int64)
    for name in ("train", "validation"):
        start, stop = info.split.ranges[name]
        seen |= (index >= start) & (index < stop)
    return seen


def _foreign_indices(run: Run, dataset: SynthDataset, split: str) -> tuple[np.ndarray, int]:
    """Rows of another dataset to evaluate, and how many were left out as training examples."""
    if split not in ("test", "all"):
        raise InverSynthError(
            f"--split {split} names the run's own examples; with --dataset_file use test "
            "(every example the run did not train on) or all"
        )
    seen = training_rows(run.info, dataset)
    n_seen = int(seen.sum())
    where = ", ".join(str(p) for p in dataset.paths)
    if n_seen:
        rows = np.flatnonzero(seen)
        overlap = (
            f"{n_seen} of the {dataset.n_examples} examples of {where} (rows {rows[0]}..{rows[-1]}) "
            f"are examples run {str(run.run_dir)!r} trained or validated on (same synth and "
            f"seed {dataset.seed})"
        )
        if n_seen == dataset.n_examples:
            raise InverSynthError(f"{overlap}: nothing to test; make a dataset with another --seed")
        if split == "all":
            raise InverSynthError(
                f"{overlap}; --split test evaluates the other {dataset.n_examples - n_seen}, "
                "or make a dataset with another --seed"
            )
    return np.flatnonzero(~seen).astype(np.int64), n_seen


def _example_indices(
    run: Run, dataset: SynthDataset, split: str, *, foreign: bool, max_examples: int | None
) -> tuple[np.ndarray, int]:
    """The examples to evaluate ([n] int64, increasing) and the training examples left out."""
    indices: np.ndarray
    left_out = 0
    if foreign:
        indices, left_out = _foreign_indices(run, dataset, split)
    elif split == "all":
        indices = np.arange(dataset.n_examples, dtype=np.int64)
    else:
        indices = run.split.indices(split)
    indices = usable_indices(dataset, indices)  # never score the synth's failed renders
    if max_examples is not None:
        indices = indices[:max_examples]
    if indices.size == 0:
        raise InverSynthError(f"the {split} split has no examples")
    return indices, left_out


def _check_replaceable(
    out: Path,
    *,
    run: Run,
    test_set: str,
    n: int,
    what: str,
    reconstruction: bool,
    overwrite: bool,
) -> None:
    """Refuse, before any work, to replace results of another run, or of other or more examples.

    ``test_set`` is :attr:`MetricsRecord.test_set` of the new evaluation, ``n``
    its examples, ``what`` their description.
    """
    foreign = foreign_records(out, run.info)
    if foreign and not overwrite:
        recorded, reasons = foreign[0]
        raise InverSynthError(
            f"{str(recorded.file)!r} is of run {recorded.run_dir!r} ({recorded.model}; "
            f"{'; '.join(reasons)}); this would replace it with run {str(run.run_dir)!r}'s: "
            "pass --overwrite to replace it, or --output_dir DIR to write elsewhere"
        )
    if foreign:  # replaced: nothing of the other run stays beside this run's results
        for name in (
            RECONSTRUCTION_JSON,
            RECONSTRUCTION_CSV,
            MATCHES_FILE,
            LISTENING_FILE,
            REPORT_FILE,
        ):
            (out / name).unlink(missing_ok=True)
    old = _read_or_none(read_metrics, out) if (out / METRICS_FILE).is_file() else None
    if old is not None:
        check_replaceable(
            out / METRICS_FILE,
            n_old=old.evaluation.n_examples,
            n_new=n,
            same_examples=old.test_set == test_set,
            what=what,
            overwrite=overwrite,
            elsewhere="--output_dir DIR",
        )
    old_reconstruction = _read_or_none(read_reconstruction, out) if reconstruction else None
    if old_reconstruction is not None:
        check_replaceable(
            out / RECONSTRUCTION_JSON,
            n_old=old_reconstruction.n_examples,
            n_new=n,
            same_examples=old is None or old.test_set == test_set,
            what=what,
            overwrite=overwrite,
            elsewhere="--output_dir DIR",
        )


def _read_or_none(read: Any, out: Path) -> Any:
    """``read(out)``, or None for a file that cannot be read (nothing in it to keep)."""
    try:
        return read(out)
    except InverSynthError:
        return None


def _write_plots(run: Run, evaluation: Evaluation, out: Path, *, split: str) -> dict[str, Path]:
    from models.common.plots import plot_history, plot_per_parameter, plot_top_k_by_group

    title = f"{run.model_name}, {split} ({evaluation.n_examples} examples)"
    files: dict[str, Path] = {}
    curves = plot_history(run.run_dir / HISTORY_FILE, out / PLOT_FILES["training_curves"])
    if curves is not None:
        files["training_curves"] = curves
    files["per_parameter_plot"] = plot_per_parameter(
        evaluation, out / PLOT_FILES["per_parameter_plot"], title=title
    )
    files["top_k_plot"] = plot_top_k_by_group(
        evaluation, out / PLOT_FILES["top_k_plot"], title=title
    )
    return files


@dataclass(frozen=True, kw_only=True)
class EvaluationOptions:
    """How :func:`evaluate_run` evaluates a run: which examples, where, what it draws and says.

    Attributes
    ----------
    batch_size : int
        Examples per forward pass.
    dataset_file : path(s), optional
        Evaluate on another dataset of the same synth and parameter set
        (default: the run's own dataset).
    split : {"test", "validation", "train", "all"}
        Examples to use. On another dataset, "test" is every example the run
        did not train or validate on (those of the same seed and index are
        left out, and it says so) and "all" every example, refused if the run
        trained on some; "train" and "validation" name the run's own.
    max_examples : int, optional
        Use only the first ``max_examples`` of them.
    output_dir : path, optional
        Default ``{run_dir}/evaluation`` (``{run_dir}/evaluation_{dataset name}``
        for another dataset).
    plots : bool
        Draw the PNG figures.
    progress, quiet : bool
        Progress bar; no printed table.
    overwrite : bool
        Replace results of other examples, or of more of the same, in the
        output folder (refused otherwise, before any work).
    reconstruction : bool
        The caller resynthesizes next: refuse now, not after predicting, if
        the folder's ``reconstruction.json`` holds more examples.
    """

    batch_size: int = 64
    dataset_file: str | Path | Sequence[str | Path] | None = None
    split: str = "test"
    max_examples: int | None = None
    output_dir: str | Path | None = None
    plots: bool = True
    progress: bool = True
    quiet: bool = False
    overwrite: bool = False
    reconstruction: bool = False


def evaluate_run(
    run_dir: str | Path, options: EvaluationOptions | None = None, *, run: Run | None = None
) -> RunEvaluation:
    """Compute, save and print the paper's metrics of a trained run.

    Parameters
    ----------
    run_dir : path
        The run folder.
    options : EvaluationOptions, optional
        Default: the run's test split, into ``{run_dir}/evaluation``, with plots.
    run : Run, optional
        An already loaded run (saves loading the model again).

    Returns
    -------
    RunEvaluation
        The record written to ``metrics.json``, the predictions, the folder
        and the files written.
    """
    options = options if options is not None else EvaluationOptions()
    _check_options(options.batch_size, options.max_examples, options.split)
    if options.output_dir is not None:
        check_output_folder(options.output_dir)
    run = run if run is not None else load_run(run_dir)
    record, predictions, out = _predict_split(run, options)
    make_output_folder(out)
    files = {
        "metrics": record.write(out / METRICS_FILE),
        "per_parameter": write_per_parameter_csv(out, record.evaluation),
        "predictions": predictions.save(out),
    }
    if options.plots:
        files.update(_write_plots(run, record.evaluation, out, split=options.split))
    if not options.quiet:
        paper_row = describes(run.generator_name)  # the paper's figures are of its synth
        print(format_table(record.evaluation, model_name=run.model_name, paper_row=paper_row))
        print(f"evaluation written to {out}")
    return RunEvaluation(metrics=record, predictions=predictions, output_dir=out, files=files)


def _predict_split(run: Run, options: EvaluationOptions) -> tuple[MetricsRecord, Predictions, Path]:
    """The run's predictions of the examples asked for, their metrics, and the output folder.

    The folder is checked (another run's results, fewer examples) before any prediction.
    """
    foreign = options.dataset_file is not None
    split = options.split
    with run.open_dataset(options.dataset_file) as dataset:
        indices, left_out = _example_indices(
            run, dataset, split, foreign=foreign, max_examples=options.max_examples
        )
        dataset_paths = [str(p) for p in dataset.paths]
        identity = dataset.identity
        out = (
            Path(options.output_dir)
            if options.output_dir is not None
            else (default_evaluation_dir(run.run_dir, dataset_paths[0] if foreign else None))
        )
        check_output_folder(out)
        _check_replaceable(
            out,
            run=run,
            test_set=f"{identity.get('fingerprint', '?')}/{split}",
            n=int(indices.size),
            what=f"{indices.size} {split} examples of {', '.join(dataset_paths)}",
            reconstruction=options.reconstruction,
            overwrite=options.overwrite,
        )
        if left_out:
            print(
                f"note: {left_out} examples of {', '.join(dataset_paths)} are examples the run "
                f"trained or validated on (same synth and seed); evaluating the other "
                f"{indices.size}",
                file=sys.stderr if options.quiet else sys.stdout,
            )
        scores, true = predict_dataset(
            run, dataset, indices, batch_size=options.batch_size, progress=options.progress
        )
    record = MetricsRecord(
        model=run.model_name,
        run_dir=str(run.run_dir),
        dataset_paths=dataset_paths,
        dataset_identity=identity,
        split=split,
        evaluation=evaluate_scores(run.parameter_set, scores, true),
        left_out=left_out,
        run_fingerprint=run.info.fingerprint,
    )
    return record, Predictions(indices, true, scores), out
