"""Nothing silently wrong: evaluations and models checked against their run, names escaped.

An evaluation folder is refused for another run than its own, a model for a
``run.json`` that does not describe it; names reach Markdown, HTML and figures
as typed.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from generators.cli import run_cli
from generators.errors import InverSynthError
from models.common.run import RunInfo
from models.matching.comparison import compare_runs, write_comparison
from models.matching.evaluation_folder import METRICS_FILE, RECONSTRUCTION_JSON
from models.matching.resynthesis import evaluate_reconstruction
from tests.test_reconstruction import make_evaluated_run

HOSTILE = r"<img src=x onerror=alert(1)> | *$\foo$_"


def _cli_error(main: Any, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line a command prints for bad input (exit code 2)."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two evaluated runs of the same synth and dataset: C6_sine and CE2E_sine."""
    root = tmp_path_factory.mktemp("identity")
    c6 = make_evaluated_run(root, model_name="C6", run_name="C6_sine", wrong_fraction=0.1)
    ce2e = make_evaluated_run(root, model_name="CE2E", run_name="CE2E_sine", wrong_fraction=0.6)
    evaluate_reconstruction(ce2e, workers=1, progress=False, quiet=True, methods=())
    return c6, ce2e


# --------------------------------------------------------------------------
# An evaluation folder is its run's
# --------------------------------------------------------------------------


def test_evaluations_record_their_run(two_runs: tuple[Path, Path]) -> None:
    _, ce2e = two_runs
    fingerprint = RunInfo.load(ce2e).fingerprint
    for name in (METRICS_FILE, RECONSTRUCTION_JSON):
        record = json.loads((ce2e / "evaluation" / name).read_text())
        assert record["run_fingerprint"] == fingerprint


def test_compare_refuses_another_runs_evaluation_naming_both(
    two_runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from models.compare import main

    c6, ce2e = two_runs
    with pytest.raises(InverSynthError, match=r"is of run .*CE2E_sine.* not of run .*C6_sine"):
        compare_runs([c6], evaluation_name="../CE2E_sine/evaluation")
    line = _cli_error(main, [str(c6), "--evaluation_name", "../CE2E_sine/evaluation"], capsys)
    assert "CE2E_sine" in line and "C6_sine" in line
    # Each run's own folder is fine, and says nothing.
    assert [s.model for s in compare_runs([c6, ce2e])] == ["C6", "CE2E"]
    assert "warning" not in capsys.readouterr().err


def test_reconstruct_and_report_refuse_another_runs_evaluation(
    two_runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from models.reconstruct import main as reconstruct
    from models.report import main as report

    c6, ce2e = two_runs
    other = str(ce2e / "evaluation")
    for main in (reconstruct, report):
        line = _cli_error(main, [str(c6), "--evaluation_dir", other], capsys)
        assert "CE2E_sine" in line and "C6_sine" in line
    assert not (ce2e / "evaluation" / "report.html").exists()


def test_a_moved_run_keeps_its_evaluation(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    _, ce2e = two_runs
    moved = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(ce2e, moved)
    (summary,) = compare_runs([moved])  # metrics.json names the old folder: still this run
    assert summary.model == "CE2E" and summary.reconstruction is not None


def test_an_older_evaluation_without_its_run_is_used_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = make_evaluated_run(tmp_path, run_name="C6_old")
    metrics = run_dir / "evaluation" / METRICS_FILE
    data = json.loads(metrics.read_text())
    del data["run_fingerprint"]
    metrics.write_text(json.dumps(data))
    (summary,) = compare_runs([run_dir])
    assert summary.model == "C6"
    assert "does not record which run it is of" in capsys.readouterr().err


def test_an_older_evaluation_of_another_synth_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a fingerprint, a provable mismatch is still refused, saying what differs."""
    from models.reconstruct import main as reconstruct

    ours = make_evaluated_run(tmp_path / "a", run_name="C6_sine")
    for name, n_levels, sample_rate, expected in (
        ("C6_4levels", 4, 8192, r"predictions of 2 parameters \(8 outputs\)"),
        ("C6_4096hz", 8, 4096, "sample_rate 4096, the run's 8192"),
    ):
        theirs = make_evaluated_run(
            tmp_path / name, run_name=name, n_levels=n_levels, sample_rate=sample_rate
        )
        metrics = theirs / "evaluation" / METRICS_FILE
        data = json.loads(metrics.read_text())
        del data["run_fingerprint"]
        metrics.write_text(json.dumps(data))
        argv = [str(ours), "--evaluation_dir", str(theirs / "evaluation"), "--no_chance"]
        assert re.search(expected, _cli_error(reconstruct, argv, capsys))


# --------------------------------------------------------------------------
# Names escaped
# --------------------------------------------------------------------------


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_names_are_escaped_in_the_comparison(tmp_path: Path) -> None:
    hostile = make_evaluated_run(tmp_path, run_name=HOSTILE)
    plain = make_evaluated_run(tmp_path, run_name="C1_plain", model_name="C1")
    files = write_comparison(compare_runs([hostile, plain]), tmp_path / "cmp")  # draws the plot
    markdown = files["markdown"].read_text()
    assert "<img" not in markdown and "&lt;img src=x onerror=alert(1)&gt;" in markdown
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len({_unescaped_pipes(line) for line in table}) == 1  # no cell split by a name
    assert r"\*\$\\foo\$\_" in markdown
    assert "| C1_plain | C1 |" in markdown  # a plain name stays as typed
    assert files["plot"].read_bytes()[:4] == b"\x89PNG"


def test_names_are_escaped_in_the_listening_report(tmp_path: Path) -> None:
    from models.matching.report import write_report

    run_dir = make_evaluated_run(tmp_path, run_name=HOSTILE, n_examples=12)
    page = write_report(run_dir, n_examples=1).read_text()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_a_file_name_with_dollars_draws_as_typed(tmp_path: Path) -> None:
    from models.matching.figures import plot_spectrograms

    sound = np.sin(np.linspace(0, 400, 4096)).astype(np.float32)
    out = plot_spectrograms(
        sound, sound, sample_rate=8192, out=tmp_path / "x.png", title=r"my$\foo$sound.wav"
    )
    assert Path(out).read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]
