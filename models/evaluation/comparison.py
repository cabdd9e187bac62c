"""Several evaluated runs side by side: the paper's Tables 3 and 4 for your own runs.

:func:`compare_runs` reads each run's evaluation files (``metrics.json``,
``reconstruction.json`` when present) as :class:`RunSummary`;
:func:`write_comparison` writes:

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

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InverSynthError
from core.storage import atomic_path, open_atomic
from generators.parameters import ALL_GROUP, PAPER_GROUPS
from models.common.markup import markdown_text, plot_text
from models.common.paper import PAPER_MPR, PAPER_RECONSTRUCTION, SHORT_GROUP_NAMES, describes
from models.common.records import write_text_atomic
from models.common.run import RUN_FILE, RunInfo
from models.evaluation.evaluation_folder import (
    EVALUATION_DIR,
    METRICS_FILE,
    MetricsRecord,
    read_reconstruction,
)
from models.evaluation.evaluation_identity import check_evaluation_of_run
from models.matching.sound_metrics import METRICS, MetricSummary, format_metric, metric_heading

__all__ = [
    "RunSummary",
    "compare_runs",
    "comparison_figure",
    "format_markdown",
    "load_summary",
    "plot_comparison",
    "write_comparison",
]

_STATS = ("mean", "median")
# The paper's F_delta cell: its dB scale is unknown, so its figure does not compare with ours.
_PAPER_F_DELTA = "n/a (scale unknown)"


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
    reconstruction: dict[str, MetricSummary] | None = None  # metric -> statistics
    chance: dict[str, MetricSummary] | None = None


def load_summary(
    run_dir: str | Path, *, evaluation_name: str = EVALUATION_DIR, label: str | None = None
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
    if run_dir.exists() and not run_dir.is_dir():
        raise InverSynthError(f"run folder {str(run_dir)!r} is a file, not a folder")
    if not run_dir.is_dir():
        raise InverSynthError(f"run folder {str(run_dir)!r} does not exist")
    if not metrics_path.is_file():
        raise InverSynthError(
            f"run {str(run_dir)!r} has no {evaluation_name}/{METRICS_FILE}; "
            f"evaluate it first: python -m models.evaluate {run_dir}"
        )
    metrics = MetricsRecord.read(metrics_path)
    groups = metrics.evaluation.groups
    generator = str(metrics.dataset_identity.get("generator", ""))
    model = metrics.model
    if (run_dir / RUN_FILE).is_file():
        info = RunInfo.load(run_dir)
        check_evaluation_of_run(eval_dir, info, run_dir=run_dir)  # never another run's figures
        generator, model = info.generator_name, info.model_name
    reconstruction = read_reconstruction(eval_dir)
    return RunSummary(
        label=label or run_dir.name,
        run_dir=run_dir,
        model=model,
        generator=generator,
        n_examples=metrics.evaluation.n_examples,
        test_set=metrics.test_set,
        mpr={g: m.mpr for g, m in groups.items()},
        top1={g: m.top1 for g, m in groups.items()},
        reconstruction=None if reconstruction is None else reconstruction.summary,
        chance=None if reconstruction is None else reconstruction.chance,
    )


def compare_runs(
    run_dirs: Sequence[str | Path], *, evaluation_name: str = EVALUATION_DIR
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
    ordered = [g for g in [*PAPER_GROUPS, ALL_GROUP] if g in present]
    return ordered + sorted(present - set(ordered))


def _group_heading(group: str) -> str:
    """A group's column heading: the paper's short name, or the group's own (escaped)."""
    return markdown_text(SHORT_GROUP_NAMES.get(group, group))


def _stat(block: dict[str, MetricSummary] | None, key: str, field: str) -> float | None:
    """A statistic of a metric, None when not measured."""
    if block is None or key not in block:
        return None
    return block[key].stat(field)


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table; the cells are Markdown already (names escaped by :func:`markdown_text`)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def _paper_models(summaries: Sequence[RunSummary]) -> list[str]:
    """Models of runs on the paper's synth that the paper has figures for, in order."""
    models: list[str] = []
    for s in summaries:
        if describes(s.generator) and s.model in PAPER_MPR and s.model not in models:
            models.append(s.model)
    return models


def _mpr_section(summaries: Sequence[RunSummary], paper_models: list[str]) -> list[str]:
    groups = _groups(summaries)
    header = ["run", "model", "test examples", *(_group_heading(g) for g in groups)]
    rows = [
        [
            markdown_text(s.label),
            markdown_text(s.model),
            str(s.n_examples),
            *(f"{s.mpr[g]:.2f}" if g in s.mpr else "-" for g in groups),
        ]
        for s in summaries
    ]
    for model in paper_models:
        cells = (f"{PAPER_MPR[model]:.2f}" if g == ALL_GROUP else "-" for g in groups)
        rows.append([f"paper {model}", model, "", *cells])
    return [
        "## Parameter accuracy: mean percentile rank per group",
        "",
        "100 is perfect, 50 is chance (the paper's Table 3 layout).",
        "",
        _markdown_table(header, rows),
    ]


def _reconstruction_cells(block: dict[str, MetricSummary] | None) -> list[str]:
    return [format_metric(k, _stat(block, k, f)) for k in METRICS for f in _STATS]


def _reconstruction_section(summaries: Sequence[RunSummary], paper_models: list[str]) -> list[str]:
    header = ["run", "model", *(f"{metric_heading(k)} {f}" for k in METRICS for f in _STATS)]
    rows = []
    for s in summaries:
        if not s.reconstruction:
            continue
        label, model = markdown_text(s.label), markdown_text(s.model)
        rows.append([label, model, *_reconstruction_cells(s.reconstruction)])
        if s.chance:
            rows.append([f"{label} (random patch)", "chance", *_reconstruction_cells(s.chance)])
    for model in paper_models:
        figures = PAPER_RECONSTRUCTION.get(model)
        if figures is not None:
            cells = (
                _PAPER_F_DELTA
                if k == "f_delta" and f == "mean"
                else f"{figures[k]:.2f}"
                if k in figures and f == "mean"
                else "-"
                for k in METRICS
                for f in _STATS
            )
            rows.append([f"paper {model}", model, *cells])
    return [
        "",
        "## Reconstruction: the predicted parameters played back",
        "",
        "Mean and median over the test sounds (the paper's Table 4 layout). rho: higher "
        "is better; the others: lower is better. A random patch plays parameters drawn at "
        "random: chance level. F_delta's size depends on the dB convention (here dB re "
        "full scale, floored at -100 dB) and on the sound's length; the paper's convention is "
        f"unknown, so its F_delta is not shown ({_PAPER_F_DELTA}): compare F_delta between "
        "these runs only.",
        "",
        _markdown_table(header, rows),
    ]


def _notes(summaries: Sequence[RunSummary]) -> list[str]:
    notes = []
    missing = [s.label for s in summaries if not s.reconstruction]
    if missing and len(missing) < len(summaries):
        notes.append(
            "No reconstruction figures for "
            + ", ".join(markdown_text(label) for label in missing)
            + " (run python -m models.reconstruct on them)."
        )
    if len({s.test_set for s in summaries}) > 1:
        notes.append(
            "The runs were evaluated on different test sets ("
            + "; ".join(f"{markdown_text(s.label)}: {markdown_text(s.test_set)}" for s in summaries)
            + "): their figures do not compare directly."
        )
    return ["", *(f"Note: {n}" for n in notes)] if notes else []


def format_markdown(summaries: Sequence[RunSummary], *, paper: bool = True) -> str:
    """The two tables (Table 3 and Table 4 layouts) as Markdown, with notes."""
    paper_models = _paper_models(summaries) if paper else []
    parts = _mpr_section(summaries, paper_models)
    if any(s.reconstruction for s in summaries):
        parts += _reconstruction_section(summaries, paper_models)
    return "\n".join(parts + _notes(summaries)) + "\n"


def _csv_rows(summaries: Sequence[RunSummary]) -> tuple[list[str], list[dict[str, Any]]]:
    groups = _groups(summaries)
    fields = ["run", "model", "generator", "run_dir", "test_set", "test_examples"]
    fields += [f"mpr_{SHORT_GROUP_NAMES.get(g, g)}" for g in groups]
    fields += [f"top1_{SHORT_GROUP_NAMES.get(g, g)}" for g in groups]
    fields += [f"{k}_{f}" for k in METRICS for f in _STATS]
    fields += [f"chance_{k}_{f}" for k in METRICS for f in _STATS]
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
                for f in _STATS:
                    value = _stat(block, k, f)
                    row[f"{prefix}{k}_{f}"] = "" if value is None else value
        rows.append(row)
    return fields, rows


_CHANCE_STYLE: dict[str, Any] = {"facecolor": "0.85", "edgecolor": "0.5", "hatch": "//"}


def _run_colours(summaries: Sequence[RunSummary]) -> dict[str, str]:
    """One colour per run (Matplotlib's cycle), the same in every panel."""
    return {s.label: f"C{i % 10}" for i, s in enumerate(summaries)}


def _plot_mpr(
    ax: Any, summaries: Sequence[RunSummary], groups: list[str], colours: dict[str, str]
) -> None:
    """Grouped bars: MPR per group, one bar per run."""
    x = np.arange(len(groups))
    width = 0.8 / len(summaries)
    for i, s in enumerate(summaries):
        ax.bar(
            x + (i - (len(summaries) - 1) / 2) * width,
            [s.mpr.get(g, np.nan) for g in groups],
            width,
            label=plot_text(s.label),
            color=colours[s.label],
        )
    ax.axhline(50, color="k", ls="--", lw=1, label="chance")
    ax.set_xticks(x)
    ax.set_xticklabels([plot_text(SHORT_GROUP_NAMES.get(g, g)) for g in groups], fontsize=8)
    ax.set_ylabel("mean percentile rank")
    ax.set_ylim(0, 100)
    ax.set_title("parameter accuracy (100 = perfect)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)


def _plot_rho_stft(ax: Any, summaries: Sequence[RunSummary], colours: dict[str, str]) -> None:
    """Horizontal bars from 0: rho_STFT mean per run in the run's colour, random patches grey."""
    labels = [s.label for s in summaries]
    model = [100 * float(_stat(s.reconstruction, "rho_stft", "mean") or np.nan) for s in summaries]
    chance = [100 * float(_stat(s.chance, "rho_stft", "mean") or np.nan) for s in summaries]
    y = np.arange(len(labels))
    ax.barh(y - 0.2, model, 0.4, color=[colours[label] for label in labels])
    ax.barh(y + 0.2, chance, 0.4, **_CHANCE_STYLE)
    ax.set_yticks(y)
    ax.set_yticklabels([plot_text(label) for label in labels], fontsize=8)
    ax.invert_yaxis()  # first run on top, as in the tables
    ax.set_xlim(0, 100)  # from 0: bar lengths compare
    ax.set_xlabel("rho_STFT mean (%)")
    ax.set_title("reconstruction (higher is better)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)


def plot_comparison(summaries: Sequence[RunSummary], out: Path) -> Path:
    """MPR per group for every run (grouped bars) and rho_STFT mean per run, as PNG."""
    import matplotlib.pyplot as plt

    out = Path(out)
    fig = comparison_figure(summaries)
    try:
        with atomic_path(out) as tmp:  # never a half-drawn file under the final name
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)
    return out


def comparison_figure(summaries: Sequence[RunSummary]) -> Any:
    """The figure of :func:`plot_comparison`: each run in one colour in both panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    groups = _groups(summaries)
    colours = _run_colours(summaries)
    with_reconstruction = [s for s in summaries if s.reconstruction]
    n_panels = 2 if with_reconstruction else 1
    fig, axes = plt.subplots(
        1,
        n_panels,
        figsize=(max(6.0, 1.1 * len(groups) + 2) + 3.5 * (n_panels - 1), 4.6),
        squeeze=False,
        gridspec_kw={"width_ratios": [max(3, len(groups)), 2][:n_panels]},
    )
    _plot_mpr(axes[0][0], summaries, groups, colours)
    if with_reconstruction:
        _plot_rho_stft(axes[0][1], with_reconstruction, colours)
    # One legend for both panels, below them: it covers no bar.
    handles: list[Any] = [
        Patch(color=colours[s.label], label=plot_text(s.label)) for s in summaries
    ]
    handles.append(Line2D([], [], color="k", ls="--", lw=1, label="chance (MPR 50)"))
    if with_reconstruction:
        handles.append(Patch(label="random patch (rho_STFT)", **_CHANCE_STYLE))
    n_columns = min(len(handles), 4)
    n_rows = -(-len(handles) // n_columns)
    fig.legend(handles=handles, loc="lower center", ncol=n_columns, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06 * n_rows + 0.02, 1, 1))
    return fig


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
    write_text_atomic(files["markdown"], format_markdown(summaries, paper=paper))
    fields, rows = _csv_rows(summaries)
    with open_atomic(files["csv"], newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    if plot:
        files["plot"] = plot_comparison(summaries, out / "comparison.png")
    return files
