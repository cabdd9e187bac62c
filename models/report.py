"""A listening report of an evaluated run: hear and see how well the model matches sounds.

``python -m models.report runs/C6_fm`` writes ``runs/C6_fm/evaluation/report.html``:
for a sample of test sounds, the sound and its resynthesis (the run's synth
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

import argparse
import base64
import html
import io
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from generators.cli import make_parser, positive_int, run_cli
from generators.errors import InverSynthError
from models.common.audio_io import wav_bytes
from models.common.reconstruction import METRICS, compare_audio, format_metric
from models.predict import format_metrics, format_value, plot_comparison
from models.reconstruct import (
    METRICS_FILE,
    RECONSTRUCTION_JSON,
    add_evaluated_run_arguments,
    evaluation_dataset_paths,
    load_predictions,
    resynthesize,
)

__all__ = ["REPORT_FILE", "get_parser", "main", "write_report"]

REPORT_FILE = "report.html"

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


def _png(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    plot_comparison(
        reference,
        estimate,
        sample_rate=sample_rate,
        out=buffer,
        labels=("test sound", "resynthesis"),
        dpi=80,
    )
    return buffer.getvalue()


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _mpr_table(metrics: dict[str, Any]) -> str:
    groups = metrics.get("groups", {})
    if not groups:
        return ""
    head = "".join(f"<th>{_e(g)}</th>" for g in groups)
    cells = "".join(f"<td>{float(m['mpr']):.2f}</td>" for m in groups.values())
    top1 = "".join(f"<td>{100 * float(m['top1']):.1f}</td>" for m in groups.values())
    return (
        "<h2>Parameter accuracy on the test split</h2>"
        f"<p class='muted'>{_e(metrics.get('n_examples', '?'))} test examples. Mean percentile "
        "rank (MPR) per parameter group: 100 is perfect, 50 is chance.</p>"
        f"<table><tr><th class='name'></th>{head}</tr>"
        f"<tr><td class='name'>MPR</td>{cells}</tr>"
        f"<tr><td class='name'>top-1 accuracy (%)</td>{top1}</tr></table>"
    )


def _stat(block: dict[str, Any] | None, key: str, field: str) -> str:
    if not block or key not in block:
        return "-"
    return format_metric(key, block[key].get(field))


def _reconstruction_table(result: dict[str, Any]) -> str:
    summary = result.get("summary", {})
    chance = result.get("chance")
    keys = [k for k in METRICS if k in summary]
    head = "".join(
        f"<th>{_e(METRICS[k].label)}"
        f"{' (%)' if k.startswith('rho') else (' (' + METRICS[k].unit + ')') if METRICS[k].unit else ''}"
        "</th>"
        for k in keys
    )
    rows = []
    for label, block in (("model", summary), ("random patch", chance)):
        if block is None:
            continue
        for field in ("mean", "median"):
            cells = "".join(f"<td>{_stat(block, k, field)}</td>" for k in keys)
            rows.append(f"<tr><td class='name'>{_e(label)} {field}</td>{cells}</tr>")
    return (
        "<h2>Reconstruction of the test split</h2>"
        f"<p class='muted'>{_e(result.get('n_examples', '?'))} test sounds resynthesized from "
        "their predicted parameters. rho: higher is better; the others: lower is better. "
        "&ldquo;Random patch&rdquo; plays parameters drawn at random: chance level.</p>"
        f"<table><tr><th class='name'></th>{head}</tr>{''.join(rows)}</table>"
    )


def _parameter_table(parameter_set: Any, true: np.ndarray, predicted: np.ndarray) -> str:
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
    from generators.dataset import open_dataset
    from models.common.run import EVALUATION_DIR, RunInfo, check_dataset

    if int(n_examples) != n_examples or n_examples <= 0:
        raise InverSynthError(f"--n_examples must be a positive integer, got {n_examples!r}")
    if int(seed) != seed or seed < 0:
        raise InverSynthError(f"--seed must be an integer >= 0, got {seed!r}")
    run_dir = Path(run_dir)
    info = RunInfo.load(run_dir)
    eval_dir = Path(evaluation_dir) if evaluation_dir is not None else run_dir / EVALUATION_DIR
    predictions = load_predictions(eval_dir)
    parameter_set = info.parameter_set
    n_total = predictions["example_indices"].shape[0]
    if n_total == 0:
        raise InverSynthError(f"{str(eval_dir)!r} holds no predictions")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n_total, size=min(int(n_examples), n_total), replace=False))
    example_indices = predictions["example_indices"][rows].astype(np.int64)
    true = parameter_set.check_indices(predictions["true_indices"][rows])
    predicted = parameter_set.decode(predictions["scores"][rows])

    dataset_paths = evaluation_dataset_paths(eval_dir, info.dataset_paths)
    with open_dataset(dataset_paths) as dataset:
        check_dataset(info, dataset)
        reference, labels = dataset.read(example_indices)
    if not np.array_equal(labels, true):
        raise InverSynthError(
            f"the dataset {dataset_paths} no longer matches the saved predictions; "
            "evaluate the run again"
        )
    (result,) = resynthesize(
        info.generator_name,
        info.generator_config,
        [(predicted, None, None)],
        workers=1,
        keep_audio=True,
    )
    assert result.audio is not None  # keep_audio=True
    resynthesized = result.audio  # [n, n_samples]

    rate = info.sample_rate
    cards = []
    for i, example in enumerate(example_indices):
        metrics = compare_audio(reference[i], resynthesized[i], sample_rate=rate)
        png = _png(reference[i], resynthesized[i], rate)
        n_right = int(np.sum(true[i] == predicted[i]))
        cards.append(
            f"<section class='example' id='example-{int(example)}'>"
            f"<h3>Test example {int(example)}</h3>"
            f"<p>{n_right} of {parameter_set.n_parameters} parameters exactly right. "
            f"{_e(format_metrics(metrics))}</p>"
            "<div class='players'>"
            f"<figure><figcaption>test sound</figcaption><audio controls preload='auto' "
            f"src='{_data_uri(wav_bytes(reference[i], rate), 'audio/wav')}'></audio></figure>"
            f"<figure><figcaption>resynthesis</figcaption><audio controls preload='auto' "
            f"src='{_data_uri(wav_bytes(resynthesized[i], rate), 'audio/wav')}'></audio></figure>"
            "</div>"
            f"<img alt='spectrograms of test example {int(example)} and its resynthesis' "
            f"src='{_data_uri(png, 'image/png')}'>"
            f"{_parameter_table(parameter_set, true[i], predicted[i])}"
            "</section>"
        )

    summary_html = ""
    metrics_json = _read_json(eval_dir / METRICS_FILE)
    if metrics_json:
        summary_html += _mpr_table(metrics_json)
    reconstruction_json = _read_json(eval_dir / RECONSTRUCTION_JSON)
    if reconstruction_json:
        summary_html += _reconstruction_table(reconstruction_json)

    title = f"InverSynth listening report: {info.model_name} on the {info.generator_name} synth"
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f"<p class='muted'>Run <code>{_e(run_dir)}</code>; model {_e(info.model_name)} "
        f"({_e(info.head)} head); synth {_e(info.generator_name)}, "
        f"{info.n_samples / rate:g} s at {rate} Hz, {parameter_set.n_parameters} parameters; "
        f"dataset {_e(', '.join(Path(p).name for p in dataset_paths))}. "
        f"Written {_e(time.strftime('%Y-%m-%d %H:%M'))}.</p>"
        f"{summary_html}"
        f"<h2>{len(cards)} test sounds and their resyntheses</h2>"
        f"<p class='muted'>A random sample (seed {int(seed)}) of the {n_total} test examples. "
        "Spectrograms: log-magnitude STFT (window 512, hop 256), dB re full scale.</p>"
        + "".join(cards)
        + "</body></html>\n"
    )
    out = Path(output) if output is not None else eval_dir / REPORT_FILE
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        raise InverSynthError(f"cannot write {str(out)!r}: {exc.strerror or exc}") from None
    return out


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        prog="python -m models.report",
        description="A self-contained HTML listening report of an evaluated run: test sounds, "
        "their resyntheses, spectrograms, predicted vs true parameters.",
    )
    add_evaluated_run_arguments(parser)
    parser.add_argument("--n_examples", type=positive_int, default=8, help="test sounds shown")
    parser.add_argument("--seed", type=int, default=0, help="which random sample of them")
    parser.add_argument(
        "--output", type=Path, default=None, help="default {evaluation_dir}/report.html"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    path = write_report(
        args.run_dir,
        evaluation_dir=args.evaluation_dir,
        n_examples=args.n_examples,
        seed=args.seed,
        output=args.output,
    )
    print(f"report: {path} (open it in a browser)")
    return 0


if __name__ == "__main__":
    run_cli(main)
