"""A match as text for people: how close it sounds first, the parameters, then the details.

The measures a listener understands lead (:func:`listening_summary`): how
similar the match sounds (rho_STFT, the correlation of the log-magnitude
spectrograms, as a percentage) and how far apart in dB (the log-spectral
distance). F_delta (which adds up the dB differences of every spectrogram
cell, so it runs to thousands of dB for sounds that sound close) and how many
parameters sit at their true class (many settings of a synth sound alike) go
to the details (:func:`details_lines`), worded so as not to contradict what
the listener hears. :func:`format_prediction` is the block ``predict`` prints
for one sound; :func:`~models.matching.legend.legend_lines` says what each
parameter is.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from generators.parameters import ParameterSet
from models.matching.prediction import Prediction, class_verdict, format_value
from models.matching.sound_metrics import format_metrics

__all__ = [
    "LEAD_METRICS",
    "details_lines",
    "format_prediction",
    "listening_summary",
    "true_class_note",
]

# The measures that lead: how similar the match sounds, and how far apart in dB.
LEAD_METRICS = ("rho_stft", "log_spectral_distance")


def listening_summary(metrics: Mapping[str, float]) -> str:
    """``96.9 % similar (rho_STFT), 4.21 dB apart (LSD)``: what a listener hears, in a line."""
    parts = []
    rho = metrics.get("rho_stft")
    if rho is not None and np.isfinite(rho):
        parts.append(f"{100 * rho:.1f} % similar (rho_STFT)")
    lsd = metrics.get("log_spectral_distance")
    if lsd is not None and np.isfinite(lsd):
        parts.append(f"{lsd:.2f} dB apart (LSD)")
    return ", ".join(parts) or "not measured"


def _other_metrics(metrics: Mapping[str, float]) -> str:
    return format_metrics({k: v for k, v in metrics.items() if k not in LEAD_METRICS})


def true_class_note(n_right: int, n_parameters: int) -> str:
    """How many parameters sit at their true class, said as what it is."""
    return (
        f"{n_right} of {n_parameters} parameters at their true class: many settings of a "
        "synth sound alike, so a close match need not share them (the sound is what is matched)"
    )


def details_lines(prediction: Prediction) -> list[str]:
    """The details below the table: the other metrics, and the parameters' true classes."""
    lines = []
    match = prediction.match
    if match is not None:
        lines.append(f"match: {_other_metrics(match.metrics)}")
    if prediction.metrics is not None:
        who = "network's guess" if match is not None else "resynthesis"
        lines.append(f"{who}: {_other_metrics(prediction.metrics)}")
    measured = [m for m in (match.metrics if match else None, prediction.metrics) if m]
    if any("f_delta" in m for m in measured):
        lines.append(
            "F_delta adds up the dB differences of every spectrogram cell: thousands of dB "
            "for sounds that sound close; compare it between matches, not with the paper's"
        )
    if prediction.true_indices is not None:
        final = prediction.indices if match is None else match.indices
        right = int(np.sum(np.asarray(prediction.true_indices) == final))
        lines.append(true_class_note(right, len(prediction.parameters)))
    return lines


def _lead_lines(prediction: Prediction) -> list[str]:
    match = prediction.match
    lines = []
    if match is not None:
        budget = f"{match.renders} renders, {match.seconds:.2f} s, seed {match.seed}"
        lines.append(f"  match ({match.method}, {budget}): {listening_summary(match.metrics)}")
        lines += [f"  note: {note}" for note in match.notes]
        if prediction.metrics is not None:
            lines.append(f"  network's guess: {listening_summary(prediction.metrics)}")
    elif prediction.metrics is not None:
        lines.append(f"  resynthesis: {listening_summary(prediction.metrics)}")
    return lines


def _table(prediction: Prediction, parameter_set: ParameterSet | None) -> list[str]:
    match = prediction.match
    true = prediction.true_indices if parameter_set is not None else None
    head = ["parameter", "predicted"]
    rows = [[p.name, format_value(p.value, p.unit)] for p in prediction.parameters]
    final = prediction.indices
    if match is not None:  # the match first, the network's guess beside it
        head = ["parameter", "matched", "network"]
        final = match.indices
        rows = [
            [p.name, format_value(float(v), p.unit), format_value(p.value, p.unit)]
            for p, v in zip(prediction.parameters, match.values, strict=True)
        ]
    if true is not None and parameter_set is not None:
        head += ["true", ""]
        for row, param, t, f in zip(rows, parameter_set.parameters, true, final, strict=True):
            row += [format_value(param.levels[int(t)], param.unit)]
            row += [class_verdict(param, int(t), int(f))[1]]
    k = len(prediction.parameters[0].top) if prediction.parameters else 0
    head.append(f"network's top {k} (probability)")
    for row, p in zip(rows, prediction.parameters, strict=True):
        row.append(" | ".join(f"{format_value(v, p.unit)} {100 * q:.0f}%" for _, v, q in p.top))
    widths = [max(len(head[c]), *(len(r[c]) for r in rows)) for c in range(len(head) - 1)]
    lines = []
    for row in [head, *rows]:
        cells = [f"{cell:<{w}}" for cell, w in zip(row[:-1], widths, strict=True)]
        lines.append("  " + "  ".join([*cells, row[-1]]))
    return lines


def format_prediction(prediction: Prediction, *, parameter_set: ParameterSet | None = None) -> str:
    """The block printed for one sound: how close it sounds, the parameters, the details.

    With ``prediction.true_indices`` and the run's ``parameter_set``, the
    true value of every parameter and how far off the final one is
    (:func:`~models.matching.prediction.class_verdict`) stand beside it.
    """
    lines = [prediction.source]
    lines.extend(f"  note: {n}" for n in prediction.input.notes)
    lines += _lead_lines(prediction)
    lines += _table(prediction, parameter_set)
    details = details_lines(prediction)
    if details:
        lines.append("  details:")
        lines += [f"    {line}" for line in details]
    return "\n".join(lines)
