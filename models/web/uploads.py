"""What a browser sends: the sound file's name and bytes, checked before anything is queued.

A name is a plain file name with an audio extension (no folder, no ``..``, no
control characters), so it can name a file inside the serve folder and
nothing else. The bytes are written to ``{name}.partial`` and renamed when
complete and within the size limit; a refused upload leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import unicodedata
from pathlib import Path
from typing import Protocol

from core.errors import InverSynthError
from models.matching.audio_io import AUDIO_EXTENSIONS

__all__ = [
    "MAX_NAME_CHARACTERS",
    "PARTIAL_SUFFIX",
    "UploadTooLargeError",
    "check_name",
    "size_text",
    "store_upload",
]

MAX_NAME_CHARACTERS = 120
PARTIAL_SUFFIX = ".partial"
_CHUNK_BYTES = 1 << 20
# Letters, digits and a few marks; anything else (a slash, a backslash, a colon,
# quotes, control characters) is a path or shell character and refused.
_NAME = re.compile(r"^[\w][\w .,()+\-]*$")


class UploadTooLargeError(InverSynthError):
    """A file over the upload limit (HTTP 413)."""

    status = 413


class _Readable(Protocol):
    async def read(self, size: int = -1) -> bytes: ...


def size_text(n_bytes: int) -> str:
    """``20 MB``, ``1.5 MB``, ``800 kB``."""
    if n_bytes >= 1_000_000:
        return f"{n_bytes / 1_000_000:.3g} MB"
    return f"{n_bytes / 1000:.3g} kB"


def check_name(name: str) -> str:
    """A sound file's name as the page takes it, or :class:`InverSynthError` saying why not.

    Parameters
    ----------
    name : str
        The name the browser sent (its file's base name).

    Returns
    -------
    str
        ``name``, NFC-normalised.
    """
    text = unicodedata.normalize("NFC", name or "")
    shown = text if len(text) <= 60 else text[:40] + "..."
    if not text:
        raise InverSynthError("the file has no name")
    if any(c in text for c in "/\\:") or ".." in text or "\x00" in text:
        raise InverSynthError(
            f"the file name {shown!r} contains path characters (/, \\, :, ..); rename the file"
        )
    if len(text) > MAX_NAME_CHARACTERS:
        raise InverSynthError(f"the file name is longer than {MAX_NAME_CHARACTERS} characters")
    if not _NAME.match(text):
        raise InverSynthError(
            f"the file name {shown!r} may hold letters, digits, spaces and . , ( ) + - _ "
            "only, and must start with a letter or digit"
        )
    suffix = Path(text).suffix.lower()
    if suffix not in AUDIO_EXTENSIONS:
        kinds = ", ".join(AUDIO_EXTENSIONS)
        raise InverSynthError(f"{shown!r} is not a sound file this page reads ({kinds})")
    return text


async def store_upload(source: _Readable, destination: Path, *, max_bytes: int) -> int:
    """Copy an upload to ``destination`` through ``{destination}.partial``.

    Parameters
    ----------
    source : object with ``async read(size)``
        The uploaded file (Starlette's ``UploadFile``).
    destination : Path
        Its final path; the folder is created.
    max_bytes : int
        The largest file taken.

    Returns
    -------
    int
        Bytes written.

    Raises
    ------
    UploadTooLargeError
        Larger than ``max_bytes`` (nothing is left on disk).
    InverSynthError
        Empty.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + PARTIAL_SUFFIX)
    written = 0
    try:
        with open(partial, "wb") as out:
            while chunk := await source.read(_CHUNK_BYTES):
                written += len(chunk)
                if written > max_bytes:
                    raise UploadTooLargeError(
                        f"the file is larger than the upload limit of {size_text(max_bytes)}"
                    )
                out.write(chunk)
        if written == 0:
            raise InverSynthError(f"{destination.name!r} is empty")
        os.replace(partial, destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    return written
