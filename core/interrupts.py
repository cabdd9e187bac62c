"""Ctrl-C and SIGTERM that always end a command: 130 and 143, never lost.

Python runs a signal handler in the main thread, between two bytecodes,
wherever the thread happens to be. When that is inside a finalizer (a
``__del__`` method or a weakref callback: h5py runs one for every object it
frees, dozens per chunk the dataset writer stores), the ``KeyboardInterrupt``
the handler raises is printed as "Exception ignored" and dropped, and the
command runs on to the end and exits 0.

So the handlers installed by :func:`install` record the signal before they
raise. A raise that lands in a finalizer is dropped quietly (the recorded
signal stands for it); long loops call :func:`raise_if_interrupted` between
units of work (the dataset writer after every chunk), which raises it again
where it unwinds properly, and :func:`core.commandline.run_cli` calls it once
more after the command returns, so the exit code is 130 or 143 whatever
happened to the first raise.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from types import FrameType
from typing import Any, TypeVar

R = TypeVar("R")

__all__ = [
    "Terminated",
    "install",
    "raise_if_interrupted",
    "result_or_interrupt",
    "signal_exception",
]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C: files closed, workers ended."""


_received: int | None = None  # the signal number recorded by the handler, until restored


def signal_exception(signum: int) -> KeyboardInterrupt:
    """The exception that stands for signal ``signum``: :class:`Terminated` for SIGTERM, else ``KeyboardInterrupt``."""
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _received
    _received = signum
    raise signal_exception(signum)


def _quiet_dropped_interrupt(previous: Callable[[Any], object]) -> Callable[[Any], object]:
    """An unraisable hook that says nothing of an interrupt dropped in a finalizer.

    The interrupt is recorded and raised again at the next safe point, so the
    "Exception ignored ... KeyboardInterrupt" text would only alarm; anything
    else goes to the previous hook.
    """

    def hook(args: Any) -> None:
        if _received is not None and isinstance(args.exc_value, KeyboardInterrupt):
            return
        previous(args)

    return hook


def raise_if_interrupted() -> None:
    """Raise the Ctrl-C (``KeyboardInterrupt``) or SIGTERM (:class:`Terminated`) received, if any.

    A no-op unless :func:`install`'s handlers are in place and a signal came.
    Call it between units of work whose end must not be reached after a
    signal (a dataset renamed complete): its first raise may have been
    dropped in a finalizer.
    """
    if _received is not None:
        raise signal_exception(_received)


def result_or_interrupt(future: Future[R], *, poll_s: float = 0.25) -> R:
    """``future.result()``, raising a recorded signal while it waits.

    A signal whose first raise was dropped in a finalizer is only recorded: a
    command waiting for a job that takes long (a worker held up, a plugin that
    hangs) would wait on, so the wait looks at the record every ``poll_s``.
    """
    while True:
        try:
            return future.result(timeout=poll_s)
        except TimeoutError:
            if future.done():  # the job's own TimeoutError
                raise
            raise_if_interrupted()


def install() -> Callable[[], None]:
    """Record-and-raise handlers for SIGINT and SIGTERM; returns the function that restores.

    Only in the main thread (elsewhere signals cannot be handled, and this
    returns a no-op). SIGINT is taken over only where Python's own handler
    is in place: a shell that started the process with Ctrl-C ignored (a
    background job) keeps it ignored.
    """
    global _received
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    _received = None
    previous_term = signal.signal(signal.SIGTERM, _on_signal)
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_signal)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_dropped_interrupt(previous_hook)

    def restore() -> None:
        global _received
        signal.signal(signal.SIGTERM, previous_term)
        if previous_int is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous_int)
        sys.unraisablehook = previous_hook
        _received = None

    return restore
