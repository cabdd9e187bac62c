"""What the page shows of a finished match, read from the JSON record the command writes.

Files are named to the browser by kind, never by path: ``/files/{job}/{kind}``
for the kinds of :data:`FILE_KINDS`, each one of the files the match wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.web.library import METRIC_INFO, MatchedSound, format_value

__all__ = ["FILE_KINDS", "MEDIA_TYPES", "ResultView", "result_view"]

# Kind in a URL -> key of MatchedSound.files.
FILE_KINDS: dict[str, str] = {
    "input": "input",
    "network": "network",
    "match": "resynthesis",
    "plot": "plot",
    "json": "json",
    "preset": "patch",
}
MEDIA_TYPES: dict[str, str] = {
    ".wav": "audio/wav",
    ".png": "image/png",
    ".json": "application/json",
    ".fxp": "application/octet-stream",
    ".syx": "application/octet-stream",
}


@dataclass(frozen=True)
class ResultView:
    """A match as the result template shows it.

    Attributes
    ----------
    files : dict of kind -> file name
        The files there are (:data:`FILE_KINDS`).
    metrics : list of dict
        ``label``, ``match``, ``network`` (text with unit), ``better``
        (``higher`` / ``lower``), ``improved`` (the match is better).
    parameters : list of dict
        ``name``, ``matched``, ``network`` (values with unit), ``changed``,
        ``top`` (list of (value text, percent)).
    method : str
    renders : int
    seconds : float
    distance_db : float or None
        The match's multi-resolution distance to the sound.
    notes : list of str
        What was done to the input to fit the model.
    """

    files: dict[str, str]
    metrics: list[dict[str, Any]]
    parameters: list[dict[str, Any]]
    method: str
    renders: int
    seconds: float
    distance_db: float | None
    notes: list[str]


def _metric_text(key: str, value: float | None, unit: str) -> str:
    if value is None:
        return "undefined"
    if key.startswith("rho"):
        return f"{100 * value:.1f} %"
    return f"{value:.2f} {unit}".strip()


def _metrics(record: dict[str, Any]) -> list[dict[str, Any]]:
    match = record.get("reconstruction") or {}
    network = record.get("network_reconstruction") or {}
    rows = []
    for key, (label, unit, higher) in METRIC_INFO.items():
        if key not in match:
            continue
        m, n = match.get(key), network.get(key)
        improved = m is not None and n is not None and (m > n if higher else m < n)
        rows.append(
            {
                "label": label,
                "match": _metric_text(key, m, unit),
                "network": _metric_text(key, n, unit) if network else "",
                "better": "higher" if higher else "lower",
                "improved": improved,
            }
        )
    return rows


def _parameters(record: dict[str, Any]) -> list[dict[str, Any]]:
    matched = (record.get("match") or {}).get("values") or record.get("values") or []
    rows = []
    for i, p in enumerate(record.get("parameters", [])):
        unit = p.get("unit", "")
        value = float(matched[i]) if i < len(matched) else float(p["value"])
        rows.append(
            {
                "name": p["name"],
                "matched": format_value(value, unit),
                "network": format_value(float(p["value"]), unit),
                "changed": format_value(value, unit) != format_value(float(p["value"]), unit),
                "top": [
                    (format_value(float(t["value"]), unit), round(100 * float(t["probability"])))
                    for t in p.get("top", [])
                ],
            }
        )
    return rows


def result_view(matched: MatchedSound) -> ResultView:
    """The page's view of a finished match."""
    record = matched.record
    match = record.get("match") or {}
    files = {
        kind: Path(matched.files[key]).name
        for kind, key in FILE_KINDS.items()
        if key in matched.files
    }
    return ResultView(
        files=files,
        metrics=_metrics(record),
        parameters=_parameters(record),
        method=str(record.get("method", "")),
        renders=int(record.get("renders", 1)),
        seconds=float(record.get("seconds", 0.0)),
        distance_db=match.get("distance_db"),
        notes=list((record.get("input") or {}).get("changes", [])),
    )
