"""Several runs side by side: the paper's Tables 3 and 4 for your own runs.

``python -m models.compare runs/C1_fm runs/C6_fm runs/CE2E_fm`` reads each run's
evaluation files (``evaluation/metrics.json`` from ``python -m models.evaluate``,
``evaluation/reconstruction.json`` from ``python -m models.reconstruct`` when
present) and writes into ``--output_dir`` (default ``comparison``):

* ``comparison.md``: two Markdown tables, the mean percentile rank (MPR) per
  parameter group (Table 3's layout) and the mean and median of every
  reconstruction metric (Table 4's layout), with the paper's figures for the
  same models when the runs use the paper's FM synth;
* ``comparison.csv``: one row per run with every figure;
* ``comparison.png``: MPR per group and rho_STFT per run, as bars.

Runs evaluated on different test sets are flagged: their figures do not
compare directly.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generators.cli import make_parser, run_cli
from generators.errors import InverSynthError
from models.common.metrics import ALL_GROUP, PARAMETER_GROUPS, SHORT_GROUP_NAMES
from models.common.reconstruction import METRICS, format_metric
from models.reconstruct import METRICS_FILE, RECONSTRUCTION_JSON

__all__ = [
    "PAPER_RECONSTRUCTION",
    "RunSummary",
    "compare_runs",
    "format_markdown",
    "get_parser",
    "load_summary",
    "main",
    "write_comparison",
]

# The paper's Table 4 (means; rho in percent). Only what the paper reports.
PAPER_RECONSTRUCTION: dict[str, dict[str, float]] = {
    "C6XL": {"rho_stft": 92.04, "rho_ft": 76.13, "f_delta": 708.94},
    "C6": {"rho_stft": 91.38, "f_delta": 740.32},
    "CE2E": {"rho_stft": 88.33, "f_delta": 904.12},
}


@dataclass
class RunSummary:
    """What :func:`load_summary` reads from one run's evaluation folder."""

    label: str
    run_dir: Path
    model: str
    generator: str
    n_examples: int
    test_set: str  # dataset fingerprint and split, to tell whether runs compare
    mpr: dict[str, float]  # group -> MPR
    top1: dict[str, float]  # group -> top-1 accuracy in [0, 1]
    reconstruction: dict[str, dict[str, Any]] | None = None  # metric -> {mean, median, ...}
    chance: dict[str, dict[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InverSynthError(f"cannot read {str(path)!r}: {exc}") from None
    if not isinstance(data, dict):
        raise InverSynthError(f"{str(path)!r} is not a JSON object")
    return data


def load_summary(
    run_dir: str | Path, *, evaluation_name: str = "evaluation", label: str | None = None
) -> RunSummary:
    """Read a run's ``metrics.json`` (required) and ``reconstruction.json`` (optional).

    Raises
    ------
    InverSynthError
        When the run was never evaluated, naming the command that does it.
    """
    run_dir = Path(run_dir)
    eval_dir = run_dir / evaluation_name
    metrics_path = eval_dir / METRICS_FILE
    if not run_dir.is_dir():
        raise InverSynthError(f"run folder {str(run_dir)!r} does not exist")
    if not metrics_path.is_file():
        raise InverSynthError(
            f"run {str(run_dir)!r} has no {evaluation_name}/{METRICS_FILE}; "
            f"evaluate it first: python -m models.evaluate {run_dir}"
        )
    metrics = _read_json(metrics_path)
    try:
        groups = metrics["groups"]
        mpr = {g: float(m["mpr"]) for g, m in groups.items()}
        top1 = {g: float(m["top1"]) for g, m in groups.items()}
        n_examples = int(metrics["n_examples"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InverSynthError(f"{str(metrics_path)!r} is malformed: missing or bad {exc}") from None
    identity = metrics.get("dataset", {}).get("identity", {}) or {}
    test_set = f"{identity.get('fingerprint', '?')}/{metrics.get('split', '?')}"
    generator = str(identity.get("generator", ""))
    model = str(metrics.get("model", "?"))
    run_json = run_dir / "run.json"
    if run_json.is_file():
        record = _read_json(run_json)
        generator = str(record.get("generator", generator))
        model = str(record.get("model", model))
    summary = RunSummary(
        label=label or run_dir.name,
        run_dir=run_dir,
        model=model,
        generator=generator,
        n_examples=n_examples,
        test_set=test_set,
        mpr=mpr,
        top1=top1,
    )
    reconstruction_path = eval_dir / RECONSTRUCTION_JSON
    if reconstruction_path.is_file():
        reconstruction = _read_json(reconstruction_path)
        summary.reconstruction = reconstruction.get("summary")
        summary.chance = reconstruction.get("chance")
        summary.extra["reconstruction_examples"] = reconstruction.get("n_examples")
    return summary


def compare_runs(
    run_dirs: Sequence[str | Path], *, evaluation_name: str = "evaluation"
) -> list[RunSummary]:
    """Summaries of several runs, labelled uniquely (folder name, or parent/name when repeated)."""
    if not run_dirs:
        raise InverSynthError("give at least one run folder")
    paths = [Path(r).resolve() for r in run_dirs]
    labels = [p.name for p in paths]
    # Runs with the same folder name are told apart by as many parent folders as it takes.
    for depth in range(2, max(len(p.parts) for p in paths) + 1):
        repeated = {label for label in labels if labels.count(label) > 1}
        if not repeated:
            break
        labels = [
            "/".join(p.parts[-depth:]) if label in repeated else label
            for p, label in zip(paths, labels, strict=True)
        ]
    return [
        load_summary(r, evaluation_name=evaluation_name, label=label)
        for r, label in zip(run_dirs, labels, strict=True)
    ]


def _groups(summaries: Sequence[RunSummary]) -> list[str]:
    present = {g for s in summaries for g in s.mpr}
    ordered = [g for g in [*PARAMETER_GROUPS, ALL_GROUP] if g in present]
    return ordered + sorted(present - set(ordered))


def _metric_value(key: str, value: Any) -> str:
    return format_metric(key, None if value is None else float(value))


def _metric_head(key: str) -> str:
    m = METRICS[key]
    unit = "%" if key.startswith("rho") else m.unit
    return m.label + (f" ({unit})" if unit else "")


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def _paper_models(summaries: Sequence[RunSummary]) -> list[str]:
    from models.evaluate import PAPER_MPR

    models: list[str] = []
    for s in summaries:
        if s.generator == "fm" and s.model in PAPER_MPR and s.model not in models:
            models.append(s.model)
    return models


def format_markdown(summaries: Sequence[RunSummary], *, paper: bool = True) -> str:
    """The two tables (Table 3 and Table 4 layouts) as Markdown, with notes."""
    from models.evaluate import PAPER_MPR

    groups = _groups(summaries)
    header = ["run", "model", "test examples", *(SHORT_GROUP_NAMES.get(g, g) for g in groups)]
    rows = [
        [
            s.label,
            s.model,
            str(s.n_examples),
            *(f"{s.mpr[g]:.2f}" if g in s.mpr else "-" for g in groups),
        ]
        for s in summaries
    ]
    paper_models = _paper_models(summaries) if paper else []
    for model in paper_models:
        rows.append(
            [
                f"paper {model}",
                model,
                "",
                *(f"{PAPER_MPR[model]:.2f}" if g == ALL_GROUP else "-" for g in groups),
            ]
        )
    parts = [
        "## Parameter accuracy: mean percentile rank per group",
        "",
        "100 is perfect, 50 is chance (the paper's Table 3 layout).",
        "",
        _markdown_table(header, rows),
    ]

    keys = list(METRICS)
    with_reconstruction = [s for s in summaries if s.reconstruction]
    if with_reconstruction:
        header = [
            "run",
            "model",
            *(f"{_metric_head(k)} {f}" for k in keys for f in ("mean", "median")),
        ]
        rows = []
        for s in with_reconstruction:
            assert s.reconstruction is not None
            block = s.reconstruction
            rows.append(
                [
                    s.label,
                    s.model,
                    *(
                        _metric_value(k, block.get(k, {}).get(f))
                        for k in keys
                        for f in ("mean", "median")
                    ),
                ]
            )
            if s.chance:
                rows.append(
                    [
                        f"{s.label} (random patch)",
                        "chance",
                        *(
                            _metric_value(k, s.chance.get(k, {}).get(f))
                            for k in keys
                            for f in ("mean", "median")
                        ),
                    ]
                )
        for model in paper_models:
            if model in PAPER_RECONSTRUCTION:
                figures = PAPER_RECONSTRUCTION[model]
                rows.append(
                    [
                        f"paper {model}",
                        model,
                        *(
                            (f"{figures[k]:.2f}" if k in figures and f == "mean" else "-")
                            for k in keys
                            for f in ("mean", "median")
                        ),
                    ]
                )
        parts += [
            "",
            "## Reconstruction: the predicted parameters played back",
            "",
            "Mean and median over the test sounds (the paper's Table 4 layout). rho: higher "
            "is better; the others: lower is better. A random patch plays parameters drawn at "
            "random: chance level. F_delta's scale depends on the dB convention (here dB re "
            "full scale, floored at -100 dB), so compare it between these runs, not with the "
            "paper's.",
            "",
            _markdown_table(header, rows),
        ]
    missing = [s.label for s in summaries if not s.reconstruction]
    notes = []
    if missing and with_reconstruction:
        notes.append(
            "No reconstruction figures for "
            + ", ".join(missing)
            + " (run python -m models.reconstruct on them)."
        )
    test_sets = {s.test_set for s in summaries}
    if len(test_sets) > 1:
        notes.append(
            "The runs were evaluated on different test sets ("
            + "; ".join(f"{s.label}: {s.test_set}" for s in summaries)
            + "): their figures do not compare directly."
        )
    if notes:
        parts += ["", *(f"Note: {n}" for n in notes)]
    return "\n".join(parts) + "\n"


def _csv_rows(summaries: Sequence[RunSummary]) -> tuple[list[str], list[dict[str, Any]]]:
    groups = _groups(summaries)
    fields = ["run", "model", "generator", "run_dir", "test_set", "test_examples"]
    fields += [f"mpr_{SHORT_GROUP_NAMES.get(g, g)}" for g in groups]
    fields += [f"top1_{SHORT_GROUP_NAMES.get(g, g)}" for g in groups]
    fields += [f"{k}_{f}" for k in METRICS for f in ("mean", "median")]
    fields += [f"chance_{k}_{f}" for k in METRICS for f in ("mean", "median")]
    rows = []
    for s in summaries:
        row: dict[str, Any] = {
            "run": s.label,
            "model": s.model,
            "generator": s.generator,
            "run_dir": str(s.run_dir),
            "test_set": s.test_set,
            "test_examples": s.n_examples,
        }
        for g in groups:
            short = SHORT_GROUP_NAMES.get(g, g)
            row[f"mpr_{short}"] = s.mpr.get(g, "")
            row[f"top1_{short}"] = s.top1.get(g, "")
        for prefix, block in (("", s.reconstruction), ("chance_", s.chance)):
            for k in METRICS:
                for f in ("mean", "median"):
                    value = (block or {}).get(k, {}).get(f)
                    row[f"{prefix}{k}_{f}"] = "" if value is None else value
        rows.append(row)
    return fields, rows


def plot_comparison(summaries: Sequence[RunSummary], out: Path) -> Path:
    """MPR per group for every run (grouped bars) and rho_STFT mean per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    groups = _groups(summaries)
    with_reconstruction = [s for s in summaries if s.reconstruction]
    n_panels = 2 if with_reconstruction else 1
    fig, axes = plt.subplots(
        1,
        n_panels,
        figsize=(max(6.0, 1.1 * len(groups) + 2) + 3.5 * (n_panels - 1), 4.2),
        squeeze=False,
        gridspec_kw={"width_ratios": [max(3, len(groups)), 2][:n_panels]},
    )
    ax = axes[0][0]
    x = np.arange(len(groups))
    width = 0.8 / len(summaries)
    for i, s in enumerate(summaries):
        ax.bar(
            x + (i - (len(summaries) - 1) / 2) * width,
            [s.mpr.get(g, np.nan) for g in groups],
            width,
            label=s.label,
        )
    ax.axhline(50, color="k", ls="--", lw=1, label="chance")
    ax.set_xticks(x)
    ax.set_xticklabels([SHORT_GROUP_NAMES.get(g, g) for g in groups], fontsize=8)
    ax.set_ylabel("mean percentile rank")
    ax.set_ylim(0, 100)
    ax.set_title("parameter accuracy (100 = perfect)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    if with_reconstruction:
        ax = axes[0][1]
        labels = [s.label for s in with_reconstruction]
        model = [
            100 * float((s.reconstruction or {}).get("rho_stft", {}).get("mean") or np.nan)
            for s in with_reconstruction
        ]
        chance = [
            100 * float((s.chance or {}).get("rho_stft", {}).get("mean") or np.nan)
            for s in with_reconstruction
        ]
        y = np.arange(len(labels))
        ax.barh(y + 0.2, model, 0.4, label="model")
        ax.barh(y - 0.2, chance, 0.4, label="random patch", color="0.7")
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()  # first run on top, as in the tables
        finite = [v for v in model + chance if np.isfinite(v)]
        low = min(finite) if finite else 0.0
        ax.set_xlim(max(0.0, low - 5), 100)
        ax.set_xlabel("rho_STFT mean (%)")
        ax.set_title("reconstruction (higher is better)", fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)


def write_comparison(
    summaries: Sequence[RunSummary],
    output_dir: str | Path,
    *,
    paper: bool = True,
    plot: bool = True,
) -> dict[str, Path]:
    """Write ``comparison.md``, ``comparison.csv`` and (``plot``) ``comparison.png``."""
    out = Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InverSynthError(f"cannot create folder {str(out)!r}: {exc.strerror}") from None
    files = {"markdown": out / "comparison.md", "csv": out / "comparison.csv"}
    files["markdown"].write_text(format_markdown(summaries, paper=paper))
    fields, rows = _csv_rows(summaries)
    with open(files["csv"], "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    if plot:
        files["plot"] = plot_comparison(summaries, out / "comparison.png")
    return files


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        prog="python -m models.compare",
        description="Compare evaluated runs side by side (the paper's Tables 3 and 4).",
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run folders, evaluated")
    parser.add_argument(
        "--output_dir", type=Path, default=Path("comparison"), help="where the tables go"
    )
    parser.add_argument(
        "--evaluation_name",
        default="evaluation",
        help="evaluation folder inside each run (evaluation_NAME for another dataset)",
    )
    parser.add_argument("--no_paper", action="store_true", help="leave out the paper's figures")
    parser.add_argument("--no_plot", action="store_true", help="skip the PNG")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    summaries = compare_runs(args.run_dirs, evaluation_name=args.evaluation_name)
    files = write_comparison(
        summaries, args.output_dir, paper=not args.no_paper, plot=not args.no_plot
    )
    print(files["markdown"].read_text(), end="")
    print(f"\nwritten: {', '.join(str(p) for p in files.values())}")
    return 0


if __name__ == "__main__":
    run_cli(main)
