"""DX7 sysex files read strictly: every voice of every bank, anything else refused in one line.

The reading is NumPy only; the tests that render or compare with Dexed's own
reading need dexed-py (the optional extra).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.commandline import run_cli
from core.errors import InverSynthError
from generators.dexed.engine import read_bank, read_syx_voices, read_voice_syx
from generators.dexed.sysex import MAX_SYX_BYTES, checksum


def _bank(seed: int, *, channel: int = 0) -> bytes:
    """A 32-voice bulk dump of random packed voices (data bytes 0..127), checksum right."""
    payload = np.random.default_rng(seed).integers(0, 128, 4096).astype(np.uint8).tobytes()
    return (
        bytes([0xF0, 0x43, channel, 0x09, 0x20, 0x00]) + payload + bytes([checksum(payload), 0xF7])
    )


def _voice(seed: int) -> bytes:
    """A single-voice dump of an in-range voice (INIT VOICE's values, a random name)."""
    from generators.dexed.engine import INIT_VOICE, voices_from_values

    name = "".join(chr(c) for c in np.random.default_rng(seed).integers(65, 91, 10))
    payload = voices_from_values(INIT_VOICE[None, :], name=name)[0].tobytes()
    return bytes([0xF0, 0x43, 0x00, 0x00, 0x01, 0x1B]) + payload + bytes([checksum(payload), 0xF7])


def test_every_voice_of_every_message_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "three.syx"
    path.write_bytes(_bank(1) + _voice(2) + _bank(3, channel=5))
    voices = read_syx_voices(path)
    assert voices.shape == (65, 155) and voices.dtype == np.uint8
    one = tmp_path / "one.syx"
    one.write_bytes(_bank(1))
    np.testing.assert_array_equal(voices[:32], read_bank(one))
    np.testing.assert_array_equal(voices[32], np.frombuffer(_voice(2)[6:161], np.uint8))
    np.testing.assert_array_equal(read_voice_syx(path, voice=33), voices[32])
    # read_bank keeps its contract, one bank, and never drops the others silently.
    with pytest.raises(InverSynthError, match=r"holds 2 bank\(s\), 1 voice\(s\), not one"):
        read_bank(path)
    with pytest.raises(InverSynthError, match=r"holds voices 1\.\.65, got voice 66"):
        read_voice_syx(path, voice=66)


def test_a_bank_is_read_as_dexed_reads_it(tmp_path: Path, extra: Any) -> None:
    dexed = extra
    path = tmp_path / "noise.syx"  # random bytes: many fields out of their DX7 range
    path.write_bytes(_bank(7))
    theirs = [np.frombuffer(p.to_sysex()[:155], np.uint8) for p in dexed.Patch.load_bank(str(path))]
    np.testing.assert_array_equal(read_bank(path), np.array(theirs))


def _refused(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "x.syx"
    path.write_bytes(data)
    with pytest.raises(InverSynthError) as error:
        read_voice_syx(path)
    message = str(error.value)
    assert "\n" not in message and repr(str(path)) in message
    return message


def test_anything_but_dx7_messages_is_refused_saying_what_was_found(tmp_path: Path) -> None:
    bank = _bank(1)
    damaged = bank[:100] + bytes([bank[100] ^ 1]) + bank[101:]
    riff = b"RIFF" + bytes(40) + b"WAVEfmt "
    cases = {
        "text": (b"hello, this is not a bank\n" * 200, r"it is text \('hello, this is"),
        "wav": (riff + bytes(5000), r"it is a RIFF file \(WAV\)"),
        "bank inside": (bytes(16) + bank + bytes(16), "it is bytes 00 00 00"),
        "trailing": (bank + b"\n", r"after 1 message\(s\), 1 bytes are not sysex \(0A\)"),
        "between": (bank + b"xx" + bank, r"after 1 message\(s\), bytes 4,104\.\. are not sysex"),
        "truncated": (bank[:3000], "message at byte 0 has no end"),
        "cut short": (bank[:3000] + bank, r"cut short: byte 3,000 is 0xf0 before its end"),
        "checksum": (bank + damaged, r"bank 2 \(message 2, byte 4,104\) fails its checksum"),
        "maker": (b"\xf0\x41\x10\x42\x12\x00\xf7", "manufacturer 0x41's message"),
        "format": (b"\xf0\x43\x00\x01\x00\x00\x00\xf7", "dump of format 0x01"),
        "length": (bank[:-3] + bank[-2:], "bank dump of 4,103 bytes"),
    }
    for name, (data, expected) in cases.items():
        message = _refused(tmp_path, data)
        assert re.search(expected, message), (name, message)


def test_files_are_bounded_and_regular(tmp_path: Path) -> None:
    big = tmp_path / "big.syx"
    with open(big, "wb") as fh:  # 50 MB with a bank inside, sparse
        fh.write(_bank(1))
        fh.truncate(50 * 2**20)
    with pytest.raises(InverSynthError, match=f"52,428,800 bytes; .* at most {MAX_SYX_BYTES:,}"):
        read_bank(big)
    fifo = tmp_path / "fifo.syx"
    os.mkfifo(fifo)
    for path, kind in ((tmp_path, "a folder"), (fifo, "a FIFO"), (Path("/dev/null"), "device")):
        with pytest.raises(InverSynthError, match=f"is not a regular file .*{kind}"):
            read_voice_syx(path)
    with pytest.raises(InverSynthError, match="does not exist"):
        read_bank(tmp_path / "nope.syx")
    (tmp_path / "empty.syx").write_bytes(b"")
    with pytest.raises(InverSynthError, match="is empty"):
        read_voice_syx(tmp_path / "empty.syx")


def test_the_bank_command_makes_a_dataset_of_every_bank_and_refuses_other_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: Any
) -> None:
    from generators.dataset import open_dataset
    from generators.dexed.commands import main

    two = tmp_path / "two.syx"
    two.write_bytes(_bank(1) + _bank(2))
    config = Path(__file__).resolve().parents[1] / "plugin_config" / "dexed_small.json"
    args = ["bank", "--config", str(config), "--dataset_directory", str(tmp_path)]
    args += ["--length", "0.125", "--note_length", "0.1", "--no_progress", "--name"]
    assert main([*args, "two", "--bank", str(two)]) == 0
    with open_dataset(tmp_path / "two_data.hdf5") as dataset:
        assert dataset.n_examples == 64
    text = tmp_path / "notes.syx"
    text.write_text("not a bank\n")
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, [*args, "text", "--bank", str(text)])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and "is not DX7 sysex: it is text" in line
    assert not list(tmp_path.glob("text_data*"))
