"""The worker pool of the toolkit: processes that each hold one synth and run jobs with it.

The dataset writer renders chunks with it; a run's resynthesis renders
predictions with it. Workers start with the "spawn" method: they begin clean,
without whatever the calling process imported (TensorFlow and DawDreamer must
never meet in one process), and each builds its synth once, from the synth's
registry name and ``config()``.

A command can start its workers before it imports what it needs itself
(:func:`started_workers`): they spawn, import the synth and load its compiled
code while the command prepares its files, and :func:`map_in_workers` then
takes them over. On two cores this hides most of a small dataset's start-up.

Workers die with the process that started them, however it ends (``kill
-9`` included): a watchdog thread ends a worker whose parent is gone, within
a second. An orphaned worker would otherwise hold its memory (a few hundred
MB) forever. (Not ``PR_SET_PDEATHSIG``: it fires when the *thread* that
started the worker ends, and the training stream starts its workers from a
``tf.data`` thread that ends between epochs.)
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from core.checks import check_positive_int
from core.interrupts import result_or_interrupt
from generators.sound_generator import SoundGenerator, load_generator

__all__ = ["JOBS_PER_WORKER", "map_in_workers", "started_workers"]

J = TypeVar("J")
R = TypeVar("R")

JOBS_PER_WORKER = 2  # jobs in flight per worker: one running, one queued behind it
_WATCHDOG_INTERVAL_S = 1.0

# State of a worker process, set once by its initializer.
_worker_synth: SoundGenerator | None = None

# Pools started ahead of their jobs (started_workers), by (synth name, config, workers).
_PoolKey = tuple[str, str, int]
_started: dict[_PoolKey, ProcessPoolExecutor] = {}


def _die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` ends (see the module docstring)."""
    if os.getppid() != parent_pid:  # the parent died before this worker started
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_WATCHDOG_INTERVAL_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread (a Ctrl-C meanwhile is delivered after)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _init_worker(parent_pid: int, name: str, config: dict[str, Any]) -> None:
    global _worker_synth
    _die_with_parent(parent_pid)
    # Ctrl-C reaches every process of the terminal's group: the parent handles
    # it (and ends the workers), so a worker does not print a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_synth = load_generator(name, config)
    _worker_synth.prepare()  # the first job then starts at full speed


def _run_job(task: Callable[[SoundGenerator, Any], Any], job: Any) -> Any:
    if _worker_synth is None:  # pragma: no cover - the initializer ran
        raise RuntimeError("worker has no synth")
    return task(_worker_synth, job)


def _ready() -> None:
    """A job that only makes a worker start (its initializer runs first)."""


def _key(generator_name: str, generator_config: dict[str, Any], workers: int) -> _PoolKey:
    return generator_name, json.dumps(generator_config, sort_keys=True), workers


def _new_pool(
    generator_name: str, generator_config: dict[str, Any], workers: int
) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(os.getpid(), generator_name, generator_config),
    )


@contextlib.contextmanager
def started_workers(
    *, generator_name: str, generator_config: dict[str, Any], workers: int
) -> Iterator[None]:
    """Start ``workers`` processes of a synth now, for a :func:`map_in_workers` inside the block.

    They spawn, build the synth and :meth:`~generators.sound_generator.SoundGenerator.prepare`
    it while this process goes on importing and preparing its files. A
    :func:`map_in_workers` of the same synth, config and number of workers in
    the block takes them over; if none does (the command was refused, or had
    nothing to render), they are ended when the block ends. One worker: a
    no-op (the caller renders in its own process).
    """
    workers = check_positive_int(workers, "workers")
    key = _key(generator_name, generator_config, workers)
    mine = workers > 1 and key not in _started  # an enclosing block's workers stay its own
    if mine:
        pool = _new_pool(generator_name, generator_config, workers)
        for _ in range(workers):  # the pool spawns a process per job while none is idle
            with _sigint_blocked():
                pool.submit(_ready)
        _started[key] = pool
    try:
        yield
    finally:
        unused = _started.pop(key, None) if mine else None
        if unused is not None:
            _end_now(unused)


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
        :func:`~generators.sound_generator.load_generator`.
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
    pool = _started.pop(_key(generator_name, generator_config, workers), None)
    if pool is None:
        pool = _new_pool(generator_name, generator_config, workers)
    queue = iter(jobs)
    pending: collections.deque[Future[R]] = collections.deque()

    def submit(job: J) -> None:
        # submit() starts the worker processes. They are born with SIGINT blocked
        # (the mask is inherited): Ctrl-C reaches the terminal's whole group, and a
        # worker still starting up would die of it printing a traceback; the
        # parent handles Ctrl-C and ends them.
        with _sigint_blocked():
            pending.append(pool.submit(_run_job, task, job))

    try:
        for job in itertools.islice(queue, JOBS_PER_WORKER * workers):
            submit(job)
        while pending:
            result = result_or_interrupt(pending.popleft())
            for job in itertools.islice(queue, 1):
                submit(job)
            yield result
    except BaseException:
        # The jobs are abandoned: end the workers now, not after their current jobs
        # (a SIGTERM reaches this process only).
        _end_now(pool)
        raise
    # Every result is in and the workers wait idle: ending them spares their exit, which
    # tears down Numba and LLVM for 0.2-0.5 s (more on a busy machine) while this waits.
    _end_now(pool)


def _end_now(pool: ProcessPoolExecutor) -> None:
    """End a pool's workers at once, whatever they are doing; its jobs left fail unseen.

    The pool then fails the jobs left (BrokenProcessPool, never seen).
    Cancelling them first instead would make the pool's own thread fail on
    them (Python 3.11).
    """
    processes = getattr(pool, "_processes", None)
    if processes is None:  # not CPython's pool: cancel what has not started
        pool.shutdown(wait=False, cancel_futures=True)
        return
    for process in list(processes.values()):
        with contextlib.suppress(OSError):
            process.terminate()  # a no-op for one that has already ended
    # A worker ended while sending a result leaves half a message in the
    # result pipe, and the pool's thread waiting for the rest (forever: this
    # process holds a writing end too, and the exit waits for that thread).
    # Closing our writing end turns the wait into end-of-file once the
    # workers are gone.
    writer = getattr(getattr(pool, "_result_queue", None), "_writer", None)
    if writer is not None:
        with contextlib.suppress(OSError):
            writer.close()
    pool.shutdown(wait=False)
