"""The serve folder: made and marked by the page, held locked while a page serves from it.

A serve folder holds a marker file (:data:`MARKER`); an existing folder that holds
anything else without it is refused, since cleaning it would delete files the page
never wrote. While a server runs it holds the marker locked (``fcntl.flock``, its
process id written in it): a second server on the same folder is refused (its
start-up clean-up would delete the first one's uploads), and
``python -m generators.clean`` leaves the folder alone. The operating system
releases the lock when the process ends, however it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from pathlib import Path
from typing import Protocol

from core.errors import InverSynthError
from generators.outputs import SERVE_MARKER, lock_holder

__all__ = ["MARKER", "ServeFolderLock", "open_serve_folder"]

MARKER = SERVE_MARKER  # in a serve folder: the page may clean it


class _Folders(Protocol):
    @property
    def serve_dir(self) -> Path: ...
    @property
    def uploads_dir(self) -> Path: ...
    @property
    def results_dir(self) -> Path: ...


class ServeFolderLock:
    """The lock a server holds on its serve folder's marker; :meth:`release` lets it go.

    Released also when the object is dropped, so a check that keeps no
    reference (``open_serve_folder(settings)``) holds nothing.
    """

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        """Empty the marker (no process serves from it now) and release the lock."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):  # read-only: the lock goes with the descriptor anyway
            os.ftruncate(fd, 0)
        os.close(fd)

    def __del__(self) -> None:
        self.release()


def _lock_marker(folder: Path) -> ServeFolderLock:
    marker = folder / MARKER
    fd = os.open(marker, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        holder = lock_holder(marker) or "another process"
        raise InverSynthError(
            f"another matching page ({holder}) serves from {str(folder)!r}; stop it, or give "
            "--serve_directory another folder"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return ServeFolderLock(fd)


def open_serve_folder(settings: _Folders) -> ServeFolderLock:
    """Make the serve folder ours, lock it, and remove what a killed server left half-done there.

    Half-done is every upload (no job outlives its server) and every results
    folder without its JSON: the matching library writes the JSON last
    (atomically), so a folder without one is a match that never finished. The
    lock is taken before anything is removed.

    Returns
    -------
    ServeFolderLock
        Held until released (or dropped).

    Raises
    ------
    InverSynthError
        The folder cannot be created, is not a serve folder, or another server
        serves from it.
    """
    folder = settings.serve_dir
    try:
        if folder.is_dir() and any(folder.iterdir()) and not (folder / MARKER).is_file():
            raise InverSynthError(
                f"{str(folder)!r} holds other files and is not a serve folder (no {MARKER}); "
                "give --serve_directory a new or empty folder"
            )
        folder.mkdir(parents=True, exist_ok=True)
        lock = _lock_marker(folder)
    except OSError as exc:
        raise InverSynthError(
            f"cannot use {str(folder)!r} as the serve folder: {exc.strerror}"
        ) from None
    shutil.rmtree(settings.uploads_dir, ignore_errors=True)
    if settings.results_dir.is_dir():
        for result in settings.results_dir.iterdir():
            if result.is_dir() and not any(result.glob("*.json")):
                shutil.rmtree(result, ignore_errors=True)
    return lock
