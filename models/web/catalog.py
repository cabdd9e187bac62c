"""The models a page may match with: shipped model folders and the runs of the runs folder.

A model is chosen by its id, never by a path: ``pretrained/{folder}`` for a
folder under ``models/pretrained/`` and ``runs/{folder}`` for a run folder
directly under the runs folder (``INVERSYNTH_OUTPUT_DIR``). :func:`find_model`
looks an id up in a fresh listing, so a folder name a browser sends never
reaches the file system unless it is one of the folders listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.errors import InverSynthError
from models.web.library import RunSummary, describe_run, synth_missing

__all__ = ["ModelChoice", "find_model", "list_models"]

# The shipped FM model comes first: it is what a first visit matches with.
_PREFERRED = "pretrained/fm_M1"


@dataclass(frozen=True)
class ModelChoice:
    """One model on the page.

    Attributes
    ----------
    id : str
        ``pretrained/{folder}`` or ``runs/{folder}``.
    run_dir : Path
    summary : RunSummary or None
        None when ``run.json`` cannot be read (then ``missing`` says why).
    missing : str or None
        Why it cannot be used here (the install command for the DX7), or None.
    """

    id: str
    run_dir: Path
    summary: RunSummary | None
    missing: str | None

    @property
    def available(self) -> bool:
        return self.missing is None

    @property
    def label(self) -> str:
        """``M1 on the fm synth (shipped)``, ``C6 on amsynth (runs/C6_amsynth)``."""
        where = "shipped" if self.id.startswith("pretrained/") else self.id
        if self.summary is None:
            return f"{self.run_dir.name} ({where})"
        return f"{self.summary.model} on {self.summary.synth_label} ({where})"


def _choice(model_id: str, run_dir: Path) -> ModelChoice:
    try:
        summary = describe_run(run_dir)
    except InverSynthError as exc:
        return ModelChoice(model_id, run_dir, None, str(exc))
    return ModelChoice(model_id, run_dir, summary, synth_missing(run_dir))


def _run_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "run.json").is_file())


def list_models(*, pretrained_dir: Path, runs_dir: Path) -> list[ModelChoice]:
    """Every shipped model and every run folder, the shipped FM model first.

    Parameters
    ----------
    pretrained_dir : Path
        ``models/pretrained``.
    runs_dir : Path
        The runs folder; only its direct sub-folders with a ``run.json`` are runs.
    """
    choices = [_choice(f"pretrained/{p.name}", p) for p in _run_folders(pretrained_dir)]
    choices += [_choice(f"runs/{p.name}", p) for p in _run_folders(runs_dir)]
    return sorted(choices, key=lambda c: (c.id != _PREFERRED, not c.available, c.id))


def find_model(choices: list[ModelChoice], model_id: str) -> ModelChoice:
    """The choice of id ``model_id``.

    Raises
    ------
    InverSynthError
        No such model (an unknown run), or one this machine cannot use.
    """
    for choice in choices:
        if choice.id == model_id:
            if choice.missing is not None:
                raise InverSynthError(f"the model {model_id!r} cannot be used: {choice.missing}")
            return choice
    shown = model_id if len(model_id) <= 80 else model_id[:60] + "..."
    raise InverSynthError(f"unknown model {shown!r}: choose one of the models listed on the page")
