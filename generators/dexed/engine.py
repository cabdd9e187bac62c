"""The DX7 voice as numbers: the engine's 145 parameters, DX7 sysex files, and rendering.

A DX7 voice is 155 bytes (the "VCED" single-voice format): 21 bytes for each of
the six operators (OP6 first), then the pitch envelope, algorithm, feedback, LFO,
transpose and a 10-character name. Without the name that is 145 parameters, the
vector ``dexed.Preset.to_array()`` of dexed-py uses and research on DX7 sound
matching learns:

* **continuous** parameters are ``dx7 / max``, in [0, 1] on a grid of ``max + 1``
  steps (an output level 0..99 is ``k / 99``); the engine plays ``round(value * max)``;
* **discrete** ones (algorithm 0..31, LFO wave 0..5, oscillator mode, curves, syncs)
  are the DX7 integer itself. ``algorithm`` counts from 0: DX7 algorithm 32 is 31.

:data:`ENGINE_PARAMETERS` lists them in that vector's order, with names such as
``op2_frequency_coarse`` (operators numbered 1..6 as on the DX7's panel) and each
one's byte in the voice. Everything here is NumPy only; dexed-py (GPL-3.0, the
optional extra ``dexed``) is imported on first use by :func:`require_dexed`, for
rendering and for 32-voice banks.

Files
-----
* a single-voice dump, ``F0 43 0n 00 01 1B <155 bytes> checksum F7`` (163 bytes), is
  what a DX7 or Dexed receives over MIDI; :func:`write_voice_syx`, :func:`read_voice_syx`;
* a 32-voice bank (cartridge), ``F0 43 0n 09 20 00 <32 x 128 packed bytes> checksum
  F7`` (4104 bytes), is what Dexed's cartridge manager opens from disk;
  :func:`read_bank`, :func:`write_bank` (through dexed-py).

:func:`read_syx_voices` gives every voice of a file of any number of such messages,
read strictly and without dexed-py (:mod:`generators.dexed.sysex`).
"""

from __future__ import annotations

import difflib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from core.errors import InverSynthError
from core.storage import write_atomic, write_failed
from generators.dexed.sysex import (
    BANK_SIZE,
    SINGLE_VOICE_HEADER,
    SINGLE_VOICE_SIZE,
    VOICE_BYTES,
    checksum,
    read_syx_bytes,
    split_messages,
    unpack_bank,
)

__all__ = [
    "ENGINE_PARAMETERS",
    "INIT_VOICE",
    "N_ENGINE_PARAMETERS",
    "Engine",
    "EngineParameter",
    "engine_parameter",
    "read_bank",
    "read_syx_voices",
    "read_voice_syx",
    "render_voices",
    "require_dexed",
    "values_from_voices",
    "voice_name",
    "voices_from_values",
    "write_bank",
    "write_voice_syx",
]

INSTALL_HINT = "uv sync --extra dexed"
N_ENGINE_PARAMETERS = 145  # the voice without its name
NAME_BYTES = slice(145, 155)
assert (VOICE_BYTES, SINGLE_VOICE_SIZE, BANK_SIZE) == (155, 163, 4104)  # the DX7's formats
ALL_OPERATORS_ON = b"\x3f"


@dataclass(frozen=True)
class EngineParameter:
    """One of the 145 parameters of a DX7 voice.

    Parameters
    ----------
    name : str
        ``op{1..6}_...`` for an operator's, e.g. ``op2_frequency_coarse``.
    byte : int
        Offset in the 155-byte voice.
    max_value : int
        The DX7 range is ``0 .. max_value``.
    discrete : bool
        Discrete parameters are the DX7 integer; continuous ones ``dx7 / max_value``.
    group : str
        ``"Global"``, ``"LFO"``, ``"Pitch EG"`` or ``"Operator k"``.
    init : int
        Value in Dexed's INIT VOICE, DX7 units.
    meaning : str
        What it does, for ``describe``.
    """

    name: str
    byte: int
    max_value: int
    discrete: bool
    group: str
    init: int
    meaning: str

    def from_dx7(self, dx7: int) -> float:
        """The parameter value of a DX7 integer."""
        return float(dx7) if self.discrete else dx7 / self.max_value

    def to_dx7(self, value: float) -> int:
        """The DX7 integer the engine plays for a parameter value."""
        return round(value if self.discrete else value * self.max_value)

    @property
    def ordered(self) -> bool:
        """Whether its values are ordered: the continuous ones are; the discrete ones are choices."""
        return not self.discrete

    @property
    def init_value(self) -> float:
        return self.from_dx7(self.init)

    @property
    def range_text(self) -> str:
        if self.discrete:
            return f"integers 0..{self.max_value}"
        return f"[0, 1] in steps of 1/{self.max_value} (DX7 0..{self.max_value})"


def _op_byte(op: int, offset: int) -> int:
    """Byte of an operator's field: the voice stores OP6 first, 21 bytes each."""
    return (6 - op) * 21 + offset


def _row(
    name: str, byte: int, max_value: int, group: str, init: int, meaning: str,
    *, discrete: bool = False,
) -> EngineParameter:  # fmt: skip
    return EngineParameter(name, byte, max_value, discrete, group, init, meaning)


_OPS = range(1, 7)


def _voice_rows() -> list[EngineParameter]:
    """The voice's own continuous fields: global, LFO and pitch envelope."""
    return [
        _row("feedback", 135, 7, "Global", 0, "feedback of the algorithm's feedback loop"),
        _row("transpose", 144, 48, "Global", 24, "key transpose in semitones; 24 = none"),
        _row("pitch_mod_sensitivity", 143, 7, "LFO", 3, "how far the LFO bends the pitch"),
        _row("lfo_speed", 137, 99, "LFO", 35, "LFO rate"),
        _row("lfo_delay", 138, 99, "LFO", 0, "time before the LFO starts"),
        _row("lfo_pitch_mod_depth", 139, 99, "LFO", 0, "vibrato depth"),
        _row("lfo_amp_mod_depth", 140, 99, "LFO", 0, "tremolo depth"),
        *(
            _row(f"pitch_env_rate{j}", 125 + j, 99, "Pitch EG", 99, f"pitch envelope rate {j}")
            for j in range(1, 5)
        ),
        *(
            _row(f"pitch_env_level{j}", 129 + j, 99, "Pitch EG", 50,
                 f"pitch envelope level {j}; 50 = no bend")
            for j in range(1, 5)
        ),
    ]  # fmt: skip


# Continuous per-operator fields after the envelopes: (field, byte offset, max, meaning).
_PER_OPERATOR = (
    ("output_level", 16, 99, "output level (a carrier's loudness, a modulator's depth)"),
    ("frequency_coarse", 18, 31, "frequency ratio, whole part (0 = 0.5)"),
    ("frequency_fine", 19, 99, "frequency ratio, + coarse x fine/100"),
    ("detune", 20, 14, "detune; 7 = none"),
    ("velocity_sensitivity", 15, 7, "key velocity sensitivity"),
    ("amp_mod_sensitivity", 14, 3, "how far the LFO's tremolo reaches this operator"),
    ("rate_scaling", 13, 7, "keyboard rate scaling"),
    ("breakpoint", 8, 99, "keyboard level scaling break point (39 = C3)"),
    ("left_depth", 9, 99, "level scaling depth below the break point"),
    ("right_depth", 10, 99, "level scaling depth above the break point"),
)
# Discrete per-operator fields, the same way.
_PER_OPERATOR_DISCRETE = (
    ("frequency_mode", 17, 1, "0 = ratio to the note, 1 = fixed frequency"),
    ("left_curve", 11, 3, "level scaling curve below the break point: -lin, -exp, +exp, +lin"),
    ("right_curve", 12, 3, "level scaling curve above the break point: -lin, -exp, +exp, +lin"),
)


def _operator_rows() -> list[EngineParameter]:
    """The operators' continuous fields, field-major like dexed-py's [6, ...] arrays."""
    rows = [
        _row(f"op{op}_env_rate{j}", _op_byte(op, j - 1), 99, f"Operator {op}", 99,
             f"envelope rate {j}")
        for op in _OPS
        for j in range(1, 5)
    ]  # fmt: skip
    rows += [
        _row(f"op{op}_env_level{j}", _op_byte(op, 3 + j), 99, f"Operator {op}",
             0 if j == 4 else 99, f"envelope level {j}")
        for op in _OPS
        for j in range(1, 5)
    ]  # fmt: skip
    for field, offset, max_value, meaning in _PER_OPERATOR:
        for op in _OPS:
            init = {"output_level": 99 if op == 1 else 0, "frequency_coarse": 1, "detune": 7}
            rows.append(
                _row(f"op{op}_{field}", _op_byte(op, offset), max_value, f"Operator {op}",
                     init.get(field, 0), meaning)
            )  # fmt: skip
    return rows


def _discrete_rows() -> list[EngineParameter]:
    """The switches and choices: the voice's, then the operators' (field-major)."""
    return [
        _row("osc_key_sync", 136, 1, "Global", 1, "oscillators restart at every key",
             discrete=True),
        _row("lfo_sync", 141, 1, "LFO", 1, "LFO restarts at every key", discrete=True),
        _row("algorithm", 134, 31, "Global", 0, "operator routing; DX7 algorithm = value + 1",
             discrete=True),
        _row("lfo_wave", 142, 5, "LFO", 0,
             "0 triangle, 1 saw down, 2 saw up, 3 square, 4 sine, 5 S&H", discrete=True),
        *(
            _row(f"op{op}_{field}", _op_byte(op, offset), max_value, f"Operator {op}", 0,
                 meaning, discrete=True)
            for field, offset, max_value, meaning in _PER_OPERATOR_DISCRETE
            for op in _OPS
        ),
    ]  # fmt: skip


def _table() -> tuple[EngineParameter, ...]:
    """The 145 parameters in the order of dexed-py's ``Preset.to_array()``."""
    return (*_voice_rows(), *_operator_rows(), *_discrete_rows())


ENGINE_PARAMETERS: tuple[EngineParameter, ...] = _table()
_BY_NAME = {p.name: i for i, p in enumerate(ENGINE_PARAMETERS)}
_BYTE = np.array([p.byte for p in ENGINE_PARAMETERS], dtype=np.int64)  # [145]
_MAX = np.array([p.max_value for p in ENGINE_PARAMETERS], dtype=np.float64)  # [145]
_DISCRETE = np.array([p.discrete for p in ENGINE_PARAMETERS], dtype=bool)  # [145]
assert len(ENGINE_PARAMETERS) == N_ENGINE_PARAMETERS == len(set(_BYTE.tolist()))
assert set(_BYTE.tolist()) == set(range(N_ENGINE_PARAMETERS))
# The largest value of every byte of a voice (its name's bytes are 7-bit ASCII).
_MAX_BY_BYTE = np.full(VOICE_BYTES, 0x7F, dtype=np.uint8)
_MAX_BY_BYTE[_BYTE] = _MAX.astype(np.uint8)

# Dexed's INIT VOICE: a plain sine on OP1 (algorithm 1, every other operator at level 0).
INIT_VOICE: np.ndarray = np.array(
    [p.init_value for p in ENGINE_PARAMETERS], dtype=np.float64
)  # [145]


def engine_parameter(name: str, *, where: str = "") -> tuple[int, EngineParameter]:
    """Position in the 145-vector and description of the parameter called ``name``.

    ``where`` starts the error message (``"dexed_small.json: parameter"``).
    """
    if name not in _BY_NAME:
        close = difflib.get_close_matches(name, _BY_NAME, n=3)
        hint = f"; did you mean {close}?" if close else ""
        raise InverSynthError(
            f"{where + ' ' if where else ''}{name!r} is not a Dexed parameter{hint} "
            "(python -m generators.dexed describe lists all 145)"
        )
    i = _BY_NAME[name]
    return i, ENGINE_PARAMETERS[i]


# --------------------------------------------------------------------------
# Values <-> voices
# --------------------------------------------------------------------------


def _dx7_integers(values: np.ndarray) -> np.ndarray:
    """Engine values [B, 145] -> DX7 integers [B, 145] int64, checked."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != N_ENGINE_PARAMETERS:
        raise InverSynthError(
            f"engine values must have shape [batch, {N_ENGINE_PARAMETERS}], got {v.shape}"
        )
    scaled = np.where(_DISCRETE[None, :], v, v * _MAX[None, :])  # [B, 145], DX7 units
    dx7 = np.rint(scaled)
    bad = ~np.isfinite(v) | (dx7 < 0) | (dx7 > _MAX[None, :])
    bad |= _DISCRETE[None, :] & (dx7 != v)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        p = ENGINE_PARAMETERS[col]
        raise InverSynthError(f"{p.name} must be {p.range_text}, got {float(v[row, col])!r}")
    return dx7.astype(np.int64)


def voices_from_values(values: np.ndarray, *, name: str = "INVERSYNTH") -> np.ndarray:
    """Engine values -> DX7 voices.

    Parameters
    ----------
    values : np.ndarray [batch, 145], float
        In :data:`ENGINE_PARAMETERS` order; continuous values are rounded to their
        DX7 step as the engine does, discrete ones must be integers.
    name : str
        Voice name, at most 10 ASCII characters.

    Returns
    -------
    voices : np.ndarray [batch, 155], uint8
    """
    dx7 = _dx7_integers(values)
    text = name.ljust(10)
    if len(text) != 10 or not text.isascii() or not text.isprintable():
        raise InverSynthError(
            f"a DX7 voice name is at most 10 printable ASCII characters, got {name!r}"
        )
    voices = np.zeros((dx7.shape[0], VOICE_BYTES), dtype=np.uint8)
    voices[:, _BYTE] = dx7
    voices[:, NAME_BYTES] = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return voices


def values_from_voices(voices: np.ndarray, *, source: str = "voice") -> np.ndarray:
    """DX7 voices [batch, 155] uint8 -> engine values [batch, 145] float64 (exact: ``k / max``)."""
    v = np.asarray(voices)
    if v.ndim != 2 or v.shape[1] < N_ENGINE_PARAMETERS:
        raise InverSynthError(f"DX7 voices must have shape [batch, {VOICE_BYTES}], got {v.shape}")
    dx7 = v[:, _BYTE].astype(np.float64)  # [B, 145]
    bad = dx7 > _MAX[None, :]
    if bad.any():
        row, col = np.argwhere(bad)[0]
        p = ENGINE_PARAMETERS[col]
        raise InverSynthError(
            f"{source}: voice {row + 1} has {p.name} = {int(dx7[row, col])}, beyond its DX7 range 0..{p.max_value}"
        )
    return np.where(_DISCRETE[None, :], dx7, dx7 / _MAX[None, :])


def voice_name(voice: np.ndarray) -> str:
    """The 10-character name of a voice [155], trailing blanks removed."""
    raw = bytes(int(b) & 0x7F for b in np.asarray(voice)[NAME_BYTES])
    return "".join(c if c.isprintable() else " " for c in raw.decode("ascii")).rstrip()


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def _write_atomically(path: Path, data: bytes) -> Path:
    """Write ``data`` whole or not at all (:func:`core.storage.write_atomic`)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_failed(path, exc) from None
    write_atomic(path, data)
    return path


def write_voice_syx(path: str | Path, voice: np.ndarray) -> Path:
    """Write one voice [155] uint8 as a DX7 single-voice dump (163 bytes, MIDI channel 1)."""
    data = bytes(np.asarray(voice, dtype=np.uint8).ravel().tolist())
    if len(data) != VOICE_BYTES or max(data) > 0x7F:
        raise InverSynthError(
            f"a DX7 voice is {VOICE_BYTES} bytes of 0..127, got {len(data)} bytes"
        )
    dump = SINGLE_VOICE_HEADER + data + bytes([checksum(data), 0xF7])
    return _write_atomically(Path(path), dump)


def read_syx_voices(path: str | Path) -> np.ndarray:
    """Every voice of a DX7 sysex file: its 32-voice banks and single voices, in file order.

    The file is read strictly (:mod:`generators.dexed.sysex`): nothing but DX7
    voice and bank messages, each with its checksum right, at most 1 MiB; anything
    else is refused in one line saying what was found. A bank's voices are read
    as Dexed reads them (fields out of their DX7 range brought into it); a
    single voice must be in range.

    Returns
    -------
    voices : np.ndarray [n_voices, 155], uint8
    """
    source = repr(str(path))
    rows = []
    for message in split_messages(read_syx_bytes(path), source=source):
        if message.kind == "bank":
            rows.append(np.minimum(unpack_bank(message.payload), _MAX_BY_BYTE[None, :]))
        else:
            voice = np.frombuffer(message.payload, dtype=np.uint8)[None, :]
            where = f"{source} (the voice at byte {message.offset:,})"
            values_from_voices(voice, source=where)  # every field in range
            rows.append(voice)
    return np.concatenate(rows).astype(np.uint8)


def read_voice_syx(path: str | Path, *, voice: int = 1) -> np.ndarray:
    """Voice ``voice`` (from 1) of a DX7 sysex file: a single-voice dump, a bank, or several.

    Returns
    -------
    voice : np.ndarray [155], uint8
    """
    voices = read_syx_voices(path)
    if int(voice) != voice or not 1 <= voice <= len(voices):
        raise InverSynthError(f"{str(path)!r} holds voices 1..{len(voices)}, got voice {voice!r}")
    return voices[int(voice) - 1]


def read_bank(path: str | Path) -> np.ndarray:
    """The 32 voices of a DX7 bank file, as Dexed reads them (corrupt bytes brought into range).

    The file must hold exactly one 32-voice bank; :func:`read_syx_voices` reads
    files of several banks or single voices.

    Returns
    -------
    voices : np.ndarray [32, 155], uint8
    """
    messages = split_messages(read_syx_bytes(path), source=repr(str(path)))
    kinds = [m.kind for m in messages]
    if kinds != ["bank"]:
        found = ", ".join(f"{kinds.count(k)} {k}(s)" for k in ("bank", "voice") if k in kinds)
        raise InverSynthError(
            f"{str(path)!r} holds {found}, not one 32-voice bank; read_syx_voices reads them all"
        )
    return np.minimum(unpack_bank(messages[0].payload), _MAX_BY_BYTE[None, :]).astype(np.uint8)


def write_bank(path: str | Path, voices: np.ndarray) -> Path:
    """Write up to 32 voices [n, 155] as a DX7 bank file; the slots after them hold INIT VOICE."""
    dexed = require_dexed()
    v = np.asarray(voices, dtype=np.uint8)
    if v.ndim != 2 or v.shape[1] != VOICE_BYTES or not 1 <= v.shape[0] <= 32:
        raise InverSynthError(f"a bank holds 1..32 voices of {VOICE_BYTES} bytes, got {v.shape}")
    init = voices_from_values(INIT_VOICE[None, :], name="INIT VOICE")
    slots = np.concatenate([v, np.repeat(init, 32 - v.shape[0], axis=0)])
    patches = [dexed.Patch.from_sysex(bytes(row.tolist()) + ALL_OPERATORS_ON) for row in slots]
    out = Path(path)
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None) as tmp:
        staged = Path(tmp) / "bank.syx"
        dexed.Patch.save_to_bank(str(staged), patches)
        return _write_atomically(out, staged.read_bytes())


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------


def require_dexed() -> ModuleType:
    """Import dexed-py, or say in one line how to install it."""
    try:
        import dexed
    except ImportError:
        raise InverSynthError(
            f"the Dexed (DX7) synth needs the optional extra 'dexed' (dexed-py, GPL-3.0): "
            f"install it with `{INSTALL_HINT}`"
        ) from None
    return dexed


class Engine:
    """One Dexed engine at ``sample_rate`` Hz: loads a voice, plays a note on it.

    dexed-py's ``DexedSynth.load_patch`` takes a ``Patch`` object and encodes it
    in Python, about 0.1 ms a voice with the GIL held, which makes rendering
    threads wait on each other; the extension class under it
    (``dexed._RawDexedSynth``, the same engine) loads the voice's bytes
    directly. That is used when the installed dexed-py has it, the public
    wrapper otherwise; both give the same samples.
    """

    def __init__(self, sample_rate: int) -> None:
        dexed = require_dexed()
        self.sample_rate = int(sample_rate)
        raw_class = getattr(dexed, "_RawDexedSynth", None)
        self._raw: Any = raw_class(float(sample_rate), 0) if raw_class is not None else None
        self._wrapped: Any = None if raw_class is not None else dexed.DexedSynth(float(sample_rate))
        self._patch_class: Any = dexed.Patch

    def play(
        self, voice: bytes, *, pitch: int, velocity: int, note_length_s: float, duration_s: float
    ) -> np.ndarray:
        """The engine's output (float32 [about duration_s * sample_rate]) for a 155-byte voice."""
        data = voice + ALL_OPERATORS_ON
        if self._raw is not None:
            self._raw.load_sysex(data)
            out: np.ndarray = self._raw.render(pitch, velocity, note_length_s, duration_s)
        else:
            self._wrapped.load_patch(self._patch_class.from_sysex(data))
            out = self._wrapped.render(pitch, velocity, note_length_s, duration_s)
        return out


def render_voices(
    engine: Engine,
    voices: np.ndarray,
    *,
    pitch: int,
    velocity: int,
    note_length_s: float,
    n_samples: int,
) -> np.ndarray:
    """Play one note on each voice, from a silent engine.

    A render depends on the voice and the note only (the engine starts every
    note afresh), so the same voice gives the same samples in any process.

    Parameters
    ----------
    engine : Engine
        Its sample rate is the audio's.
    voices : np.ndarray [batch, 155], uint8
    pitch, velocity : int
        MIDI note (0-127) and velocity (1-127).
    note_length_s : float
        Note-on to note-off, s (the envelopes' release starts here).
    n_samples : int
        Samples per example.

    Returns
    -------
    audio : np.ndarray [batch, n_samples], float32 in [-1, 1]
        Each example divided by ``max(1, peak)``: the six operators of an
        algorithm such as 32 sum to a peak of up to 6, which this brings into
        [-1, 1] without touching the examples that do not clip (as the FM synth).
    """
    v = np.asarray(voices, dtype=np.uint8)
    duration_s = n_samples / engine.sample_rate
    out = np.zeros((v.shape[0], n_samples), dtype=np.float32)
    for i, row in enumerate(v):
        y = engine.play(
            bytes(row.tolist()),
            pitch=pitch,
            velocity=velocity,
            note_length_s=note_length_s,
            duration_s=duration_s,
        )[:n_samples]  # [<= n_samples]
        peak = float(np.max(np.abs(y))) if y.size else 0.0
        out[i, : y.size] = y / max(1.0, peak)
    return out


def describe_rows(names: Sequence[str] | None = None) -> list[str]:
    """One line per engine parameter (or per name in ``names``): name, group, range, INIT value."""
    chosen = ENGINE_PARAMETERS if names is None else [engine_parameter(n)[1] for n in names]
    rows = [f"{'name':<26} {'group':<11} {'kind':<10} {'DX7 range':>9} {'init':>5}  meaning"]
    for p in chosen:
        kind = "discrete" if p.discrete else "continuous"
        rows.append(
            f"{p.name:<26} {p.group:<11} {kind:<10} {f'0..{p.max_value}':>9} {p.init:>5}  {p.meaning}"
        )
    return rows
