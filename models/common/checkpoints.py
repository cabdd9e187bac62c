"""A run's progress on disk while it trains: ``state.json``, the checkpoints, ``history.csv``.

After every epoch the callbacks write the latest model (with its optimizer
state), the best model when it improved, a history row and the progress
record, each to a temporary file renamed into place, in that order: a run
killed at any moment resumes from its last finished epoch.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InverSynthError
from core.storage import WriteError, open_atomic
from models.common.data import EpochClock
from models.common.records import write_json_atomic
from models.common.run import (
    BEST_MODEL,
    HISTORY_FILE,
    LATEST_MODEL,
    STATE_FILE,
    non_finite_weights,
    save_model_atomic,
)

__all__ = ["TrainState", "checkpoint_callbacks", "not_finite", "trim_history"]


@dataclass
class TrainState:
    """Training progress (``state.json``)."""

    epochs_done: int = 0
    best_epoch: int = 0  # 1-based; 0 = none yet
    best_val_loss: float | None = None
    wait: int = 0  # epochs since the best
    stopped_early: bool = False
    finished: bool = False
    history_columns: list[str] = field(default_factory=list)

    def save(self, run_dir: Path) -> None:
        write_json_atomic(Path(run_dir) / STATE_FILE, asdict(self))

    @classmethod
    def load(cls, run_dir: Path) -> TrainState:
        path = Path(run_dir) / STATE_FILE
        if not path.is_file():
            return cls()
        try:
            return cls(**json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError) as exc:
            raise InverSynthError(f"{str(path)!r} is malformed: {exc}") from None


class _RunCheckpointSteps:
    """Early stopping on val_loss + best/latest checkpoints + history + state, per epoch.

    The steps of the Keras callback ``RunCheckpoint`` (:func:`checkpoint_callbacks`),
    which mixes them into ``keras.callbacks.Callback``.
    """

    model: Any  # set by Keras

    def __init__(
        self,
        run_dir: Path,
        state: TrainState,
        patience: int,
        write: bool,
        time_limit_s: float | None = None,
    ) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.state = state
        self.patience = patience
        self.write = write
        self.time_limit_s = time_limit_s
        self.started = time.monotonic()
        self.epoch_started = self.started
        self.stopped_for_time = False
        self.diverged: str | None = None  # what was not finite, when an epoch diverged

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch_started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        try:
            self._end_epoch(epoch, dict(logs or {}))
        except WriteError as exc:  # a full disk: say what the run keeps, and how to go on
            done = TrainState.load(self.run_dir).epochs_done  # as recorded, not as counted
            kept = (
                f"the run keeps its {done} finished epoch(s): make room and continue it with --resume"
                if done
                else "no epoch of the run had finished"
            )
            raise exc.keeping(kept) from None

    def _end_epoch(self, epoch: int, logs: dict[str, Any]) -> None:
        self.diverged = not_finite(logs, self.model)
        if self.diverged is not None:
            # Nothing of this epoch is kept: not its weights, not its history row, not
            # its progress; the run on disk stays at its last finite epoch.
            self.model.stop_training = True
            return
        self._keep_if_best(epoch, float(logs.get("val_loss", logs.get("loss", float("nan")))))
        st = self.state
        if self.write:
            save_model_atomic(self.model, self.run_dir / LATEST_MODEL)
            self._append_history(epoch + 1, logs)
        st.epochs_done = epoch + 1
        if self.patience > 0 and st.wait >= self.patience:
            st.stopped_early = True
            self.model.stop_training = True
        now = time.monotonic()
        if self.time_limit_s is not None and (
            now - self.started + (now - self.epoch_started) > self.time_limit_s
        ):
            # Another epoch like this one would overrun the limit; --resume continues.
            self.stopped_for_time = True
            self.model.stop_training = True
        if self.write:
            st.save(self.run_dir)

    def _keep_if_best(self, epoch: int, value: float) -> None:
        st = self.state
        if bool(np.isfinite(value)) and (st.best_val_loss is None or value < st.best_val_loss):
            st.best_val_loss = value
            st.best_epoch = epoch + 1
            st.wait = 0
            if self.write:
                save_model_atomic(self.model, self.run_dir / BEST_MODEL)
        else:
            st.wait += 1

    def _append_history(self, epoch: int, logs: dict[str, Any]) -> None:
        """Add the epoch's row: the file is written anew (a few KB), so never half a row."""
        path = self.run_dir / HISTORY_FILE
        if not self.state.history_columns:
            self.state.history_columns = ["epoch", *sorted(logs)]
        columns = self.state.history_columns
        row = {"epoch": epoch, **{k: float(v) for k, v in logs.items()}}
        before = path.read_text(encoding="utf-8") if path.exists() else ""
        with open_atomic(path, newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            if before:
                fh.write(before)
            else:
                writer.writeheader()
            writer.writerow(row)


def not_finite(logs: dict[str, Any], model: Any) -> str | None:
    """What of an epoch's losses and the model's weights is NaN or infinite, or None."""
    for key in ("loss", "val_loss"):
        if key in logs and not np.isfinite(float(logs[key])):
            return f"{key} {float(logs[key])}"
    bad = non_finite_weights(model)
    return f"weights {', '.join(bad[:3])}" if bad else None


def checkpoint_callbacks() -> Any:
    """The Keras callbacks ``(SetEpoch, RunCheckpoint)``, defined when training first needs them."""
    import keras

    class SetEpoch(keras.callbacks.Callback):
        """Tell the input pipeline which epoch's shuffle order to produce."""

        def __init__(self, clock: EpochClock) -> None:
            super().__init__()
            self.clock = clock

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.clock.epoch = epoch

    class RunCheckpoint(_RunCheckpointSteps, keras.callbacks.Callback):
        """Early stopping on val_loss + best/latest checkpoints + history + state, per epoch."""

    return SetEpoch, RunCheckpoint


def trim_history(run_dir: Path, epochs_done: int) -> None:
    """Drop history rows of epochs a killed run logged but never recorded as done."""
    path = run_dir / HISTORY_FILE
    if not path.exists():
        return
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    kept = [r for r in body if r and int(float(r[0])) <= epochs_done]
    if len(kept) != len(body):
        with open_atomic(path, newline="") as fh:
            csv.writer(fh).writerows([header, *kept])
