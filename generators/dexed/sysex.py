"""DX7 sysex files, read strictly: every message checked, nothing else accepted.

A ``.syx`` file is a sequence of MIDI system-exclusive messages, each ``F0``,
data bytes (``00``..``7F``), ``F7``. The DX7's voices travel in two of them
(``n`` is the MIDI channel, 0..15; the checksum is the low 7 bits of minus
the sum of the data bytes):

* a single voice ("VCED"), ``F0 43 0n 00 01 1B <155 bytes> checksum F7``,
  :data:`SINGLE_VOICE_SIZE` bytes;
* a 32-voice bulk dump, a cartridge ("VMEM"), ``F0 43 0n 09 20 00 <32 x 128
  packed bytes> checksum F7``, :data:`BANK_SIZE` bytes.

:func:`split_messages` accepts a file only if it is nothing but such messages,
banks and single voices in any number and order, each with its checksum right.
Anything else (a text file, a WAV renamed to ``.syx``, a bank inside a larger
file, a truncated or padded message, another maker's message) is refused in
one line that says what was found and where. :func:`read_syx_bytes` reads
regular files only (not a folder, FIFO or device) of at most
:data:`MAX_SYX_BYTES`: 1 MiB, 255 banks; larger collections come as many files.

NumPy only: dexed-py is not needed to read voices.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import InverSynthError

__all__ = [
    "BANK_SIZE",
    "MAX_SYX_BYTES",
    "SINGLE_VOICE_HEADER",
    "SINGLE_VOICE_SIZE",
    "VOICE_BYTES",
    "SyxMessage",
    "checksum",
    "read_syx_bytes",
    "split_messages",
    "unpack_bank",
]

VOICE_BYTES = 155  # a voice without the operator on/off byte Dexed keeps after it
PACKED_VOICE_BYTES = 128
SINGLE_VOICE_HEADER = bytes([0xF0, 0x43, 0x00, 0x00, 0x01, 0x1B])
SINGLE_VOICE_SIZE = 6 + VOICE_BYTES + 2  # 163
BANK_SIZE = 6 + 32 * PACKED_VOICE_BYTES + 2  # 4104
MAX_SYX_BYTES = 1 << 20  # 255 banks
YAMAHA = 0x43
_FORMATS = {0x00: ("voice", bytes([0x01, 0x1B]), SINGLE_VOICE_SIZE), 0x09: ("bank", bytes([0x20, 0x00]), BANK_SIZE)}  # fmt: skip
# What a file that is not sysex starts with, for the message.
_MAGIC = (
    (b"RIFF", "a RIFF file (WAV)"),
    (b"MThd", "a standard MIDI file (.mid)"),
    (b"fLaC", "a FLAC file"),
    (b"OggS", "an Ogg file"),
    (b"ID3", "an MP3 file"),
    (b"\x89PNG", "a PNG image"),
    (b"PK\x03\x04", "a zip archive"),
    (b"%PDF", "a PDF"),
)


@dataclass(frozen=True)
class SyxMessage:
    """One DX7 voice message of a file: ``kind`` ``"voice"`` or ``"bank"``, where, its data."""

    kind: str
    offset: int  # byte of its F0 in the file
    payload: bytes  # 155 bytes (a voice) or 4096 (a bank, packed)


def checksum(payload: bytes) -> int:
    """DX7 sysex checksum: the low 7 bits of minus the sum of the data bytes."""
    return -sum(payload) & 0x7F


def read_syx_bytes(path: str | Path) -> bytes:
    """The bytes of a sysex file: a regular file of at most :data:`MAX_SYX_BYTES`.

    Raises
    ------
    InverSynthError
        Missing, not a regular file (a folder, FIFO, device), empty, too large, unreadable.
    """
    name = repr(str(path))
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InverSynthError(f"sysex file {name} does not exist") from None
    except OSError as exc:
        raise InverSynthError(f"cannot read sysex file {name}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a FIFO, socket or device"
        raise InverSynthError(f"sysex file {name} is not a regular file ({kind})")
    if info.st_size > MAX_SYX_BYTES:
        raise InverSynthError(
            f"sysex file {name} is {info.st_size:,} bytes; a DX7 sysex file is at most "
            f"{MAX_SYX_BYTES:,} bytes (1 MiB, 255 banks of 32 voices): split it into smaller files"
        )
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_SYX_BYTES + 1)  # bounded, should the file grow meanwhile
    except OSError as exc:
        raise InverSynthError(f"cannot read sysex file {name}: {exc.strerror}") from None
    if not data:
        raise InverSynthError(f"sysex file {name} is empty")
    if len(data) > MAX_SYX_BYTES:
        raise InverSynthError(f"sysex file {name} is over {MAX_SYX_BYTES:,} bytes")
    return data


def _what_it_is(data: bytes) -> str:
    """What a file that does not start with F0 seems to be."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    head = data[:40]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and all(c.isprintable() or c in "\t\r\n" for c in text):
        return f"text ({' '.join(text.split())[:30]!r}...)"
    return "bytes " + " ".join(f"{b:02X}" for b in data[:6])


def _message_kind(message: bytes, *, where: str) -> str:
    """``"voice"`` or ``"bank"`` for a DX7 voice message, else an error saying what it is."""
    if len(message) < 6:
        raise InverSynthError(f"{where} is {len(message)} bytes, too short for a DX7 dump")
    if message[1] != YAMAHA:
        maker = "a universal" if message[1] in (0x7E, 0x7F) else f"manufacturer {message[1]:#04x}'s"
        raise InverSynthError(f"{where} is {maker} message, not Yamaha's (0x43)")
    if message[2] >> 4 != 0:
        raise InverSynthError(
            f"{where} is a Yamaha message of sub-status {message[2] >> 4} (a bulk dump is 0)"
        )
    if message[3] not in _FORMATS:
        raise InverSynthError(
            f"{where} is a Yamaha dump of format {message[3]:#04x}, not a DX7 voice (0x00) "
            "or 32-voice bank (0x09)"
        )
    kind, count, size = _FORMATS[message[3]]
    if message[4:6] != count or len(message) != size:
        raise InverSynthError(
            f"{where} is a DX7 {kind} dump of {len(message):,} bytes (byte count "
            f"{message[4]:02X} {message[5]:02X}); a {kind} is {size:,} bytes "
            f"({count[0]:02X} {count[1]:02X}): truncated or padded"
        )
    return kind


def _bounds(data: bytes, source: str) -> list[tuple[int, int]]:
    """(start, end) of every message: F0 at start, F7 at end, data bytes between, nothing else."""
    status = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) >= 0x80)  # F0, F7 and strays
    if data[0] != 0xF0:
        raise InverSynthError(f"{source} is not DX7 sysex: it is {_what_it_is(data)}")
    bounds: list[tuple[int, int]] = []
    i = 0
    while i < status.size:
        start = int(status[i])
        if data[start] != 0xF0 or start != (bounds[-1][1] + 1 if bounds else 0):
            after = bounds[-1][1] if bounds else 0
            raise InverSynthError(
                f"{source}: after {len(bounds)} message(s), bytes {after + 1:,}.. are not sysex "
                f"({' '.join(f'{b:02X}' for b in data[after + 1 : after + 7])})"
            )
        if i + 1 == status.size:
            raise InverSynthError(
                f"{source}: the message at byte {start:,} has no end (F7): the file is truncated"
            )
        end = int(status[i + 1])
        if data[end] != 0xF7:
            raise InverSynthError(
                f"{source}: the message at byte {start:,} is cut short: byte {end:,} is "
                f"{data[end]:#04x} before its end (F7)"
            )
        bounds.append((start, end))
        i += 2
    if bounds[-1][1] != len(data) - 1:
        tail = data[bounds[-1][1] + 1 :]
        raise InverSynthError(
            f"{source}: after {len(bounds)} message(s), {len(tail):,} bytes are not sysex "
            f"({' '.join(f'{b:02X}' for b in tail[:6])})"
        )
    return bounds


def split_messages(data: bytes, *, source: str) -> list[SyxMessage]:
    """The DX7 voice and bank messages of a sysex file, each checked, in file order.

    Parameters
    ----------
    data : bytes
        The file.
    source : str
        The file's name, for the messages.

    Raises
    ------
    InverSynthError
        Naming what was found where: something else than sysex, a message that
        is not a DX7 voice or bank dump, a truncated one, a bad checksum (and
        which bank or voice has it).
    """
    messages = []
    counts = {"voice": 0, "bank": 0}
    for number, (start, end) in enumerate(_bounds(data, source), start=1):
        message = data[start : end + 1]
        kind = _message_kind(message, where=f"{source}: message {number} (byte {start:,})")
        counts[kind] += 1
        payload = message[6:-2]
        if message[-2] != checksum(payload):
            raise InverSynthError(
                f"{source}: {kind} {counts[kind]} (message {number}, byte {start:,}) fails its "
                f"checksum: it says {message[-2]:#04x}, its data sum to {checksum(payload):#04x}; "
                "the file is damaged"
            )
        messages.append(SyxMessage(kind, start, payload))
    return messages


def _normparm(values: np.ndarray, max_value: int) -> np.ndarray:
    """Dexed's reading of a field that may hold noise: kept in range, else rescaled from 0..255."""
    return np.where(values <= max_value, values, (values * max_value) // 255)


def unpack_bank(payload: bytes) -> np.ndarray:
    """The 32 packed voices of a bank, unpacked as Dexed's ``Cartridge::unpackProgram`` does.

    Fields packed into shared bytes are masked to their bits, the pitch
    envelope is brought into 0..99 as Dexed does; other fields keep their
    values (range them with the parameter table).

    Parameters
    ----------
    payload : bytes
        4096 bytes: 32 voices of 128.

    Returns
    -------
    voices : np.ndarray [32, 155], uint8
    """
    packed = np.frombuffer(payload, dtype=np.uint8).reshape(32, PACKED_VOICE_BYTES).astype(np.int64)
    out = np.zeros((32, VOICE_BYTES), dtype=np.int64)
    for op in range(6):  # OP6 first, 17 packed bytes -> 21
        p, u = packed[:, op * 17 : op * 17 + 17], out[:, op * 21 : op * 21 + 21]
        u[:, 0:11] = p[:, 0:11]  # envelope, break point, depths
        u[:, 11], u[:, 12] = p[:, 11] & 0x03, (p[:, 11] >> 2) & 0x03  # curves
        u[:, 13], u[:, 20] = p[:, 12] & 0x07, (p[:, 12] & 0x7F) >> 3  # rate scaling, detune
        u[:, 14], u[:, 15] = p[:, 13] & 0x03, (p[:, 13] & 0x1F) >> 2  # AMS, velocity
        u[:, 16] = p[:, 14] & 0x7F  # output level
        u[:, 17], u[:, 18] = p[:, 15] & 0x01, (p[:, 15] & 0x3F) >> 1  # mode, coarse
        u[:, 19] = p[:, 16] & 0x7F  # fine
    out[:, 126:134] = _normparm(packed[:, 102:110] & 0x7F, 99)  # pitch envelope
    out[:, 134] = packed[:, 110] & 0x1F  # algorithm
    out[:, 135], out[:, 136] = packed[:, 111] & 0x07, (packed[:, 111] & 0x0F) >> 3
    out[:, 137:141] = packed[:, 112:116] & 0x7F  # LFO speed, delay, depths
    lfo = packed[:, 116] & 0x7F
    out[:, 141], out[:, 142], out[:, 143] = lfo & 0x01, (lfo >> 1) & 0x07, lfo >> 4
    out[:, 144:155] = packed[:, 117:128] & 0x7F  # transpose, name
    return out.astype(np.uint8)
