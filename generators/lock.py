"""One writer per dataset file: an exclusive lock held for the whole of a run.

A run that writes ``data/fm_data.hdf5`` holds ``data/fm_data.hdf5.lock``
(``fcntl.flock``) from before it looks at the file until it has renamed the
finished file into place. A second run for the same file (plain,
``--overwrite`` or ``--resume``) finds the lock taken and stops with one line
naming the process that holds it, touching nothing. The operating system
releases the lock when its process ends, however it ends (``kill -9``
included), so a crashed run never blocks the next one.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from core.errors import InverSynthError
from generators.schema import lock_path

__all__ = ["DatasetLock"]


class DatasetLock:
    """The exclusive lock of the dataset file ``path``, as a context manager.

    Parameters
    ----------
    path : path-like
        The dataset's final file name; the lock is ``{path}.lock`` beside it.

    Raises
    ------
    InverSynthError
        On entering, when another process holds the lock (the message names
        its process id) or the lock file cannot be made.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock_file = lock_path(self.path)
        self._fd: int | None = None

    def acquire(self) -> None:
        while True:
            try:
                fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise InverSynthError(
                    f"cannot create the lock file {str(self.lock_file)!r}: {exc.strerror}"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                who = f"pid {holder}" if holder else "pid unknown"
                raise InverSynthError(
                    f"{str(self.path)!r} is being written by another process ({who}); "
                    "wait for it to finish, or stop it and run again with --resume"
                ) from None
            # The holder before us may have removed the file after we opened it:
            # a lock on a removed file guards nothing, so take the one now on disk.
            try:
                same = os.stat(self.lock_file).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Remove the lock file and release the lock (removed first, while still held)."""
        if self._fd is None:
            return
        try:
            self.lock_file.unlink(missing_ok=True)
        finally:
            os.close(self._fd)  # closing releases the lock
            self._fd = None

    def __enter__(self) -> DatasetLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    """The process id the lock's holder wrote into it (None if not readable yet)."""
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
