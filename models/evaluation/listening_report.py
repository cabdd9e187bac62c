"""A listening report of an evaluated run: hear and see how well the model matches sounds.

:func:`write_report` writes ``{run_dir}/evaluation/report.html``: for a sample
of test sounds, the sound and its resynthesis (the run's synth playing the
predicted parameters) as audio players, their spectrograms, the
reconstruction metrics, and the predicted against the true value of every
parameter; above them the run's summary when the evaluation files exist:
mean percentile rank per parameter group (the groups of the run's parameter
set), the reconstruction means and medians against chance, and the figures
``models.evaluate`` drew (training curves, top-k accuracy per group, metrics
per parameter). The page is a responsive grid: two columns on a desktop
screen, one on a phone.

The page is one self-contained file: audio as WAV and images as PNG embedded
as base64 ``data:`` URIs, styles inline, no script and nothing fetched from a
network, so it opens in any browser, offline, and can be mailed or archived.

The report only reads the evaluation folder: the sounds it plays are those the
reconstruction kept (``listening.npz``, :mod:`models.evaluation.listening_sounds`);
it opens no dataset and builds no synth.
"""

from __future__ import annotations

import base64
import contextlib
import html
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InverSynthError
from generators.parameters import ALL_GROUP, ParameterSet
from models.common.metrics import ParameterMetrics, group_parameters
from models.common.records import write_text_atomic
from models.common.run import RunInfo
from models.common.spectral import HOP_LENGTH, N_FFT
from models.evaluation.evaluation_folder import (
    PLOT_FILES,
    REPORT_FILE,
    MatchingRecord,
    MetricsRecord,
    Predictions,
    ReconstructionRecord,
    default_evaluation_dir,
    evaluation_dataset_paths,
    read_metrics,
    read_reconstruction,
)
from models.evaluation.evaluation_identity import check_evaluation_of_run
from models.evaluation.listening_sounds import ListeningSounds
from models.matching.audio_io import wav_bytes
from models.matching.figures import spectrograms_png
from models.matching.legend import describe_unit, synth_label
from models.matching.match_text import LEAD_METRICS, listening_summary, true_class_note
from models.matching.prediction import class_verdict, format_value
from models.matching.sound_metrics import (
    METRICS,
    MetricSummary,
    compare_audio,
    format_metric,
    format_metrics,
    metric_heading,
)

__all__ = ["write_report"]

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto;
       max-width: 1500px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin: 1.2em 0 0.4em; }
h3 { margin: 0 0 0.4em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.name, th.name { text-align: left; }
td { white-space: nowrap; } td.name { white-space: normal; }
.grid { display: grid; gap: 1em 2em; align-items: start;
        grid-template-columns: repeat(auto-fit, minmax(min(100%, 560px), 1fr)); }
.wide { grid-column: 1 / -1; } .wide figure { text-align: center; }
.tables { display: flex; flex-wrap: wrap; gap: 0 2.5em; align-items: flex-start; }
.tables > div { max-width: 100%; min-width: 0; }
.figures { display: grid; gap: 1em; }
.scroll { overflow-x: auto; max-width: 100%; }
figure { margin: 0; } figcaption { font-size: 0.85em; color: #555; }
.example { border: 1px solid #ddd; border-radius: 6px; padding: 1em; margin: 1.2em 0;
           display: grid; gap: 0.5em 2em; align-items: start;
           grid-template-columns: minmax(0, 3fr) minmax(min(100%, 320px), 2fr); }
@media (max-width: 900px) { .example { grid-template-columns: minmax(0, 1fr); } }
@media (max-width: 600px) {
  body { padding: 0 0.5em; } .example { padding: 0.6em; }
  table { font-size: 0.78em; } th, td { padding: 0.2em 0.3em; }
}
.players { display: flex; gap: 1em 2em; flex-wrap: wrap; align-items: center; margin: 0.5em 0; }
audio { max-width: 100%; }
img { max-width: 100%; height: auto; }
.ok { color: #1a7f37; } .off { color: #7a5c00; } .far { color: #6b4e16; }
.listen { margin: 0.3em 0 0.6em; } details { margin: 0.4em 0; } summary { cursor: pointer; }
code { font-size: 0.95em; }
.muted { color: #666; font-size: 0.9em; }
"""

# The figures models.evaluate draws, in the order shown, with what they show.
_FIGURES: tuple[tuple[str, str], ...] = (
    (
        "top_k_plot",
        "Top-k accuracy per parameter group: how often the true class is among the "
        "model's k likeliest.",
    ),
    (
        "per_parameter_plot",
        "Every parameter: top-1 accuracy and mean percentile rank, chance dashed.",
    ),
    (
        "training_curves",
        "Training curves: loss, top-1 accuracy and class index error per epoch, "
        "training against validation.",
    ),
)
# Figures wider than this (pixels) span both columns; narrower ones share the right one.
_WIDE_PX = 1000
SPECTROGRAM_DPI = 80  # the examples' spectrograms: readable at the page's width
_NARROW_PX = 600  # at most this wide (a phone), spectrograms are stacked


def _other_metrics(metrics: dict[str, float]) -> str:
    return format_metrics({k: v for k, v in metrics.items() if k not in LEAD_METRICS})


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


# --------------------------------------------------------------------------
# The summary of the evaluation files
# --------------------------------------------------------------------------


def _mean(members: list[ParameterMetrics]) -> tuple[float, float]:
    """Mean MPR and mean top-1 accuracy of some parameters."""
    return (
        float(np.mean([m.mpr for m in members])),
        float(np.mean([m.top1 for m in members])),
    )


def _mpr_table(metrics: MetricsRecord, parameter_set: ParameterSet) -> str:
    """MPR and top-1 accuracy per group of the run's parameter set, one group a row."""
    by_name = {m.name: m for m in metrics.evaluation.parameters}
    if not all(name in by_name for name in parameter_set.names):
        return ""  # metrics of another parameter set: the examples below still tell
    groups = group_parameters(parameter_set)
    grouped = {n for g, names in groups.items() if g != ALL_GROUP for n in names}
    ungrouped = [n for n in parameter_set.names if n not in grouped]
    if grouped and ungrouped:  # before "All", so every parameter shows in some row
        groups = {**{g: v for g, v in groups.items() if g != ALL_GROUP}, "other": ungrouped}
        groups[ALL_GROUP] = list(parameter_set.names)
    rows = []
    for group, names in groups.items():
        mpr, top1 = _mean([by_name[n] for n in names])
        members = f"all {len(names)}" if group == ALL_GROUP else ", ".join(names)
        rows.append(
            f"<tr><td class='name'>{_e(group)}</td><td class='name'>{_e(members)}</td>"
            f"<td>{mpr:.2f}</td><td>{100 * top1:.1f}</td></tr>"
        )
    return (
        "<h2>Parameter accuracy on the test split</h2>"
        f"<p class='muted'>{metrics.evaluation.n_examples} test examples. Mean percentile "
        "rank (MPR) per parameter group: 100 is perfect, 50 is chance.</p>"
        "<div class='scroll'><table><tr><th class='name'>group</th>"
        "<th class='name'>parameters</th><th>MPR</th><th>top-1 accuracy (%)</th></tr>"
        + "".join(rows)
        + "</table></div>"
    )


def _stat(block: dict[str, MetricSummary] | None, key: str, field: str) -> str:
    if not block or key not in block:
        return "-"
    return format_metric(key, block[key].stat(field))


def _reconstruction_table(record: ReconstructionRecord) -> str:
    keys = [k for k in METRICS if k in record.summary]
    head = "".join(f"<th>{_e(metric_heading(k))}{'*' if k == 'f_delta' else ''}</th>" for k in keys)
    rows = []
    for label, block in (("model", record.summary), ("random patch", record.chance)):
        if block is None:
            continue
        for field in ("mean", "median"):
            cells = "".join(f"<td>{_stat(block, k, field)}</td>" for k in keys)
            rows.append(f"<tr><td class='name'>{_e(label)} {field}</td>{cells}</tr>")
    note = (
        "<p class='muted'>* F_delta adds up the dB differences of every STFT cell, so its "
        "size depends on the sound's length and the dB floor: compare it between runs of "
        "this toolkit, not with the paper's figures (whose scale is unknown).</p>"
        if "f_delta" in keys
        else ""
    )
    return (
        "<h2>Reconstruction of the test split</h2>"
        f"<p class='muted'>{record.n_examples} test sounds resynthesized from "
        "their predicted parameters. rho: higher is better; the others: lower is better. "
        "&ldquo;Random patch&rdquo; plays parameters drawn at random: chance level.</p>"
        f"<div class='scroll'><table><tr><th class='name'></th>{head}</tr>{''.join(rows)}"
        f"</table></div>{note}"
    )


def _matching_table(record: MatchingRecord) -> str:
    keys = [k for k in (*METRICS, "distance_db") if k in next(iter(record.methods.values()))]
    heads = "".join(
        f"<th>{_e('MR dist (dB)' if k == 'distance_db' else metric_heading(k))}</th>" for k in keys
    )
    rows = []
    for label, block in record.methods.items():
        cost = (
            f"<td>{record.renders_mean[label]:.0f}</td><td>{record.seconds_mean[label]:.2f}</td>"
            if label in record.renders_mean
            else "<td>-</td><td>-</td>"
        )
        cells = "".join(f"<td>{_stat(block, k, 'mean')}</td>" for k in keys)
        rows.append(f"<tr><td class='name'>{_e(label)} mean</td>{cells}{cost}</tr>")
    return (
        f"<h2>Matching methods on {record.n_examples} sounds</h2>"
        "<p class='muted'>network: the network's guess; lookup, search, hybrid: refined by "
        "listening, within the budget of each sound. MR dist: the matchers' multi-resolution "
        "distance.</p>"
        f"<div class='scroll'><table><tr><th class='name'></th>{heads}<th>renders</th>"
        f"<th>seconds</th></tr>{''.join(rows)}</table></div>"
    )


def _png_width(png: bytes) -> int:
    """Width in pixels from a PNG's header (0 when it is not a PNG)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 24:
        return 0
    return int.from_bytes(png[16:20], "big")


def _figures(eval_dir: Path) -> list[tuple[str, bool]]:
    """The evaluation's figures as ``<figure>`` elements, and whether each spans the page."""
    out = []
    for key, caption in _FIGURES:
        path = eval_dir / PLOT_FILES[key]
        try:
            png = path.read_bytes()
        except OSError:
            continue  # not drawn (an older evaluation, or no training history)
        out.append(
            (
                f"<figure><img alt='{_e(caption)}' src='{_data_uri(png, 'image/png')}'>"
                f"<figcaption>{_e(caption)}</figcaption></figure>",
                _png_width(png) > _WIDE_PX,
            )
        )
    return out


def _summary_html(eval_dir: Path, parameter_set: ParameterSet) -> str:
    """The evaluation files' summaries and figures, each when it exists and reads.

    The tables side by side across the page (each as wide as it needs, one
    above the other where they do not fit), the narrow figures two to a row
    below them, the wide figures across both; one column on a narrow screen.
    """
    tables = []
    with contextlib.suppress(InverSynthError):  # unreadable: the examples below still tell
        tables.append(_mpr_table(read_metrics(eval_dir), parameter_set))
    try:
        reconstruction = read_reconstruction(eval_dir)
    except InverSynthError:
        reconstruction = None
    if reconstruction is not None:
        tables.append(_reconstruction_table(reconstruction))
        if reconstruction.matching is not None:
            tables.append(_matching_table(reconstruction.matching))
    figures = _figures(eval_dir)
    narrow = "".join(f"<div>{figure}</div>" for figure, wide in figures if not wide)
    # Tables across the page (the widest has ten columns), the figures in the grid below.
    blocks = "".join(f"<div>{table}</div>" for table in tables if table)
    cells = [f"<div class='wide tables'>{blocks}</div>"] if blocks else []
    cells += [narrow] if narrow else []
    cells += [f"<div class='wide'>{figure}</div>" for figure, wide in figures if wide]
    return f"<section class='grid'>{''.join(cells)}</section>" if cells else ""


# --------------------------------------------------------------------------
# The examples
# --------------------------------------------------------------------------


_VERDICT_CSS = ("ok", "off", "far")


def _parameter_table(
    parameter_set: ParameterSet,
    true: np.ndarray,
    predicted: np.ndarray,
    *,
    heads: tuple[str, ...] = ("predicted",),
    others: tuple[np.ndarray, ...] = (),
) -> str:
    """True against predicted class of every parameter, how far off each; ``others`` beside.

    ``predicted`` (the match, when there is one) gets the mark; ``others`` (the
    network's guess beside a match) are shown for comparison.
    """
    rows = []
    for j, param in enumerate(parameter_set.parameters):
        t, p = int(true[j]), int(predicted[j])
        severity, text = class_verdict(param, t, p)
        verdict = "&#10003;" if severity == 0 else _e(text)
        beside = "".join(
            f"<td>{_e(format_value(param.levels[int(o[j])], param.unit))}</td>" for o in others
        )
        rows.append(
            f"<tr><td class='name'>{_e(param.name)}</td>"
            f"<td>{_e(format_value(param.levels[t], param.unit))}</td>"
            f"<td>{_e(format_value(param.levels[p], param.unit))}</td>"
            f"<td class='{_VERDICT_CSS[severity]}' title='{_e(text)}'>{verdict}</td>{beside}</tr>"
        )
    head = "".join(f"<th>{_e(h)}</th>" for h in heads[1:])
    return (
        "<div class='scroll'><table><tr><th class='name'>parameter</th><th>true</th>"
        f"<th>{_e(heads[0])}</th><th></th>{head}</tr>" + "".join(rows) + "</table></div>"
    )


def _legend(info: RunInfo, descriptions: tuple[str, ...]) -> str:
    """What each parameter is: name, group, unit, description (the synth's, for older runs).

    ``descriptions`` [P] are those the reconstruction kept (:class:`ListeningSounds`).
    """
    rows = "".join(
        f"<tr><td class='name'><code>{_e(p.name)}</code></td><td class='name'>{_e(p.group)}</td>"
        f"<td class='name'>{_e(describe_unit(p))}</td><td class='name'>"
        f"{_e(p.description or (descriptions[j] if j < len(descriptions) else ''))}</td></tr>"
        for j, p in enumerate(info.parameter_set.parameters)
    )
    return (
        "<details class='legend'><summary>What the parameters are</summary>"
        "<div class='scroll'><table><tr><th class='name'>parameter</th><th class='name'>group"
        "</th><th class='name'>unit</th><th class='name'>what it does</th></tr>"
        f"{rows}</table></div></details>"
    )


def _player(label: str, audio: np.ndarray, rate: int) -> str:
    return (
        f"<figure><figcaption>{_e(label)}</figcaption><audio controls preload='auto' "
        f"src='{_data_uri(wav_bytes(audio, rate), 'audio/wav')}'></audio></figure>"
    )


def _spectrogram_picture(sounds: list[np.ndarray], labels: list[str], rate: int, alt: str) -> str:
    """Spectrograms side by side, stacked on a phone's screen (readable axis labels on both)."""
    wide, narrow = (
        spectrograms_png(sounds, labels=labels, sample_rate=rate, dpi=SPECTROGRAM_DPI, portrait=p)
        for p in (False, True)
    )
    return (
        f"<picture><source media='(max-width: {_NARROW_PX}px)' "
        f"srcset='{_data_uri(narrow, 'image/png')}'>"
        f"<img class='spectrogram' alt='{_e(alt)}' src='{_data_uri(wide, 'image/png')}'>"
        "</picture>"
    )


def _details(candidates: list[tuple[str, dict[str, float]]], n_right: int, n: int) -> str:
    """The measures a listener does not read directly, worded as what they are."""
    lines = [f"{_e(label)}: {_e(_other_metrics(m))}" for label, m in candidates]
    lines.append(
        "F_delta adds up the dB differences of every spectrogram cell: thousands of dB for "
        "sounds that sound close. Compare it between matches, not with the paper's."
    )
    lines.append(_e(true_class_note(n_right, n)) + ".")
    return (
        "<details><summary>details</summary>"
        + "".join(f"<p class='muted'>{line}</p>" for line in lines)
        + "</details>"
    )


def _example_card(
    example: int,
    reference: np.ndarray,
    resynthesis: np.ndarray,
    true: np.ndarray,
    predicted: np.ndarray,
    *,
    info: RunInfo,
    refined: tuple[str, np.ndarray, np.ndarray] | None = None,
) -> str:
    """One test sound: how close it sounds, players, spectrograms, parameters, details.

    ``refined`` is a matcher's (method, audio [n_samples], class indices [P]): the
    match leads (its sound, spectrogram and parameters), the network's guess beside it.
    """
    rate = info.sample_rate
    network = ("network's guess" if refined else "resynthesis", resynthesis, predicted)
    shown = [network] if refined is None else [(f"{refined[0]} match", *refined[1:]), network]
    measured = [(label, compare_audio(reference, a, sample_rate=rate)) for label, a, _ in shown]
    lead = "<br>".join(
        (f"<strong>{_e(label)}: {_e(listening_summary(m))}</strong>" if i == 0 else
         f"{_e(label)}: {_e(listening_summary(m))}")
        for i, (label, m) in enumerate(measured)
    )  # fmt: skip
    final = shown[0][2]
    players = _player("test sound", reference, rate) + "".join(
        _player(label, audio, rate) for label, audio, _ in shown
    )
    picture = _spectrogram_picture(
        [reference, *(a for _, a, _ in shown)], ["test sound", *(label for label, _, _ in shown)],
        rate, f"spectrograms of test example {example} and of what matches it",
    )  # fmt: skip
    heads = tuple(label for label, _, _ in shown) if refined else ("predicted",)
    table = _parameter_table(
        info.parameter_set, true, final, heads=heads,
        others=tuple(indices for _, _, indices in shown[1:]),
    )  # fmt: skip
    n_right = int(np.sum(true == final))
    return (
        f"<section class='example' id='example-{example}'><div>"
        f"<h3>Test example {example}</h3><p class='listen'>{lead}</p>"
        f"<div class='players'>{players}</div>{picture}"
        f"{_details(measured, n_right, info.parameter_set.n_parameters)}</div>"
        f"{table}</section>"
    )


def _page(info: RunInfo, *, run_dir: Path, dataset_paths: list[str], body: str) -> str:
    rate = info.sample_rate
    synth = synth_label(info.generator_name, info.generator_config)
    title = f"InverSynth listening report: {info.model_name} on {synth}"
    plugin = info.generator_config.get("plugin")
    source = f"plugin {plugin}" if isinstance(plugin, str) and plugin else info.generator_name
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f"<p class='muted'>Run <code>{_e(run_dir)}</code>; model {_e(info.model_name)} "
        f"({_e(info.head)} head); synth {_e(source)}, "
        f"{info.n_samples / rate:g} s at {rate} Hz, {info.parameter_set.n_parameters} parameters; "
        f"dataset {_e(', '.join(Path(p).name for p in dataset_paths))}. "
        f"Written {_e(time.strftime('%Y-%m-%d %H:%M'))}.</p>"
        f"{body}</body></html>\n"
    )


def write_report(
    run_dir: str | Path,
    *,
    evaluation_dir: str | Path | None = None,
    n_examples: int = 8,
    seed: int = 0,
    output: str | Path | None = None,
) -> Path:
    """Write the listening report of an evaluated run.

    Parameters
    ----------
    run_dir : path
        A run folder evaluated by ``python -m models.evaluate``.
    evaluation_dir : path, optional
        Folder with ``predictions.npz`` and the sounds the reconstruction kept,
        ``listening.npz`` (default ``{run_dir}/evaluation``).
    n_examples : int > 0
        Test sounds shown (a random sample of the kept ones, the same for the
        same ``seed``).
    seed : int >= 0
    output : path, optional
        Default ``{evaluation_dir}/report.html``.

    Returns
    -------
    Path
        The HTML file.
    """
    if int(n_examples) != n_examples or n_examples <= 0:
        raise InverSynthError(f"--n_examples must be a positive integer, got {n_examples!r}")
    if int(seed) != seed or seed < 0:
        raise InverSynthError(f"--seed must be an integer >= 0, got {seed!r}")
    run_dir = Path(run_dir)
    info = RunInfo.load(run_dir)
    eval_dir = (
        Path(evaluation_dir) if evaluation_dir is not None else default_evaluation_dir(run_dir)
    )
    predictions = Predictions.load(eval_dir)
    check_evaluation_of_run(eval_dir, info, run_dir=run_dir, predictions=predictions)
    info.parameter_set.check_indices(predictions.true_indices)
    n_total = len(predictions)
    if n_total == 0:
        raise InverSynthError(f"{str(eval_dir)!r} holds no predictions")
    sounds = ListeningSounds.load(eval_dir)
    sounds.check_of(predictions, info.decode(predictions.scores), path=eval_dir)
    # A sample of the kept sounds (all of the sounds a method matched, else of every prediction).
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(len(sounds), size=min(int(n_examples), len(sounds)), replace=False))
    cards = [
        _example_card(
            int(sounds.example_indices[i]), sounds.reference[i], sounds.network[i],
            sounds.true_indices[i], sounds.predicted_indices[i], info=info,
            refined=None if sounds.match is None or sounds.match_indices is None
            else (sounds.method, sounds.match[i], sounds.match_indices[i]),
        )
        for i in picks
    ]  # fmt: skip
    dataset_paths = evaluation_dataset_paths(eval_dir, info.dataset_paths)
    body = (
        _summary_html(eval_dir, info.parameter_set)
        + f"<h2>{len(cards)} test sounds and their resyntheses</h2>"
        f"<p class='muted'>A random sample (seed {int(seed)}) of the {n_total} test examples. "
        "How close each sounds: rho_STFT (the correlation of the spectrograms) as a "
        "similarity, and the log-spectral distance (LSD) in dB. "
        f"Spectrograms: log-magnitude STFT (window {N_FFT}, hop {HOP_LENGTH}), dB re full "
        "scale.</p>" + _legend(info, sounds.descriptions) + "".join(cards)
    )
    page = _page(info, run_dir=run_dir, dataset_paths=dataset_paths, body=body)
    out = Path(output) if output is not None else eval_dir / REPORT_FILE
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out, page)
    except OSError as exc:
        raise InverSynthError(f"cannot write {str(out)!r}: {exc.strerror or exc}") from None
    return out
