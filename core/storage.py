"""Result files written whole or not at all, and a failed write said in one line.

Every result file of the toolkit (JSON, CSV, NPZ, WAV, PNG, ``.keras``
checkpoints, ``.fxp`` / ``.syx`` presets) is written by :func:`atomic_path`,
:func:`open_atomic` or :func:`write_atomic`: to a temporary file in the same
folder, flushed to disk (``fsync``), then renamed over the final name. On any
failure (a full disk, a read-only folder, a file-size limit, Ctrl-C) the
temporary file is removed, the earlier file of that name is left as it was,
and a failed write becomes one :class:`WriteError` line naming the folder,
its free space and the cause.

A dataset's space is reserved before it is written: :mod:`generators.disk_space`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from core.errors import InverSynthError

__all__ = [
    "WriteError",
    "atomic_path",
    "file_in_the_way",
    "format_size",
    "free_bytes",
    "open_atomic",
    "os_reason",
    "size_limit_as_error",
    "write_atomic",
    "write_failed",
]


class WriteError(InverSynthError):
    """A result file could not be written (full disk, read-only folder, size limit).

    Nothing half-written is left: the message names the folder, its free
    space, the cause, and what was kept. ``failure`` is the message without
    what was kept, for a caller that knows better (:meth:`keeping`).
    """

    failure: str = ""
    reason: str = ""  # the cause in a few words ("No space left on device")

    def keeping(self, kept: str) -> WriteError:
        """The same failure, saying ``kept`` about what was kept."""
        error = WriteError(f"{self.failure}; {kept}")
        error.failure, error.reason = self.failure, self.reason
        return error


def free_bytes(folder: str | Path) -> int | None:
    """Free space of the disk of ``folder`` (or of its nearest existing ancestor); None if unknown."""
    for candidate in [Path(folder), *Path(folder).parents]:
        with contextlib.suppress(OSError):
            return shutil.disk_usage(candidate).free
    return None


def write_failed(path: str | Path, exc: BaseException, *, kept: str | None = None) -> WriteError:
    """The one-line error of a write of ``path`` that failed with ``exc``.

    Parameters
    ----------
    path : path-like
        The file (or folder) that was being written.
    exc : BaseException
        The cause (its system error name is used: "No space left on device").
    kept : str, optional
        What was kept; default: the earlier file of that name, or nothing.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    free = free_bytes(folder)
    space = f"{format_size(free)} free on its disk" if free is not None else "free space unknown"
    failure = f"cannot write {path.name!r} in {str(folder)!r}: {os_reason(exc)} ({space})"
    if kept is None:
        kept = (
            f"nothing half-written is left, and the earlier {path.name} is kept"
            if path.exists()
            else "nothing half-written is left"
        )
    error = WriteError(f"{failure}; {kept}")
    error.failure, error.reason = failure, os_reason(exc)
    return error


def _is_write_failure(exc: BaseException) -> bool:
    """An OSError (a full disk, a read-only folder, a size limit), itself or as the cause of ``exc``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _sync_file(path: Path) -> None:
    """Flush ``path``'s data to the disk: a full disk may only say so here."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every file system can)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def size_limit_as_error() -> Iterator[None]:
    """A file-size limit (``ulimit -f``) fails a write with EFBIG instead of killing with SIGXFSZ."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set a handler; elsewhere the process's setting stands
        return
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGXFSZ, previous)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, kept: str | None = None) -> Iterator[Path]:
    """A temporary path to write ``path``'s contents to; renamed over ``path`` when the block ends.

    The temporary file is in the same folder (so the rename is atomic) and
    has the same suffix (libraries that choose a format by suffix, or insist
    on one, such as NumPy's ``.npz`` and Keras's ``.keras``, write it as
    ``path``). The folder must exist: a missing one is a failed write.

    Parameters
    ----------
    path : path-like
        The final file.
    kept : str, optional
        What the error message says was kept, when a write fails.

    Yields
    ------
    Path
        Write the whole file here (any library, any number of writes).

    Raises
    ------
    WriteError
        A write, the flush or the rename failed with an ``OSError`` (full disk,
        read-only folder, file-size limit); the temporary file is gone.
        Other exceptions (Ctrl-C included) are raised unchanged, after the
        temporary file is removed.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        with size_limit_as_error():
            yield tmp
            _sync_file(tmp)
            os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, Exception) and _is_write_failure(exc):
            raise write_failed(path, exc, kept=kept) from None
        raise
    _sync_folder(path.parent)


@contextlib.contextmanager
def open_atomic(
    path: str | Path,
    mode: str = "w",
    *,
    newline: str | None = None,
    kept: str | None = None,
) -> Iterator[IO[Any]]:
    """``open(path, mode)`` for writing, through :func:`atomic_path`: whole or not at all.

    Parameters
    ----------
    path : path-like
    mode : {"w", "wb"}
        Text (UTF-8) or bytes.
    newline : str, optional
        As for :func:`open` (``""`` for the csv module).
    kept : str, optional
        See :func:`atomic_path`.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"open_atomic writes a new file: mode 'w' or 'wb', got {mode!r}")
    encoding = "utf-8" if mode == "w" else None
    with (
        atomic_path(path, kept=kept) as tmp,
        open(tmp, mode, encoding=encoding, newline=newline) as fh,
    ):
        yield fh


def write_atomic(path: str | Path, data: bytes | str, *, kept: str | None = None) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path``, whole or not at all; see :func:`atomic_path`."""
    with open_atomic(path, "wb" if isinstance(data, bytes) else "w", kept=kept) as fh:
        fh.write(data)
    return Path(path)


def file_in_the_way(folder: Path) -> Path | None:
    """The nearest existing ancestor of ``folder`` (or itself) if it is not a folder."""
    for candidate in [folder, *folder.parents]:
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def os_reason(exc: BaseException) -> str:
    """A failed write in a few words: the system's name for its errno ("No space left on device")."""
    if isinstance(exc, WriteError):
        return exc.reason
    code = getattr(exc, "errno", None)
    if code is None:  # h5py puts the errno in its message text
        match = re.search(r"errno = (\d+)", str(exc))
        code = int(match.group(1)) if match else None
    if code is not None and code in errno.errorcode:
        return os.strerror(code)
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__


def format_size(n_bytes: int) -> str:
    if n_bytes >= 1e9:
        return f"{n_bytes / 1e9:,.1f} GB"
    return f"{n_bytes / 1e6:,.1f} MB"
