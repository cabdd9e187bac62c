"""The worker pool of the toolkit: processes that each hold one synth and run jobs with it.

The dataset writer renders chunks with it; a run's resynthesis renders
predictions with it. Workers start with the "spawn" method: they begin clean,
without whatever the calling process imported (TensorFlow and DawDreamer must
never meet in one process), and each builds its synth once, from the synth's
registry name and ``config()``.
"""

from __future__ import annotations

import collections
import itertools
import multiprocessing
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from generators.synth import SoundGenerator, load_generator
from generators.validate import check_positive_int

__all__ = ["JOBS_PER_WORKER", "map_in_workers"]

J = TypeVar("J")
R = TypeVar("R")

JOBS_PER_WORKER = 2  # jobs in flight per worker: one running, one queued behind it

# State of a worker process, set once by its initializer.
_worker_synth: SoundGenerator | None = None
_worker_task: Callable[[SoundGenerator, Any], Any] | None = None


def _init_worker(
    name: str, config: dict[str, Any], task: Callable[[SoundGenerator, Any], Any]
) -> None:
    global _worker_synth, _worker_task
    _worker_synth = load_generator(name, config)
    _worker_task = task


def _run_job(job: Any) -> Any:
    if _worker_synth is None or _worker_task is None:  # pragma: no cover - the initializer ran
        raise RuntimeError("worker has no synth")
    return _worker_task(_worker_synth, job)


def map_in_workers(
    task: Callable[[SoundGenerator, J], R],
    jobs: Iterable[J],
    *,
    generator_name: str,
    generator_config: dict[str, Any],
    workers: int,
) -> Generator[R, None, None]:
    """``task(synth, job)`` for every job, in ``workers`` processes; results in job order.

    Parameters
    ----------
    task : callable
        ``task(synth, job) -> result``; a module-level function (or a
        ``functools.partial`` of one), since it is pickled to the workers.
    jobs : iterable
        Consumed lazily: at most ``JOBS_PER_WORKER * workers`` jobs are in
        flight, so memory stays flat for any number of jobs.
    generator_name, generator_config
        The synth every worker builds with
        :func:`~generators.synth.load_generator`.
    workers : int > 0
        Processes.

    Yields
    ------
    result
        One per job, in the order of ``jobs``; later jobs keep the workers
        busy while an earlier one is waited for.

    Stopping the iteration early, or an exception in a job, cancels the jobs
    not yet started and ends the workers.
    """
    workers = check_positive_int(workers, "workers")
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(generator_name, generator_config, task),
    )
    queue = iter(jobs)
    pending: collections.deque[Future[R]] = collections.deque()
    try:
        for job in itertools.islice(queue, JOBS_PER_WORKER * workers):
            pending.append(pool.submit(_run_job, job))
        while pending:
            result = pending.popleft().result()
            for job in itertools.islice(queue, 1):
                pending.append(pool.submit(_run_job, job))
            yield result
    except BaseException:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
