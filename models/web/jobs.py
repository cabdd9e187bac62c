"""One match at a time: a first-in, first-out queue of jobs and the worker thread that runs them.

Matching takes the CPU for seconds and a loaded model's memory, so the page
runs one job at a time, in a thread of its own (never in the event loop),
and a second tab's job waits its turn: :meth:`JobQueue.position` says how
many jobs are ahead of it. A job can be cancelled: a queued one leaves the
queue at once; a running one stops at the next point where its work calls
:meth:`Job.set_stage` or :meth:`Job.set_progress`, which raise
:class:`JobCancelledError` once a cancel was asked for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.errors import InverSynthError

__all__ = ["Job", "JobCancelledError", "JobQueue"]

log = logging.getLogger("models.web")

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


class JobCancelledError(Exception):
    """Raised inside a running job's work when its cancel was asked for."""


@dataclass(eq=False)
class Job:
    """One sound to match, and what became of it.

    Attributes
    ----------
    id : str
        Random, hard to guess: whoever has it may read the job's results.
    session : str
        The browser session that sent it.
    params : dict
        What the work needs (the upload, the model, the method, the budget).
    status : str
        ``queued``, ``running``, ``done``, ``failed`` or ``cancelled``.
    stage : str
        What a running job does now (``loading the model``, ``matching``).
    progress : Any
        The latest progress report of the match, or None.
    error : str or None
        One line, for a failed job.
    result : Any
        What the work returned, for a done job.
    submitted_s, started_s, finished_s : float or None
        ``time.monotonic()`` seconds.
    """

    id: str
    session: str
    params: dict[str, Any]
    status: str = QUEUED
    stage: str = "waiting"
    progress: Any = None
    error: str | None = None
    result: Any = None
    submitted_s: float = field(default_factory=time.monotonic)
    started_s: float | None = None
    finished_s: float | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def check_cancel(self) -> None:
        """Raise :class:`JobCancelledError` if a cancel was asked for."""
        if self._cancel.is_set():
            raise JobCancelledError(self.id)

    def set_stage(self, stage: str) -> None:
        """Record the step starting now; raises :class:`JobCancelledError` to stop a cancelled job."""
        self.check_cancel()
        self.stage = stage

    def set_progress(self, progress: Any) -> None:
        """Record a progress report; raises :class:`JobCancelledError` to stop a cancelled job."""
        self.check_cancel()
        self.progress = progress

    def elapsed_s(self, now: float | None = None) -> float:
        """Seconds running (or that it ran), 0 before it starts."""
        if self.started_s is None:
            return 0.0
        end = self.finished_s if self.finished_s is not None else (now or time.monotonic())
        return end - self.started_s


class JobQueue:
    """Runs ``work(job)`` for each job submitted, one at a time, in submission order.

    Parameters
    ----------
    work : callable
        ``work(job) -> result``, run in the worker thread. It raises
        :class:`~core.errors.InverSynthError` for a job that cannot be
        done (its message is shown), :class:`JobCancelledError` when cancelled.
    max_waiting : int > 0
        Jobs that may wait at once; :meth:`submit` refuses more.
    on_finish : callable, optional
        ``on_finish(job)`` after a job ends, however it ends (in the worker thread,
        or in :meth:`cancel` for a job that never started).
    warm_up : callable, optional
        Run once in the worker thread before the first job (loading a model).
    """

    def __init__(
        self,
        work: Callable[[Job], Any],
        *,
        max_waiting: int = 32,
        on_finish: Callable[[Job], None] | None = None,
        warm_up: Callable[[], None] | None = None,
    ) -> None:
        self._work = work
        self._max_waiting = int(max_waiting)
        self._on_finish = on_finish or (lambda job: None)
        self._warm_up = warm_up
        self._jobs: dict[str, Job] = {}
        self._waiting: deque[Job] = deque()
        self._running: Job | None = None
        self._condition = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.warming_up = warm_up is not None

    # ---- the worker ---------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread (once)."""
        with self._condition:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="match-worker", daemon=True)
                self._thread.start()

    def close(self, *, timeout_s: float = 10.0) -> None:
        """Cancel every job, wait up to ``timeout_s`` for the running one to stop."""
        with self._condition:
            self._closed = True
            waiting = list(self._waiting)
            self._waiting.clear()
            if self._running is not None:
                self._running._cancel.set()
            self._condition.notify_all()
        for job in waiting:
            self._finish(job, CANCELLED)
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        if self._warm_up is not None:
            try:
                self._warm_up()
            except Exception:  # the first job will meet the same failure and report it
                log.exception("loading the default model failed")
            self.warming_up = False
        while True:
            with self._condition:
                while not self._waiting and not self._closed:
                    self._condition.wait()
                if self._closed:
                    return
                job = self._waiting.popleft()
                self._running = job
                job.status, job.stage, job.started_s = RUNNING, "starting", time.monotonic()
            self._run(job)

    def _run(self, job: Job) -> None:
        try:
            job.check_cancel()
            job.result = self._work(job)
            job.check_cancel()  # a cancel during the last step: its result is not wanted
            status = DONE
        except JobCancelledError:
            status = CANCELLED
        except InverSynthError as exc:
            job.error, status = str(exc), FAILED
        except Exception as exc:  # shown as one line; the log has the traceback
            log.exception("job %s failed", job.id)
            job.error, status = f"the match failed: {type(exc).__name__}: {exc}", FAILED
        with self._condition:
            self._running = None
        if status != DONE:
            job.result = None
        self._finish(job, status)

    def _finish(self, job: Job, status: str) -> None:
        job.status, job.finished_s = status, time.monotonic()
        if job.started_s is None:
            job.started_s = job.finished_s
        try:
            self._on_finish(job)
        except Exception:
            log.exception("cleaning up after job %s failed", job.id)

    # ---- what the app asks ---------------------------------------------------
    def submit(self, job: Job) -> Job:
        """Queue ``job``; starts the worker if needed.

        Raises
        ------
        InverSynthError
            ``max_waiting`` jobs are already waiting, or the queue is closed (the
            server is stopping).
        """
        with self._condition:
            if self._closed:
                raise InverSynthError("the server is stopping; no new matches are taken")
            if len(self._waiting) >= self._max_waiting:
                raise InverSynthError(
                    f"{len(self._waiting)} sounds are waiting already; try again in a minute"
                )
            self._jobs[job.id] = job
            self._waiting.append(job)
            self._condition.notify_all()
        self.start()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._condition:
            return self._jobs.get(job_id)

    def position(self, job: Job) -> int:
        """Jobs ahead of ``job``: the running one and those queued before it (0 once it runs)."""
        with self._condition:
            if job.status != QUEUED:
                return 0
            try:
                index = self._waiting.index(job)
            except ValueError:
                return 0
            return index + (self._running is not None)

    def cancel(self, job: Job) -> None:
        """Take a queued job out of the queue, or ask a running one to stop."""
        with self._condition:
            job._cancel.set()
            queued = job in self._waiting
            if queued:
                self._waiting.remove(job)
        if queued:
            self._finish(job, CANCELLED)

    def session_jobs(self, session: str) -> list[Job]:
        """The jobs of ``session``, newest first."""
        with self._condition:
            jobs = [j for j in self._jobs.values() if j.session == session]
        return sorted(jobs, key=lambda j: j.submitted_s, reverse=True)
