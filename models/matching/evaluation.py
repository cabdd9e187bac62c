"""Evaluating a run: the paper's metrics on its test split (or another dataset), tables, plots.

:func:`evaluate_run` predicts every example, computes the metrics
(:func:`~models.common.metrics.evaluate_scores`) and writes them into the
run's evaluation folder (:mod:`models.matching.evaluation_folder`):
``metrics.json``, ``per_parameter.csv``, ``predictions.npz`` (what further
analyses, e.g. resynthesis, start from) and the plots. :func:`format_table`
is the summary printed: a row like the paper's Table 3 (mean MPR per group),
then every parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from generators.dataset import SynthDataset
from generators.errors import InverSynthError
from models.common.metrics import Evaluation, evaluate_scores
from models.common.paper import PAPER_MPR, SHORT_GROUP_NAMES, describes
from models.common.run import HISTORY_FILE, Run, load_run
from models.matching.evaluation_folder import (
    METRICS_FILE,
    PLOT_FILES,
    MetricsRecord,
    Predictions,
    default_evaluation_dir,
    write_per_parameter_csv,
)

__all__ = ["SPLITS", "RunEvaluation", "evaluate_run", "format_table", "predict_dataset"]

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
    if int(batch_size) != batch_size or batch_size <= 0:
        raise InverSynthError(f"--batch_size must be a positive integer, got {batch_size!r}")
    if max_examples is not None and max_examples <= 0:
        raise InverSynthError(f"--max_examples must be > 0, got {max_examples}")
    if split not in SPLITS:
        raise InverSynthError(f"--split must be train, validation, test or all, got {split!r}")


def _example_indices(
    run: Run, dataset: SynthDataset, split: str, *, foreign: bool, max_examples: int | None
) -> np.ndarray:
    """The examples to evaluate: [n] int64, increasing."""
    indices: np.ndarray
    if split == "all":
        indices = np.arange(dataset.n_examples, dtype=np.int64)
    else:
        if foreign:
            raise InverSynthError(
                "--split train/validation/test refers to the run's own dataset; "
                "use --split all (the default) with --dataset_file"
            )
        indices = run.split.indices(split)
    if max_examples is not None:
        indices = indices[:max_examples]
    if indices.size == 0:
        raise InverSynthError(f"the {split} split has no examples")
    return indices


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


def evaluate_run(
    run_dir: str | Path,
    *,
    batch_size: int = 64,
    dataset_file: str | Path | Sequence[str | Path] | None = None,
    split: str | None = None,
    max_examples: int | None = None,
    output_dir: str | Path | None = None,
    plots: bool = True,
    progress: bool = True,
    quiet: bool = False,
    run: Run | None = None,
) -> RunEvaluation:
    """Compute, save and print the paper's metrics of a trained run.

    Parameters
    ----------
    run_dir : path
        The run folder.
    batch_size : int
        Examples per forward pass.
    dataset_file : path(s), optional
        Evaluate on another dataset of the same synth and parameter set
        (default: the run's own dataset).
    split : {"test", "validation", "train", "all"}, optional
        Examples to use; default "test" for the run's dataset, "all" for another one.
    max_examples : int, optional
        Use only the first ``max_examples`` of them.
    output_dir : path, optional
        Default ``{run_dir}/evaluation`` (``{run_dir}/evaluation_{dataset name}``
        for another dataset).
    plots : bool
        Draw the PNG figures.
    progress, quiet : bool
        Progress bar; no printed table.
    run : Run, optional
        An already loaded run (saves loading the model again).

    Returns
    -------
    RunEvaluation
        The record written to ``metrics.json``, the predictions, the folder
        and the files written.
    """
    foreign = dataset_file is not None
    split = split or ("all" if foreign else "test")
    _check_options(batch_size, max_examples, split)
    run = run if run is not None else load_run(run_dir)
    with run.open_dataset(dataset_file) as dataset:
        indices = _example_indices(run, dataset, split, foreign=foreign, max_examples=max_examples)
        scores, true = predict_dataset(
            run, dataset, indices, batch_size=batch_size, progress=progress
        )
        dataset_paths = [str(p) for p in dataset.paths]
        identity = dataset.identity
    evaluation = evaluate_scores(run.parameter_set, scores, true)
    if output_dir is None:
        output_dir = default_evaluation_dir(run.run_dir, dataset_paths[0] if foreign else None)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = MetricsRecord(
        model=run.model_name,
        run_dir=str(run.run_dir),
        dataset_paths=dataset_paths,
        dataset_identity=identity,
        split=split,
        evaluation=evaluation,
    )
    predictions = Predictions(indices, true, scores)
    files = {
        "metrics": record.write(out / METRICS_FILE),
        "per_parameter": write_per_parameter_csv(out, evaluation),
        "predictions": predictions.save(out),
    }
    if plots:
        files.update(_write_plots(run, evaluation, out, split=split))
    if not quiet:
        paper_row = describes(run.generator_name)  # the paper's figures are of its synth
        print(format_table(evaluation, model_name=run.model_name, paper_row=paper_row))
        print(f"evaluation written to {out}")
    return RunEvaluation(metrics=record, predictions=predictions, output_dir=out, files=files)
