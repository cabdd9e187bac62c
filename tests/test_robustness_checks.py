"""Nothing silently wrong: evaluations and models checked against their run, names escaped.

An evaluation folder is refused for another run than its own, a model for a
``run.json`` that does not describe it; names reach Markdown, HTML and figures
as typed.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from models.matching.comparison import compare_runs, write_comparison
from tests.test_reconstruction import make_evaluated_run

HOSTILE = r"<img src=x onerror=alert(1)> | *$\foo$_"


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
