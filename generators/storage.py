"""Files on disk for the dataset writer: reserving space, preallocated HDF5 arrays, readable sizes.

A dataset is allocated in full before the first example renders, so that a
full disk or a file-size limit ends the run at once, in one line, and never
halfway with a file that cannot be resumed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import threading
from pathlib import Path
from typing import Any

import h5py
import numpy as np

__all__ = [
    "close_quietly",
    "create_preallocated",
    "file_in_the_way",
    "format_size",
    "os_reason",
    "reserve",
]


def file_in_the_way(folder: Path) -> Path | None:
    """The nearest existing ancestor of ``folder`` (or itself) if it is not a folder."""
    for candidate in [folder, *folder.parents]:
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def os_reason(exc: Exception) -> str:
    """A failed write in a few words: the system's name for its errno ("No space left on device")."""
    code = getattr(exc, "errno", None)
    if code is None:  # h5py puts the errno in its message text
        match = re.search(r"errno = (\d+)", str(exc))
        code = int(match.group(1)) if match else None
    if code is not None and code in errno.errorcode:
        return os.strerror(code)
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__


def reserve(path: Path, n_bytes: int) -> None:
    """Allocate the first ``n_bytes`` of ``path`` on disk now (creating it); raises OSError.

    Existing contents stay as they are. A file system that cannot reserve
    space (it lacks ``fallocate``) is left to fail at write time, as before.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    # A file-size limit (ulimit -f) would kill the process with SIGXFSZ: get EFBIG instead.
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN) if in_main else None
    try:
        os.posix_fallocate(fd, 0, max(1, n_bytes))
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    finally:
        os.close(fd)
        if in_main:
            signal.signal(signal.SIGXFSZ, previous)


def close_quietly(f: h5py.File) -> None:
    """Close after a failure; a second failure (the disk still full) must not hide the first."""
    with contextlib.suppress(Exception):
        f.close()


def format_size(n_bytes: int) -> str:
    if n_bytes >= 1e9:
        return f"{n_bytes / 1e9:,.1f} GB"
    return f"{n_bytes / 1e6:,.1f} MB"


def create_preallocated(
    f: h5py.File, name: str, shape: tuple[int, ...], dtype: Any, chunks: tuple[int, ...]
) -> None:
    """A chunked dataset whose storage is allocated at creation and never filled."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk(chunks)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    dcpl.set_obj_track_times(False)  # no time stamps: one seed, one set of bytes
    space = h5py.h5s.create_simple(shape)
    tid = h5py.h5t.py_create(np.dtype(dtype))
    h5py.h5d.create(f.id, name.encode(), tid, space, dcpl=dcpl)
