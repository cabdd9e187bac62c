"""Comparing evaluated runs: the tables, the CSV, the plot, the flags."""

from __future__ import annotations

import csv
import json

import pytest

from core.errors import InverSynthError
from models.compare import main
from models.evaluation.comparison import (
    compare_runs,
    comparison_figure,
    format_markdown,
    write_comparison,
)
from models.evaluation.resynthesis import ReconstructionOptions, evaluate_reconstruction
from tests.test_reconstruction import make_evaluated_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    good = make_evaluated_run(root, wrong_fraction=0.1, model_name="C6", run_name="C6_sine")
    bad = make_evaluated_run(root, wrong_fraction=0.6, model_name="C1", run_name="C1_sine")
    evaluate_reconstruction(good, ReconstructionOptions(workers=1, progress=False, quiet=True))
    return good, bad


def test_tables_csv_and_plot(runs, tmp_path):
    good, bad = runs
    summaries = compare_runs([good, bad])
    assert [s.label for s in summaries] == ["C6_sine", "C1_sine"]
    assert summaries[0].mpr["All"] > summaries[1].mpr["All"]
    files = write_comparison(summaries, tmp_path / "cmp")
    markdown = files["markdown"].read_text()
    assert "| run | model | test examples | All |" in markdown
    good_metrics = json.loads((good / "evaluation" / "metrics.json").read_text())
    assert f"| C6_sine | C6 | 10 | {good_metrics['groups']['All']['mpr']:.2f} |" in markdown
    # Reconstruction for the run that has it, a note for the one that has not.
    reconstruction = json.loads((good / "evaluation" / "reconstruction.json").read_text())
    rho = 100 * reconstruction["summary"]["rho_stft"]["mean"]
    assert f"| C6_sine | C6 | {rho:.2f} |" in markdown
    assert "C6_sine (random patch)" in markdown
    assert "No reconstruction figures for C1_sine" in markdown
    assert "different test sets" not in markdown  # same dataset, same split
    with open(files["csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["run"] for r in rows] == ["C6_sine", "C1_sine"]
    assert float(rows[0]["mpr_All"]) == pytest.approx(good_metrics["groups"]["All"]["mpr"])
    assert float(rows[0]["f_delta_median"]) == pytest.approx(
        reconstruction["summary"]["f_delta"]["median"]
    )
    assert rows[1]["f_delta_median"] == ""
    assert files["plot"].read_bytes()[:4] == b"\x89PNG"


def test_paper_rows_only_for_the_fm_synth(runs):
    good, _ = runs
    summaries = compare_runs([good])
    assert "| paper " not in format_markdown(summaries)  # a sine-synth run
    summaries[0].generator = "fm"
    markdown = format_markdown(summaries)
    assert "| paper C6 | C6 |  | 77.81 |" in markdown
    assert "| paper C6 | C6 | 91.38 | - | - | - | n/a (scale unknown) |" in markdown
    assert "740.32" not in markdown  # the paper's F_delta does not compare with ours
    assert "| paper " not in format_markdown(summaries, paper=False)


def test_different_test_sets_are_flagged_and_names_made_unique(tmp_path):
    a = make_evaluated_run(tmp_path / "one", seed=0, run_name="C6_sine")
    b = make_evaluated_run(tmp_path / "two", seed=1, run_name="C6_sine")
    summaries = compare_runs([a, b])
    assert [s.label for s in summaries] == ["one/runs/C6_sine", "two/runs/C6_sine"]
    assert "different test sets" in format_markdown(summaries)


def test_cli_and_unevaluated_runs(runs, tmp_path, capsys):
    good, bad = runs
    out = tmp_path / "out"
    assert main([str(good), str(bad), "--output_dir", str(out), "--no_plot"]) == 0
    printed = capsys.readouterr().out
    assert "## Parameter accuracy" in printed and str(out / "comparison.csv") in printed
    assert not (out / "comparison.png").exists()
    fresh = tmp_path / "runs" / "fresh"
    fresh.mkdir(parents=True)
    with pytest.raises(InverSynthError, match=r"python -m models\.evaluate"):
        compare_runs([good, fresh])
    with pytest.raises(InverSynthError, match="does not exist"):
        compare_runs([tmp_path / "nope"])


def test_the_plot_colours_each_run_alike_and_starts_its_bars_at_zero(runs):
    import matplotlib.pyplot as plt

    good, bad = runs
    summaries = compare_runs([bad, good])  # only the second has reconstruction figures
    fig = comparison_figure(summaries)
    mpr_axes, rho_axes = fig.axes
    assert rho_axes.get_xlim()[0] == 0  # bars from 0, not cut where the lowest one ends
    mpr_colours = [tuple(bar.get_facecolor()) for bar in mpr_axes.containers[1]]  # run 2
    model_bar, chance_bar = (container[0] for container in rho_axes.containers)
    assert tuple(model_bar.get_facecolor()) == mpr_colours[0]  # the run's own colour
    assert tuple(chance_bar.get_facecolor()) != mpr_colours[0]
    # One legend below both panels, naming every run.
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()][:2] == ["C1_sine", "C6_sine"]
    plt.close(fig)
