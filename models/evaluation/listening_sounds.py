"""``listening.npz``: the sounds the listening report plays, kept by the reconstruction.

The reconstruction (:func:`~models.evaluation.resynthesis.evaluate_reconstruction`)
reads the test sounds and renders the run's synth anyway; it keeps a sample of
them here, so that the report (:mod:`models.evaluation.listening_report`) only
reads the evaluation folder: it opens no dataset and builds no synth.

The sample is of the sounds the report chooses from (:func:`listening_rows`):
the sounds a refining method matched when there are any (``matches.npz``), else
every prediction; all of them up to :data:`LISTENING_SOUNDS`, else that many
drawn at random (:data:`LISTENING_SEED`), so that the file stays a few
megabytes for any test split.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InverSynthError
from core.storage import atomic_path
from models.evaluation.evaluation_folder import Matches, Predictions

__all__ = [
    "LISTENING_FILE",
    "LISTENING_SEED",
    "LISTENING_SOUNDS",
    "REFINING_METHODS",
    "ListeningSounds",
    "listening_rows",
    "refined_matches",
]

LISTENING_FILE = "listening.npz"
LISTENING_SOUNDS = 32  # sounds kept: 32 x 3 x 64 KB for the FM synth's 1 s at 16384 Hz
LISTENING_SEED = 0  # which of a larger pool are kept
REFINING_METHODS = ("hybrid", "search", "lookup")  # the match shown, the first matched


def refined_matches(matches: Matches | None) -> tuple[str, np.ndarray | None]:
    """The refining method of ``matches`` (hybrid first) and its class indices [m, P], if any."""
    if matches is None or matches.example_indices.shape[0] == 0:
        return "", None
    for method in REFINING_METHODS:
        if method in matches.indices:
            return method, matches.indices[method]
    return "", None


def listening_rows(n_predictions: int, matched: np.ndarray | None) -> np.ndarray:
    """Rows of ``predictions.npz`` [k] whose sounds are kept, ascending.

    Parameters
    ----------
    n_predictions : int
        Predictions resynthesized.
    matched : np.ndarray [m, P] or None
        A refining method's class indices of the first ``m`` predictions.
    """
    pool = n_predictions if matched is None else matched.shape[0]
    if pool <= LISTENING_SOUNDS:
        return np.arange(pool, dtype=np.int64)
    rng = np.random.default_rng(LISTENING_SEED)
    return np.sort(rng.choice(pool, size=LISTENING_SOUNDS, replace=False)).astype(np.int64)


@dataclass(frozen=True)
class ListeningSounds:
    """The report's sounds, row by row, with the class indices they play.

    Attributes
    ----------
    rows : np.ndarray [k], int64
        Rows of ``predictions.npz``, ascending.
    example_indices : np.ndarray [k], int64
        Rows of the evaluated dataset.
    true_indices, predicted_indices : np.ndarray [k, P], int64
        The true classes and the network's guess.
    reference, network : np.ndarray [k, n_samples], float32
        The test sounds and the run's synth playing the network's guess.
    descriptions : tuple of str, [P]
        What each parameter is (the synth's words for runs whose record has none).
    method : str
        The refining method of ``match`` ("" when none matched).
    match_indices : np.ndarray [k, P], int64, or None
    match : np.ndarray [k, n_samples], float32, or None
        The method's classes, and the synth playing them.
    """

    rows: np.ndarray
    example_indices: np.ndarray
    true_indices: np.ndarray
    predicted_indices: np.ndarray
    reference: np.ndarray
    network: np.ndarray
    descriptions: tuple[str, ...]
    method: str = ""
    match_indices: np.ndarray | None = None
    match: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / LISTENING_FILE
        arrays: dict[str, Any] = {
            "rows": np.asarray(self.rows, dtype=np.int64),
            "example_indices": np.asarray(self.example_indices, dtype=np.int64),
            "true_indices": np.asarray(self.true_indices, dtype=np.int64),
            "predicted_indices": np.asarray(self.predicted_indices, dtype=np.int64),
            "reference": np.asarray(self.reference, dtype=np.float32),
            "network": np.asarray(self.network, dtype=np.float32),
            "descriptions": np.asarray(self.descriptions, dtype=np.str_),
            "method": np.asarray(self.method, dtype=np.str_),
        }
        if self.match is not None and self.match_indices is not None:
            arrays["match_indices"] = np.asarray(self.match_indices, dtype=np.int64)
            arrays["match"] = np.asarray(self.match, dtype=np.float32)
        with atomic_path(path) as tmp:
            np.savez(tmp, **arrays)
        return path

    @classmethod
    def load(cls, folder: str | Path) -> ListeningSounds:
        """The folder's sounds; refused in one line when there are none or they do not read."""
        path = Path(folder) / LISTENING_FILE
        if not path.is_file():
            raise InverSynthError(
                f"{str(Path(folder))!r} holds no {LISTENING_FILE}: resynthesize the predictions "
                "first (python -m models.reconstruct RUN_DIR)"
            )
        try:
            with np.load(path, allow_pickle=False) as data:
                match = "match" in data.files
                sounds = cls(
                    rows=np.asarray(data["rows"], dtype=np.int64),
                    example_indices=np.asarray(data["example_indices"], dtype=np.int64),
                    true_indices=np.asarray(data["true_indices"], dtype=np.int64),
                    predicted_indices=np.asarray(data["predicted_indices"], dtype=np.int64),
                    reference=np.asarray(data["reference"], dtype=np.float32),
                    network=np.asarray(data["network"], dtype=np.float32),
                    descriptions=tuple(str(d) for d in data["descriptions"]),
                    method=str(data["method"]),
                    match_indices=np.asarray(data["match_indices"], dtype=np.int64)
                    if match
                    else None,
                    match=np.asarray(data["match"], dtype=np.float32) if match else None,
                )
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise InverSynthError(f"{str(path)!r} is unreadable: {exc}") from None
        return sounds

    def check_of(self, predictions: Predictions, predicted: np.ndarray, *, path: Path) -> None:
        """Refuse sounds of other predictions than ``predictions`` (``predicted``: [n, P])."""
        k = len(self)
        same = (
            self.reference.shape[0] == k
            and self.network.shape == self.reference.shape
            and (k == 0 or int(self.rows.max()) < len(predictions))
            and np.array_equal(self.example_indices, predictions.example_indices[self.rows])
            and np.array_equal(self.true_indices, predictions.true_indices[self.rows])
            and np.array_equal(self.predicted_indices, predicted[self.rows])
        )
        if not same:
            raise InverSynthError(
                f"{str(path / LISTENING_FILE)!r} holds sounds of other predictions; resynthesize "
                "them again (python -m models.reconstruct RUN_DIR)"
            )
