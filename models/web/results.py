"""What the page shows of a finished match, read from the JSON record the command writes.

Files are named to the browser by kind, never by path: ``/files/{job}/{kind}``
for the kinds of :data:`FILE_KINDS`, each one of the files the match wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.matching.prediction import format_value
from models.web.library import METRIC_INFO, MatchedSound

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
        ``name``, ``description``, ``matched``, ``network`` (values with unit),
        ``changed``, ``top`` (list of (value text, percent)).
    method : str
    renders : int
    budget_renders : int or None
    seconds : float
    distance_db : float or None
        The match's multi-resolution distance to the sound.
    notes : list of str
        What was done to the input to fit the model, and what the method ran without.
    note : str or None
        The note a DX7 patch is played at (``A3``), where the record says.
    """

    files: dict[str, str]
    metrics: list[dict[str, Any]]
    parameters: list[dict[str, Any]]
    method: str
    renders: int
    budget_renders: int | None
    seconds: float
    distance_db: float | None
    notes: list[str]
    note: str | None = None


def _metric_text(key: str, value: float | None, unit: str) -> str:
    if value is None:
        return "undefined"
    if key.startswith("rho"):
        return f"{100 * value:.1f} %"
    return f"{value:.2f} {unit}".strip()


def _candidates(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The match and the network's guess of a record (format version 2); the guess twice
    when nothing refined it."""
    found = {c.get("candidate"): c for c in record.get("candidates") or [] if isinstance(c, dict)}
    network = found.get("network") or {}
    return found.get("match") or network, network


def _metrics(match: dict[str, Any], network: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, (label, unit, higher) in METRIC_INFO.items():
        if key not in (match.get("metrics") or {}):
            continue
        m, n = match["metrics"].get(key), (network.get("metrics") or {}).get(key)
        improved = m is not None and n is not None and (m > n if higher else m < n)
        rows.append(
            {
                "label": label,
                "match": _metric_text(key, m, unit),
                "network": _metric_text(key, n, unit) if network.get("metrics") else "",
                "better": "higher" if higher else "lower",
                "improved": improved,
            }
        )
    return rows


def _parameters(match: dict[str, Any], network: dict[str, Any]) -> list[dict[str, Any]]:
    guessed = {p["name"]: p for p in network.get("parameters") or []}
    rows = []
    for p in match.get("parameters") or []:
        unit = p.get("unit", "")
        guess = guessed.get(p["name"], p)
        matched, first = (
            format_value(float(p["value"]), unit),
            format_value(float(guess["value"]), unit),
        )
        rows.append(
            {
                "name": p["name"],
                "description": p.get("description") or "",
                "matched": matched,
                "network": first,
                "changed": matched != first,
                "top": [
                    (format_value(float(t["value"]), unit), round(100 * float(t["probability"])))
                    for t in guess.get("top", [])
                ],
            }
        )
    return rows


def _note(record: dict[str, Any]) -> str | None:
    """The note a patch is played at (``{"name": "A3", "midi": 57, ...}``), or None."""
    note = record.get("note")
    name = note.get("name") if isinstance(note, dict) else None
    return name if isinstance(name, str) and name else None


def result_view(matched: MatchedSound) -> ResultView:
    """The page's view of a finished match."""
    record = matched.record
    match, network = _candidates(record)
    files = {
        kind: Path(matched.files[key]).name
        for kind, key in FILE_KINDS.items()
        if key in matched.files
    }
    budget = record.get("budget_renders")
    return ResultView(
        files=files,
        metrics=_metrics(match, network),
        parameters=_parameters(match, network),
        method=str(record.get("method", "")),
        renders=int(record.get("renders", 1)),
        budget_renders=int(budget) if isinstance(budget, int) else None,
        seconds=float(record.get("seconds") or 0.0),
        distance_db=match.get("distance_db"),
        notes=[*(record.get("input") or {}).get("changes", []), *record.get("notes", [])],
        note=_note(record),
    )
