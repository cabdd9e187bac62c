"""A dataset's disk space: checked and reserved before its first example, HDF5 allocated in full.

A dataset is allocated in full before the first example renders
(:func:`reserve`, :func:`create_preallocated`), so that a full disk or a
file-size limit ends the run at once, in one line, and never halfway with a
file that cannot be resumed; :func:`check_room` refuses one that cannot fit
before anything is written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InverSynthError
from core.storage import format_size, size_limit_as_error

__all__ = ["check_room", "close_quietly", "create_preallocated", "reserve"]


def reserve(path: Path, n_bytes: int) -> None:
    """Allocate the first ``n_bytes`` of ``path`` on disk now (creating it); raises OSError.

    Existing contents stay as they are. A file system that cannot reserve
    space (it lacks ``fallocate``) is left to fail at write time, as before.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with size_limit_as_error():
            os.posix_fallocate(fd, 0, max(1, n_bytes))
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    finally:
        os.close(fd)


def check_room(needs: list[tuple[Path, int, str]], *, advice: str) -> None:
    """Refuse, in one line, files that cannot fit on their disks, before anything is written.

    Parameters
    ----------
    needs : list of (folder, bytes, what)
        The folders to write into, how many bytes each needs and what they
        are ("2,000 examples"); folders on one disk add up.
    advice : str
        What to do instead, ending the message.
    """
    by_device: dict[int, tuple[Path, int, str]] = {}  # device -> (folder, bytes, what)
    for folder, n_bytes, what in needs:
        device = os.stat(folder).st_dev
        old = by_device.get(device)
        if old is None:
            by_device[device] = (folder, n_bytes, what)
        else:
            by_device[device] = (old[0], old[1] + n_bytes, f"{old[2]} and {what}")
    for folder, n_bytes, what in by_device.values():
        free = shutil.disk_usage(folder).free
        if n_bytes > free:
            raise InverSynthError(
                f"the dataset needs {format_size(n_bytes)} ({what}) but the disk of {str(folder)!r} "
                f"has {format_size(free)} free; {advice}"
            )


def close_quietly(f: Any) -> None:
    """Close after a failure; a second failure (the disk still full) must not hide the first."""
    with contextlib.suppress(Exception):
        f.close()


def create_preallocated(
    f: Any, name: str, shape: tuple[int, ...], dtype: Any, chunks: tuple[int, ...]
) -> None:
    """A chunked dataset of the open ``h5py.File`` ``f``, its storage allocated at creation and never filled."""
    import h5py  # deferred: the result-file helpers above serve processes that never open HDF5

    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk(chunks)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    dcpl.set_obj_track_times(False)  # no time stamps: one seed, one set of bytes
    space = h5py.h5s.create_simple(shape)
    tid = h5py.h5t.py_create(np.dtype(dtype))
    h5py.h5d.create(f.id, name.encode(), tid, space, dcpl=dcpl)
