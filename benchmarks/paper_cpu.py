"""A reduced-scale reproduction of the paper on a CPU: 20,000 FM examples, C6, 30 minutes.

Generates the dataset (unless it already exists), trains C6 within what is
left of the time budget, evaluates on the held-out examples and prints the
mean percentile rank (MPR) overall and per parameter group next to the
paper's figures (200,000 examples, 100 epochs, a GPU).

    uv run python -m benchmarks.paper_cpu                       # 30 min (1800 s) in all
    uv run python -m benchmarks.paper_cpu --label_sigma 1       # ordinal targets
    uv run python -m benchmarks.paper_cpu --stream              # C6 on examples rendered on the fly
    uv run python -m benchmarks.paper_cpu --model M1 --stream --label_sigma 1   # ours
    nohup uv run python -m benchmarks.paper_cpu > paper_cpu.log 2>&1 &

Everything lands in ``benchmarks/results/paper_cpu/`` (the dataset, the run
folder, ``summary_{run_name}.json``). Below 65 overall MPR at this scale something is
wrong; the paper's C6 reaches 77.81 with ten times the data.

With ``--stream`` the 20,000 examples are kept for validation and test (the same
test examples as without it) and training renders new examples of the same seed
on the fly (:mod:`models.common.stream`), as many as the time allows.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from core.options import add_workers_argument
from generators.fm_generator import FMGenerator
from generators.writer import DatasetCreator, DatasetPlan
from models.common.checkpoints import TrainState
from models.common.data import parse_split
from models.common.paper import PAPER_EXAMPLES, PAPER_MPR, PAPER_PARAMETER_MPR
from models.common.run import RunInfo
from models.common.speed import LEARNING_RATE_RULES, resolve_learning_rate
from models.common.training import TrainConfig, train
from models.evaluation.run_evaluation import EvaluationOptions, evaluate_run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=20_000)
    parser.add_argument("--model", default="C6")
    parser.add_argument(
        "--budget_s",
        type=float,
        default=1800.0,
        help="seconds for generation + training + evaluation",
    )
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument(
        "--learning_rate",
        default="0.001",
        help="a number, or 'scaled': 1e-3 * sqrt(batch_size / 16) (models.common.speed)",
    )
    parser.add_argument(
        "--stream", action="store_true", help="train on examples rendered on the fly"
    )
    parser.add_argument(
        "--examples_per_epoch", type=int, default=None, help="--stream: new examples per epoch"
    )
    parser.add_argument(
        "--label_sigma",
        type=float,
        default=0.0,
        help="0: the paper's one-hot targets; > 0: ordinal targets (see --help of training)",
    )
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--split", default="0.9,0.05,0.05")
    add_workers_argument(parser, help="rendering processes of the dataset")
    parser.add_argument("--folder", type=Path, default=Path("benchmarks/results/paper_cpu"))
    parser.add_argument("--run_name", default=None)
    return parser


def _dataset(args: argparse.Namespace) -> tuple[Path, bool]:
    """The FM dataset of ``--examples`` examples, generated unless it exists; (path, existed)."""
    data_path = args.folder / f"fm{args.examples}_data.hdf5"
    if data_path.exists():
        return data_path, True

    DatasetCreator(
        FMGenerator(),
        path=data_path,
        plan=DatasetPlan(n_examples=args.examples, seed=0),
        workers=args.workers,
        chunk_size=250,
        progress=False,
    ).run()
    return data_path, False


def _train(args: argparse.Namespace, data_path: Path, run_name: str, budget_s: float) -> Path:

    rate = args.learning_rate
    learning_rate = resolve_learning_rate(
        rate if rate in LEARNING_RATE_RULES else float(rate), batch_size=args.batch_size
    )
    return train(
        TrainConfig(
            model=args.model,
            dataset=[str(data_path)],
            output_dir=args.folder / "runs",
            run_name=run_name,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=learning_rate,
            label_sigma=args.label_sigma,
            split=parse_split(args.split),
            patience=10,
            time_limit_s=budget_s,
            verbose=2,
            stream=args.stream,
            examples_per_epoch=args.examples_per_epoch,
            workers=args.workers,
        )
    )


def _print_groups(evaluation: Any, model: str) -> None:

    print()
    print(f"{'group':<22}{'MPR':>8}{'top-1 %':>9}")
    for group, m in evaluation.groups.items():
        print(f"{group:<22}{m.mpr:>8.2f}{100 * m.top1:>9.1f}")
    if model in PAPER_MPR:  # not for our own models
        print(f"{f'paper (All, {PAPER_EXAMPLES // 1000}k ex.)':<22}{PAPER_MPR[model]:>8.2f}")
    by_name = {p.name: p for p in evaluation.parameters}
    for name, value in PAPER_PARAMETER_MPR.items():
        if name in by_name:
            print(f"  {name}: MPR {by_name[name].mpr:.1f} (paper: about {value})")


def _settings(run_dir: Path) -> dict[str, Any]:

    return RunInfo.load(run_dir).settings


def _examples_seen(args: argparse.Namespace, run_dir: Path, epochs: int) -> int:
    """Training examples the run went through (with repeats, without --stream)."""
    info = RunInfo.load(run_dir)
    if info.settings.get("stream"):
        per_epoch = int(info.settings["examples_per_epoch"]) // args.batch_size * args.batch_size
    else:
        per_epoch = info.split.size("train")
    return per_epoch * epochs


def main() -> None:
    args = _parser().parse_args()
    start = time.monotonic()
    args.folder.mkdir(parents=True, exist_ok=True)
    data_path, pregenerated = _dataset(args)
    generation_s = time.monotonic() - start
    made = "pre-generated" if pregenerated else f"generated in {generation_s:.0f} s"
    print(f"dataset {data_path}: {made}", flush=True)

    eval_reserve_s = 90.0
    train_budget_s = args.budget_s - (time.monotonic() - start) - eval_reserve_s
    targets = f"_sigma{args.label_sigma:g}" if args.label_sigma > 0 else ""
    targets += "_stream" if args.stream else ""
    run_name = args.run_name or (
        f"{args.model}_fm{args.examples}{targets}_{time.strftime('%Y%m%d-%H%M%S')}"
    )
    t0 = time.monotonic()
    run_dir = _train(args, data_path, run_name, train_budget_s)
    training_s = time.monotonic() - t0
    evaluation = evaluate_run(run_dir, EvaluationOptions(progress=False)).evaluation
    total_s = time.monotonic() - start
    state = TrainState.load(run_dir)

    _print_groups(evaluation, args.model)
    generation = "pre-generated" if pregenerated else f"generation {generation_s / 60:.1f} min"
    print(
        f"\n{args.examples} examples ({generation}), training {training_s / 60:.1f} min for "
        f"{state.epochs_done} epochs (best {state.best_epoch}), total {total_s / 60:.1f} min"
    )
    summary = {
        "model": args.model,
        "examples": args.examples,
        "pregenerated": pregenerated,
        "generation_s": generation_s,
        "training_s": training_s,
        "total_s": total_s,
        "epochs_done": state.epochs_done,
        "best_epoch": state.best_epoch,
        "batch_size": args.batch_size,
        "learning_rate": float(_settings(run_dir)["learning_rate"]),
        "label_sigma": args.label_sigma,
        "stream": args.stream,
        "examples_seen": _examples_seen(args, run_dir, state.epochs_done),
        "mpr": {g: m.mpr for g, m in evaluation.groups.items()},
        "top1": {g: m.top1 for g, m in evaluation.groups.items()},
        "paper_mpr_all": PAPER_MPR.get(args.model),
        "run_dir": str(run_dir),
    }
    summary_path = args.folder / f"summary_{run_name}.json"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"summary: {summary_path}")


if __name__ == "__main__":
    main()
