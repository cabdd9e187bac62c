"""Evaluate a run: the paper's metrics on the test split (or another dataset), tables and plots.

``python -m models.evaluate runs/C6_fm`` writes into ``runs/C6_fm/evaluation/``:

* ``metrics.json``: per-parameter and per-group top-k accuracy, MAE and MPR;
* ``per_parameter.csv``: one row per parameter;
* ``predictions.npz``: ``example_indices`` [n], ``true_indices`` [n, n_parameters],
  ``scores`` [n, n_outputs] (what further analyses, e.g. re-synthesis, start from);
* ``training_curves.png``, ``per_parameter.png``, ``top_k_by_group.png``;

and prints a summary row like the paper's Table 3 (mean MPR per group).

Other modules add sections to the same report by calling :func:`evaluate_run`
(which returns the predictions) and writing next to ``metrics.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from generators.cli import env_default, make_parser, positive_int, run_cli
from generators.dataset import SynthDataset
from generators.errors import InverSynthError
from models.common.metrics import SHORT_GROUP_NAMES, Evaluation, evaluate_scores
from models.common.run import EVALUATION_DIR, HISTORY_FILE, Run, load_run, write_json_atomic
from models.reconstruct import add_workers_argument

__all__ = ["PAPER_MPR", "evaluate_run", "format_table", "get_parser", "main", "predict_dataset"]

# The paper's mean MPR over all 23 parameters (Table 3).
PAPER_MPR: dict[str, float] = {
    "FC2": 67.05, "C1": 70.69, "C2": 75.78, "C3": 76.51, "C4": 77.35, "C5": 77.66,
    "C6": 77.81, "C6XL": 77.90, "CE2E": 76.17, "HC3": 75.80,
}  # fmt: skip


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


def write_per_parameter_csv(evaluation: Evaluation, path: Path) -> None:
    rows = [p.to_dict() for p in evaluation.parameters]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


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
) -> dict[str, Any]:
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
    dict with keys
        ``metrics`` (the JSON written), ``evaluation`` (:class:`Evaluation`),
        ``example_indices`` [n], ``true_indices`` [n, n_parameters],
        ``scores`` [n, n_outputs], ``output_dir`` (Path), ``files`` (dict of Paths).
    """
    if int(batch_size) != batch_size or batch_size <= 0:
        raise InverSynthError(f"--batch_size must be a positive integer, got {batch_size!r}")
    if max_examples is not None and max_examples <= 0:
        raise InverSynthError(f"--max_examples must be > 0, got {max_examples}")
    run = run if run is not None else load_run(run_dir)
    foreign = dataset_file is not None
    split = split or ("all" if foreign else "test")
    if split not in ("train", "validation", "test", "all"):
        raise InverSynthError(f"--split must be train, validation, test or all, got {split!r}")
    dataset = run.open_dataset(dataset_file)
    try:
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
        scores, true = predict_dataset(
            run, dataset, indices, batch_size=batch_size, progress=progress
        )
        dataset_paths = [str(p) for p in dataset.paths]
        identity = dataset.identity
    finally:
        dataset.close()

    evaluation = evaluate_scores(run.parameter_set, scores, true)
    if output_dir is None:
        name = EVALUATION_DIR
        if foreign:
            name += "_" + Path(dataset_paths[0]).name.split(".")[0].removesuffix("_data")
        output_dir = run.run_dir / name
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = {
        "model": run.model_name,
        "run_dir": str(run.run_dir),
        "dataset": {"paths": dataset_paths, "identity": identity},
        "split": split,
        **evaluation.to_dict(),
    }
    files: dict[str, Path] = {
        "metrics": out / "metrics.json",
        "per_parameter": out / "per_parameter.csv",
        "predictions": out / "predictions.npz",
    }
    write_json_atomic(files["metrics"], metrics)
    write_per_parameter_csv(evaluation, files["per_parameter"])
    np.savez_compressed(
        files["predictions"], example_indices=indices, true_indices=true, scores=scores
    )
    if plots:
        from models.common.plots import plot_history, plot_per_parameter, plot_top_k_by_group

        title = f"{run.model_name}, {split} ({evaluation.n_examples} examples)"
        curves = plot_history(run.run_dir / HISTORY_FILE, out / "training_curves.png")
        if curves is not None:
            files["training_curves"] = curves
        files["per_parameter_plot"] = plot_per_parameter(
            evaluation, out / "per_parameter.png", title=title
        )
        files["top_k_plot"] = plot_top_k_by_group(
            evaluation, out / "top_k_by_group.png", title=title
        )
    if not quiet:
        # The paper's figures only apply to its FM synth.
        paper_row = run.generator_name == "fm"
        print(format_table(evaluation, model_name=run.model_name, paper_row=paper_row))
        print(f"evaluation written to {out}")
    return {
        "metrics": metrics,
        "evaluation": evaluation,
        "example_indices": indices,
        "true_indices": true,
        "scores": scores,
        "output_dir": out,
        "files": files,
    }


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        prog="python -m models.evaluate",
        description="The paper's metrics (top-k accuracy, MAE, MPR) of a trained run, with plots.",
    )
    parser.add_argument("run_dir", type=Path, help="run folder ({output_dir}/{run_name})")
    parser.add_argument(
        "--dataset_file",
        default=None,
        help="evaluate on another dataset of the same synth: a file, or a glob of its shards",
    )
    parser.add_argument(
        "--split",
        choices=("train", "validation", "test", "all"),
        default=None,
        help="examples to use (default: test; all with --dataset_file)",
    )
    parser.add_argument(
        "--batch_size",
        type=positive_int,
        default=env_default("EVAL_BATCH_SIZE", 64, positive_int),
        help="examples per forward pass",
    )
    parser.add_argument(
        "--max_examples", type=positive_int, default=None, help="use only the first N"
    )
    parser.add_argument(
        "--output_dir", type=Path, default=None, help="default {run_dir}/evaluation"
    )
    parser.add_argument("--no_plots", action="store_true", help="skip the PNG figures")
    parser.add_argument(
        "--no_reconstruction",
        action="store_true",
        help="parameters only: no resynthesis metrics (models.reconstruct) and no listening report",
    )
    add_workers_argument(parser)
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--json", action="store_true", help="print metrics.json instead of the tables"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    result = evaluate_run(
        args.run_dir,
        batch_size=args.batch_size,
        dataset_file=args.dataset_file,
        split=args.split,
        max_examples=args.max_examples,
        output_dir=args.output_dir,
        plots=not args.no_plots,
        progress=not args.no_progress,
        quiet=args.json,
    )
    if not args.no_reconstruction:
        from models.reconstruct import evaluate_reconstruction
        from models.report import write_report

        evaluate_reconstruction(
            args.run_dir,
            evaluation_dir=result["output_dir"],
            max_examples=args.max_examples,
            workers=args.workers,
            progress=not args.no_progress,
            quiet=args.json,
        )
        report = write_report(args.run_dir, evaluation_dir=result["output_dir"])
        if not args.json:
            print(f"listening report: {report}")
    if args.json:
        print(json.dumps(result["metrics"], indent=2))
    return 0


if __name__ == "__main__":
    run_cli(main)
