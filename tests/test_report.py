"""The listening report: a self-contained page whose every image and audio player loads.

The page is opened in headless Chromium (Debian package ``chromium``). Without
Chromium the browser test skips, unless ``CI`` is set: CI installs it, so
there a missing browser is a failure.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import h5py
import matplotlib.pyplot as plt
import numpy as np
import pytest

import generators.dataset
import generators.sound_generator
from core.errors import InverSynthError
from generators.parameters import Parameter, ParameterSet
from models.common.plots import (
    plot_history,
    plot_per_parameter,
    plot_top_k_by_group,
    top_k_figure,
)
from models.common.run import RunInfo
from models.evaluation import resynthesis
from models.evaluation.evaluation_folder import PLOT_FILES, Matches, read_metrics
from models.evaluation.listening_report import (
    SPECTROGRAM_DPI,
    _page,
    _parameter_table,
    _png_width,
    write_report,
)
from models.evaluation.match_evaluation import MatchingOptions
from models.evaluation.resynthesis import ReconstructionOptions, evaluate_reconstruction
from models.matching.figures import FONT_PT, spectrograms_png
from models.matching.legend import synth_label
from models.matching.prediction import class_verdict, format_value
from models.report import main
from tests.test_reconstruction import make_evaluated_run

# Appended to a copy of the page: after load, waits for every audio element's
# metadata (or error) and writes what loaded into the DOM for --dump-dom.
_CHECK_SCRIPT = """
<script>
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var audios = Array.prototype.slice.call(document.querySelectorAll("audio"));
  var badImages = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  var waits = audios.map(function (a) {
    return new Promise(function (resolve) {
      function ok() { return a.readyState >= 1 && isFinite(a.duration) && a.duration > 0; }
      if (ok()) { resolve(true); return; }
      if (a.error) { resolve(false); return; }
      a.addEventListener("loadedmetadata", function () { resolve(ok()); });
      a.addEventListener("error", function () { resolve(false); });
    });
  });
  Promise.all(waits).then(function (oks) {
    var out = document.createElement("pre");
    out.id = "inversynth-check";
    out.textContent = "RESULT" + JSON.stringify({
      images: images.length,
      bad_images: badImages.length,
      audio: audios.length,
      bad_audio: oks.filter(function (x) { return !x; }).length,
      durations: audios.map(function (a) { return a.duration; })
    });
    document.body.appendChild(out);
  });
});
</script>
"""


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "Chromium is not installed (sudo apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must install it")
        pytest.skip(message)
    return path


def _load_in_browser(page: Path, tmp_path: Path) -> dict:
    """Open a copy of ``page`` with the check script in headless Chromium; its verdict."""
    browser = _chromium()
    checked = tmp_path / f"checked_{page.name}"
    checked.write_text(
        page.read_text(encoding="utf-8").replace("</body>", _CHECK_SCRIPT + "</body>"),
        encoding="utf-8",
    )
    profile = tmp_path / "chromium-profile"
    completed = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            checked.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = re.search(r'<pre id="inversynth-check">RESULT(.*?)</pre>', completed.stdout)
    assert found, (
        f"the page never reported (exit {completed.returncode}): {completed.stderr[-2000:]}"
    )
    return json.loads(found.group(1))


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.sources.append((tag, value))


def _draw_figures(run_dir: Path) -> None:
    """The figures models.evaluate draws, from a made-up training history."""
    history = ["epoch,loss,val_loss,top1,val_top1,index_mae,val_index_mae"]
    history += [f"{e},{1 / e},{1.2 / e},{0.1 * e},{0.08 * e},{3 / e},{3.3 / e}" for e in (1, 2, 3)]
    (run_dir / "history.csv").write_text("\n".join(history) + "\n")
    evaluation = read_metrics(run_dir / "evaluation").evaluation
    out = run_dir / "evaluation"
    plot_history(run_dir / "history.csv", out / PLOT_FILES["training_curves"])
    plot_per_parameter(evaluation, out / PLOT_FILES["per_parameter_plot"])
    plot_top_k_by_group(evaluation, out / PLOT_FILES["top_k_plot"])


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    run_dir = make_evaluated_run(root, n_examples=40, wrong_fraction=0.4)
    evaluate_reconstruction(run_dir, ReconstructionOptions(workers=1, progress=False, quiet=True))
    _draw_figures(run_dir)
    return write_report(run_dir, n_examples=4, seed=3)


def test_report_is_self_contained(report):
    page = report.read_text(encoding="utf-8")
    assert report.name == "report.html" and report.parent.name == "evaluation"
    collector = _Collector()
    collector.feed(page)
    tags = [tag for tag, _ in collector.sources]
    assert tags.count("audio") == 8 and tags.count("img") == 4 + 3  # examples, evaluation figures
    # Nothing is fetched: every source is embedded.
    assert all(
        src.startswith(("data:audio/wav;base64,", "data:image/png;base64,"))
        for _, src in collector.sources
    )
    assert "http://" not in page and "https://" not in page
    # The summaries of the evaluation files and the parameter tables are there.
    assert "Mean percentile rank" in page and "random patch median" in page
    assert page.count("<th>predicted</th>") == 4
    assert "frequency_hz" in page and "Hz" in page
    for caption in ("Training curves", "Top-k accuracy per parameter group", "Every parameter"):
        assert f"<figcaption>{caption}" in page
    # A responsive grid: two columns where the screen is wide, one on a phone.
    assert "grid-template-columns" in page and "@media (max-width: 600px)" in page


def test_every_image_and_audio_player_loads_in_a_browser(report, tmp_path):
    result = _load_in_browser(report, tmp_path)
    assert result["images"] == 7 and result["bad_images"] == 0
    assert result["audio"] == 8 and result["bad_audio"] == 0
    assert result["durations"] == pytest.approx([0.5] * 8)  # 4096 samples at 8192 Hz


def test_the_browser_check_catches_broken_media(report, tmp_path):
    # The check above could pass vacuously; here a broken player and image must show.
    broken = tmp_path / "broken.html"
    page = report.read_text(encoding="utf-8")
    page = page.replace(
        "</body>",
        "<audio src='data:audio/wav;base64,AAAA'></audio>"
        "<img src='data:image/png;base64,AAAA'></body>",
    )
    broken.write_text(page, encoding="utf-8")
    result = _load_in_browser(broken, tmp_path)
    assert result["bad_audio"] == 1 and result["bad_images"] == 1


def test_report_without_reconstruction_summary_and_cli(tmp_path, capsys):
    run_dir = make_evaluated_run(tmp_path, n_examples=40)
    evaluate_reconstruction(
        run_dir, ReconstructionOptions(workers=1, progress=False, quiet=True, chance=False)
    )
    (run_dir / "evaluation" / "reconstruction.json").unlink()  # the sounds stay, no summary
    out = tmp_path / "elsewhere" / "r.html"
    assert main([str(run_dir), "--n_examples", "50", "--output", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    page = out.read_text(encoding="utf-8")
    assert page.count("<audio") == 20  # all 10 test examples, 2 players each
    assert "Reconstruction of the test split" not in page  # not evaluated yet
    # The same seed picks the same examples.
    again = write_report(run_dir, n_examples=3, seed=7, output=tmp_path / "a.html")
    other = write_report(run_dir, n_examples=3, seed=7, output=tmp_path / "b.html")
    ids = [re.findall(r"id='example-(\d+)'", p.read_text()) for p in (again, other)]
    assert ids[0] == ids[1] and len(ids[0]) == 3


def test_report_refuses_an_unevaluated_run(tmp_path):
    run_dir = make_evaluated_run(tmp_path)
    (run_dir / "evaluation" / "predictions.npz").unlink()
    with pytest.raises(InverSynthError, match="evaluate the run first"):
        write_report(run_dir)
    with pytest.raises(InverSynthError, match="n_examples"):
        write_report(run_dir, n_examples=0)


def test_the_title_names_a_plugin_by_its_file(tmp_path):
    assert synth_label("vst", {"plugin": "/usr/lib/vst/amsynth_vst.so"}) == "amsynth"
    assert synth_label("vst", {"plugin": "/usr/lib/vst/Nekobi-vst.so"}) == "Nekobi"
    assert synth_label("vst", {"plugin": "/x/Surge XT.vst3/"}) == "Surge XT"
    assert synth_label("fm", {"sample_rate": 16384}) == "the fm synth"
    info = RunInfo.load(make_evaluated_run(tmp_path))
    plugin_run = dataclasses.replace(
        info, generator_name="vst", generator_config={"plugin": "/usr/lib/vst/amsynth_vst.so"}
    )
    page = _page(plugin_run, run_dir=tmp_path, dataset_paths=[], body="")
    assert "<h1>InverSynth listening report: C6 on amsynth</h1>" in page
    assert "synth plugin /usr/lib/vst/amsynth_vst.so" in page


def _with_groups(run_dir: Path, groups: dict[str, str]) -> None:
    """Give the run's parameters reporting groups (groups are for reports: the dataset matches)."""
    path = run_dir / "run.json"
    record = json.loads(path.read_text())
    for parameter in record["parameter_set"]["parameters"]:
        parameter["group"] = groups.get(parameter["name"], "")
    path.write_text(json.dumps(record))


def _group_rows(page: str) -> list[tuple[str, str]]:
    return re.findall(r"<tr><td class='name'>([^<]*)</td><td class='name'>([^<]*)</td>", page)


def test_the_group_table_lists_the_groups_of_the_parameter_set(tmp_path):
    run_dir = make_evaluated_run(tmp_path, n_examples=40)
    evaluate_reconstruction(
        run_dir, ReconstructionOptions(workers=1, progress=False, quiet=True, chance=False)
    )
    _with_groups(run_dir, {"frequency_hz": "Pitch", "amplitude": "Level"})
    page = write_report(run_dir, n_examples=1).read_text()
    assert _group_rows(page) == [
        ("Pitch", "frequency_hz"),
        ("Level", "amplitude"),
        ("All", "all 2"),
    ]
    # A parameter without a group still shows in a row of its own kind.
    _with_groups(run_dir, {"frequency_hz": "Pitch"})
    page = write_report(run_dir, n_examples=1).read_text()
    assert _group_rows(page) == [
        ("Pitch", "frequency_hz"),
        ("other", "amplitude"),
        ("All", "all 2"),
    ]


def test_an_unordered_switch_is_right_or_wrong_not_classes_off():
    parameter_set = ParameterSet(
        [
            Parameter("osc1_waveform", [0.0, 0.25, 0.5, 0.75]),
            Parameter("filter_cutoff", [0.0, 0.25, 0.5, 0.75]),
        ]
    )
    wrong = _parameter_table(parameter_set, np.array([0, 0]), np.array([2, 2]))
    rows = re.findall(
        r"<tr><td class='name'>(\w+)</td>.*?<td class='(\w+)'[^>]*>([^<]*)</td>", wrong
    )
    assert rows == [("osc1_waveform", "far", "wrong"), ("filter_cutoff", "far", "2 classes off")]
    right = _parameter_table(parameter_set, np.array([1, 3]), np.array([1, 2]))
    rows = re.findall(r"<tr><td class='name'>(\w+)</td>.*?<td class='(\w+)' title='([^']*)'", right)
    assert rows == [("osc1_waveform", "ok", "right"), ("filter_cutoff", "off", "1 class off")]
    # A parameter that says whether it is ordered is taken at its word.
    declared: Any = SimpleNamespace(name="filter_cutoff", ordered=False)
    assert class_verdict(declared, 0, 2) == (2, "wrong")
    declared = SimpleNamespace(name="osc1_waveform", ordered=True)
    assert class_verdict(declared, 0, 2) == (2, "2 classes off")


def test_figures_keep_their_legends_off_the_data(report):
    evaluation = read_metrics(report.parent).evaluation
    fig = top_k_figure(evaluation, title="t")
    fig.canvas.draw()
    (ax,) = fig.axes
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 > ax.get_window_extent().x1  # right of the axes, over no curve
    plt.close(fig)


def test_the_report_plays_the_network_and_the_hybrid_match_side_by_side(tmp_path):
    run_dir = make_evaluated_run(tmp_path, n_examples=40, wrong_fraction=0.5)
    evaluate_reconstruction(
        run_dir,
        ReconstructionOptions(
            workers=1,
            progress=False,
            quiet=True,
            matching=MatchingOptions(methods=("network", "hybrid"), n_examples=3, max_renders=30),
        ),
    )
    page = write_report(run_dir, n_examples=8, output=tmp_path / "r.html").read_text()
    # Only the 3 matched sounds are shown, each with 3 players: sound, hybrid, network.
    assert re.findall(r"id='example-(\d+)'", page) == ["30", "31", "32"]
    assert page.count("<audio") == 9 and "Matching methods on 3 sounds" in page
    # How close it sounds leads, the match first; the rest is in the details.
    assert page.count("<p class='listen'><strong>hybrid match: ") == 3
    assert page.count("% similar (rho_STFT)") == 6 and page.count("<summary>details</summary>") == 3
    assert "parameters at their true class: many settings" in page
    assert page.count("<summary>What the parameters are</summary>") == 1  # the legend
    # The spectrograms and the parameters are the match's, the network's beside them.
    assert page.count("<th>hybrid match</th><th></th><th>network&#x27;s guess</th>") == 3
    matches = Matches.load(run_dir / "evaluation")
    assert matches is not None
    info = RunInfo.load(run_dir)
    for i, card in enumerate(page.split("<section class='example'")[1:]):
        values = re.findall(
            r"<tr><td class='name'>amplitude</td><td>[^<]*</td><td>([^<]*)</td>", card
        )
        amplitude = info.parameter_set["amplitude"]
        assert values == [format_value(amplitude.levels[matches.indices["hybrid"][i][1]], "")]
        png = base64.b64decode(
            re.findall(r"class='spectrogram'[^>]*src='data:image/png;base64,([^']*)'", card)[0]
        )
        three = spectrograms_png(
            [np.zeros(4096)] * 3, labels=["a", "b", "c"], sample_rate=8192, dpi=SPECTROGRAM_DPI
        )
        assert _png_width(png) == _png_width(three)  # the test sound, the match, the network
    # Without matches, two players per sound as before.
    evaluate_reconstruction(
        run_dir, ReconstructionOptions(workers=1, progress=False, quiet=True)
    )  # the network alone
    plain = write_report(run_dir, n_examples=8, output=tmp_path / "p.html").read_text()
    assert plain.count("<audio") == 16 and "hybrid match" not in plain


# Appended to a copy of the page, which opens in a frame of the width asked (a browser
# window is at least 500 pixels wide): what overflows, and at what scale the spectrograms show.
_LAYOUT_SCRIPT = """
<script>
window.addEventListener("load", function () {
  function all(selector) { return Array.prototype.slice.call(document.querySelectorAll(selector)); }
  parent.postMessage("LAYOUT" + JSON.stringify({
    width: window.innerWidth,
    page: document.documentElement.scrollWidth,
    overflow: all(".scroll").filter(function (e) { return e.scrollWidth > e.clientWidth + 1; })
      .map(function (e) { return e.textContent.slice(0, 60); }),
    spectrograms: all("img.spectrogram").map(function (i) { return i.clientWidth / i.naturalWidth; })
  }), "*");
});
</script>
"""
_FRAME = """<!DOCTYPE html><html><body style='margin:0'>
<iframe src='{src}' style='width:{width}px;height:900px;border:0'></iframe>
<script>
window.addEventListener("message", function (event) {{
  var out = document.createElement("pre");
  out.id = "inversynth-layout";
  out.textContent = event.data;
  document.body.appendChild(out);
}});
</script></body></html>
"""


def _layout_in_browser(page: Path, tmp_path: Path, width: int) -> dict:
    """Open ``page`` in headless Chromium, ``width`` CSS pixels wide; what overflows, how large."""
    browser = _chromium()
    checked = tmp_path / f"layout_{width}_{page.name}"
    checked.write_text(page.read_text().replace("</body>", _LAYOUT_SCRIPT + "</body>"))
    frame = tmp_path / f"frame_{width}.html"
    frame.write_text(_FRAME.format(src=checked.name, width=width))
    completed = subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--disable-background-networking", "--disable-component-update", "--no-first-run",
            "--allow-file-access-from-files", f"--user-data-dir={tmp_path / f'profile-{width}'}",
            f"--window-size={width + 100},1000", "--force-device-scale-factor=1",
            "--virtual-time-budget=20000", "--dump-dom", frame.resolve().as_uri(),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    found = re.search(r'<pre id="inversynth-layout">LAYOUT(.*?)</pre>', completed.stdout)
    assert found, (
        f"the page never reported (exit {completed.returncode}): {completed.stderr[-2000:]}"
    )
    return json.loads(found.group(1))


@pytest.fixture(scope="module")
def matched_report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("matched")
    run_dir = make_evaluated_run(root, n_examples=40, wrong_fraction=0.5)
    evaluate_reconstruction(
        run_dir,
        ReconstructionOptions(
            workers=1,
            progress=False,
            quiet=True,
            matching=MatchingOptions(
                methods=("network", "lookup", "hybrid"), n_examples=2, max_renders=30
            ),
        ),
    )
    _draw_figures(run_dir)
    return write_report(run_dir, n_examples=2)


@pytest.mark.parametrize("width", [1400, 390])
def test_the_report_reads_on_a_desktop_and_on_a_phone(matched_report, tmp_path, width):
    layout = _layout_in_browser(matched_report, tmp_path, width)
    assert layout["width"] == width and layout["page"] <= width  # nothing wider than the screen
    if width >= 1000:  # a desktop: every table whole, none behind a scroll bar
        assert layout["overflow"] == []
    # The spectrograms' axis labels stay readable: at least 9 CSS pixels high.
    assert len(layout["spectrograms"]) == 2
    label_px = FONT_PT * SPECTROGRAM_DPI / 72
    assert all(scale * label_px >= 9 for scale in layout["spectrograms"]), layout


def test_the_report_reads_the_evaluation_folder_only(tmp_path, monkeypatch):
    """The report renders nothing and opens no dataset: the reconstruction kept its sounds."""
    run_dir = make_evaluated_run(tmp_path, n_examples=40, wrong_fraction=0.5)
    evaluate_reconstruction(
        run_dir,
        ReconstructionOptions(
            workers=1,
            progress=False,
            quiet=True,
            matching=MatchingOptions(methods=("network", "hybrid"), n_examples=3, max_renders=30),
        ),
    )
    expected = write_report(run_dir, n_examples=2, seed=1, output=tmp_path / "a.html")

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the report opened a dataset or built a synth")

    monkeypatch.setattr(h5py, "File", refused)
    monkeypatch.setattr(generators.dataset, "open_dataset", refused)
    monkeypatch.setattr(generators.sound_generator, "load_generator", refused)
    monkeypatch.setattr(resynthesis, "load_generator", refused)
    monkeypatch.setattr(resynthesis, "map_in_workers", refused)
    page = write_report(run_dir, n_examples=2, seed=1, output=tmp_path / "b.html")
    # The same page (but for the minute it was written in), every sound played.
    stamp = re.compile(r"Written [^.]*\.")
    assert stamp.sub("", page.read_text()) == stamp.sub("", expected.read_text())
    assert page.read_text().count("<audio") == 6


def test_the_report_refuses_sounds_of_other_predictions(tmp_path):
    run_dir = make_evaluated_run(tmp_path, n_examples=40)
    evaluate_reconstruction(
        run_dir, ReconstructionOptions(workers=1, progress=False, quiet=True, chance=False)
    )
    path = run_dir / "evaluation" / "predictions.npz"
    with np.load(path) as data:
        arrays = dict(data)
    arrays["scores"] = arrays["scores"][:, ::-1].copy()  # evaluated again, another guess
    np.savez(path, **arrays)
    with pytest.raises(InverSynthError, match="other predictions"):
        write_report(run_dir)
    (run_dir / "evaluation" / "listening.npz").unlink()
    with pytest.raises(InverSynthError, match=r"models\.reconstruct"):
        write_report(run_dir)
