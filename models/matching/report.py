"""A listening report of an evaluated run: hear and see how well the model matches sounds.

:func:`write_report` writes ``{run_dir}/evaluation/report.html``: for a sample of test sounds, the sound and its resynthesis (the run's synth
playing the predicted parameters) as audio players, their spectrograms, the
reconstruction metrics, and the predicted against the true value of every
parameter; above them the run's summary (mean percentile rank per parameter
group, the reconstruction means and medians against chance) when the
evaluation files exist.

The page is one self-contained file: audio as WAV and images as PNG embedded
as base64 ``data:`` URIs, styles inline, no script and nothing fetched from a
network, so it opens in any browser, offline, and can be mailed or archived.
"""

from __future__ import annotations

import base64
import contextlib
import html
import time
from pathlib import Path
from typing import Any

import numpy as np

from generators.errors import InverSynthError
from generators.parameters import ParameterSet
from models.common.records import write_text_atomic
from models.common.run import RunInfo
from models.common.stft import HOP_LENGTH, N_FFT
from models.matching.audio_io import wav_bytes
from models.matching.evaluation_folder import (
    REPORT_FILE,
    MetricsRecord,
    Predictions,
    ReconstructionRecord,
    default_evaluation_dir,
    evaluation_dataset_paths,
    read_metrics,
    read_reconstruction,
)
from models.matching.figures import spectrograms_png
from models.matching.metrics import (
    METRICS,
    MetricSummary,
    compare_audio,
    format_metric,
    format_metrics,
    metric_heading,
)
from models.matching.prediction import format_value
from models.matching.resynthesis import resynthesize

__all__ = ["write_report"]

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.name, th.name { text-align: left; }
.example { border: 1px solid #ddd; border-radius: 6px; padding: 1em; margin: 1.5em 0; }
.players { display: flex; gap: 2em; flex-wrap: wrap; align-items: center; }
.players figure { margin: 0; } figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; height: auto; }
.ok { color: #1a7f37; } .off { color: #b35900; } .far { color: #c62828; font-weight: bold; }
.muted { color: #666; font-size: 0.9em; }
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


# --------------------------------------------------------------------------
# The summary of the evaluation files
# --------------------------------------------------------------------------


def _mpr_table(metrics: MetricsRecord) -> str:
    groups = metrics.evaluation.groups
    if not groups:
        return ""
    head = "".join(f"<th>{_e(g)}</th>" for g in groups)
    cells = "".join(f"<td>{m.mpr:.2f}</td>" for m in groups.values())
    top1 = "".join(f"<td>{100 * m.top1:.1f}</td>" for m in groups.values())
    return (
        "<h2>Parameter accuracy on the test split</h2>"
        f"<p class='muted'>{metrics.evaluation.n_examples} test examples. Mean percentile "
        "rank (MPR) per parameter group: 100 is perfect, 50 is chance.</p>"
        f"<table><tr><th class='name'></th>{head}</tr>"
        f"<tr><td class='name'>MPR</td>{cells}</tr>"
        f"<tr><td class='name'>top-1 accuracy (%)</td>{top1}</tr></table>"
    )


def _stat(block: dict[str, MetricSummary] | None, key: str, field: str) -> str:
    if not block or key not in block:
        return "-"
    return format_metric(key, block[key].stat(field))


def _reconstruction_table(record: ReconstructionRecord) -> str:
    keys = [k for k in METRICS if k in record.summary]
    head = "".join(f"<th>{_e(metric_heading(k))}</th>" for k in keys)
    rows = []
    for label, block in (("model", record.summary), ("random patch", record.chance)):
        if block is None:
            continue
        for field in ("mean", "median"):
            cells = "".join(f"<td>{_stat(block, k, field)}</td>" for k in keys)
            rows.append(f"<tr><td class='name'>{_e(label)} {field}</td>{cells}</tr>")
    return (
        "<h2>Reconstruction of the test split</h2>"
        f"<p class='muted'>{record.n_examples} test sounds resynthesized from "
        "their predicted parameters. rho: higher is better; the others: lower is better. "
        "&ldquo;Random patch&rdquo; plays parameters drawn at random: chance level.</p>"
        f"<table><tr><th class='name'></th>{head}</tr>{''.join(rows)}</table>"
    )


def _summary_html(eval_dir: Path) -> str:
    """The evaluation files' summaries, each when it exists and reads."""
    html_parts = []
    with contextlib.suppress(InverSynthError):  # unreadable: the examples below still tell
        html_parts.append(_mpr_table(read_metrics(eval_dir)))
    try:
        reconstruction = read_reconstruction(eval_dir)
    except InverSynthError:
        reconstruction = None
    if reconstruction is not None:
        html_parts.append(_reconstruction_table(reconstruction))
    return "".join(html_parts)


# --------------------------------------------------------------------------
# The examples
# --------------------------------------------------------------------------


def _parameter_table(parameter_set: ParameterSet, true: np.ndarray, predicted: np.ndarray) -> str:
    rows = []
    for j, param in enumerate(parameter_set.parameters):
        t, p = int(true[j]), int(predicted[j])
        off = abs(p - t)
        css = "ok" if off == 0 else "off" if off == 1 else "far"
        verdict = "&#10003;" if off == 0 else f"{off} class{'es' if off > 1 else ''} off"
        rows.append(
            f"<tr><td class='name'>{_e(param.name)}</td>"
            f"<td>{_e(format_value(param.levels[t], param.unit))}</td>"
            f"<td>{_e(format_value(param.levels[p], param.unit))}</td>"
            f"<td class='{css}'>{verdict}</td></tr>"
        )
    return (
        "<table><tr><th class='name'>parameter</th><th>true</th><th>predicted</th><th></th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _example_card(
    example: int,
    reference: np.ndarray,
    resynthesis: np.ndarray,
    true: np.ndarray,
    predicted: np.ndarray,
    *,
    info: RunInfo,
) -> str:
    """One test sound: players, spectrograms, metrics, predicted vs true parameters."""
    rate = info.sample_rate
    metrics = compare_audio(reference, resynthesis, sample_rate=rate)
    png = spectrograms_png(
        reference, resynthesis, sample_rate=rate, labels=("test sound", "resynthesis"), dpi=80
    )
    n_right = int(np.sum(true == predicted))
    return (
        f"<section class='example' id='example-{example}'>"
        f"<h3>Test example {example}</h3>"
        f"<p>{n_right} of {info.parameter_set.n_parameters} parameters exactly right. "
        f"{_e(format_metrics(metrics))}</p>"
        "<div class='players'>"
        f"<figure><figcaption>test sound</figcaption><audio controls preload='auto' "
        f"src='{_data_uri(wav_bytes(reference, rate), 'audio/wav')}'></audio></figure>"
        f"<figure><figcaption>resynthesis</figcaption><audio controls preload='auto' "
        f"src='{_data_uri(wav_bytes(resynthesis, rate), 'audio/wav')}'></audio></figure>"
        "</div>"
        f"<img alt='spectrograms of test example {example} and its resynthesis' "
        f"src='{_data_uri(png, 'image/png')}'>"
        f"{_parameter_table(info.parameter_set, true, predicted)}"
        "</section>"
    )


def _read_sample(
    info: RunInfo, dataset_paths: list[str], sample: Predictions
) -> tuple[np.ndarray, np.ndarray]:
    """The test sounds of ``sample`` [n, n_samples] and their resyntheses [n, n_samples]."""
    from generators.dataset import open_dataset
    from models.common.run import check_dataset

    with open_dataset(dataset_paths) as dataset:
        check_dataset(info, dataset)
        reference, labels = dataset.read(sample.example_indices)
    if not np.array_equal(labels, sample.true_indices):
        raise InverSynthError(
            f"the dataset {dataset_paths} no longer matches the saved predictions; "
            "evaluate the run again"
        )
    predicted = info.parameter_set.decode(sample.scores)
    (result,) = resynthesize(
        info.generator_name,
        info.generator_config,
        [(predicted, None, None)],
        workers=1,
        keep_audio=True,
    )
    assert result.audio is not None  # keep_audio=True
    return reference, result.audio


def _page(info: RunInfo, *, run_dir: Path, dataset_paths: list[str], body: str) -> str:
    rate = info.sample_rate
    title = f"InverSynth listening report: {info.model_name} on the {info.generator_name} synth"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f"<p class='muted'>Run <code>{_e(run_dir)}</code>; model {_e(info.model_name)} "
        f"({_e(info.head)} head); synth {_e(info.generator_name)}, "
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
        Folder with ``predictions.npz`` (default ``{run_dir}/evaluation``).
    n_examples : int > 0
        Test sounds shown (a random sample, the same for the same ``seed``).
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
    info.parameter_set.check_indices(predictions.true_indices)
    n_total = len(predictions)
    if n_total == 0:
        raise InverSynthError(f"{str(eval_dir)!r} holds no predictions")
    rng = np.random.default_rng(seed)
    sample = predictions.take(
        np.sort(rng.choice(n_total, size=min(int(n_examples), n_total), replace=False))
    )
    dataset_paths = evaluation_dataset_paths(eval_dir, info.dataset_paths)
    reference, resynthesized = _read_sample(info, dataset_paths, sample)
    predicted = info.parameter_set.decode(sample.scores)
    cards = [
        _example_card(
            int(example), reference[i], resynthesized[i], sample.true_indices[i], predicted[i],
            info=info,
        )
        for i, example in enumerate(sample.example_indices)
    ]  # fmt: skip
    body = (
        _summary_html(eval_dir) + f"<h2>{len(cards)} test sounds and their resyntheses</h2>"
        f"<p class='muted'>A random sample (seed {int(seed)}) of the {n_total} test examples. "
        f"Spectrograms: log-magnitude STFT (window {N_FFT}, hop {HOP_LENGTH}), dB re full "
        "scale.</p>" + "".join(cards)
    )
    page = _page(info, run_dir=run_dir, dataset_paths=dataset_paths, body=body)
    out = Path(output) if output is not None else eval_dir / REPORT_FILE
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out, page)
    except OSError as exc:
        raise InverSynthError(f"cannot write {str(out)!r}: {exc.strerror or exc}") from None
    return out
