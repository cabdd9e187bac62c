"""The plugin host: one process that loads one VST plugin with DawDreamer and renders notes.

:class:`generators.vst.hosts.PluginHostPool` starts hosts as fresh
interpreters (``python -P host_main.py FD``), never as forks or
``multiprocessing`` children: a spawned ``multiprocessing`` child first
re-imports the parent's main module, which may import TensorFlow, and
TensorFlow followed by DawDreamer in one process segfaults (their bundled LLVM
copies clash). This file therefore imports nothing but the standard library,
NumPy and DawDreamer, and nothing from the toolkit. A plugin that crashes or
hangs takes only its host down; the parent restarts it.

Messages are pickled tuples over the socket whose descriptor is ``FD``; the
host answers every request with ``("ok", payload)`` or ``("error", message)``:

=================================  ============================================
request                            answer payload
=================================  ============================================
``("load", load)``                 plugin description: ``{"parameters": [{"index",
                                   "name", "default", "text", "label"}], "uid",
                                   "version", "n_outputs"}``
``("configure", setup)``           ``None``; ready to render
``("render", tag, row)``           ``(tag, audio)``, float32 [n_samples] as bytes
``("render_preset", path)``        ``audio`` of the ``.fxp`` preset at ``path``
``("quit",)``                      (no answer; the host exits)
=================================  ============================================

Render protocol (why a render depends on its parameters only)
-------------------------------------------------------------
Synth plugins keep state between notes: voices still releasing, parameter
smoothers, oscillator and filter memory, an output limiter. Every render
therefore plays this MIDI timeline and keeps only its last part::

    t = 0                 all-sound-off + all-notes-off (CC 120, CC 123);
                          priming note on (same pitch and velocity)
    t = prime_s           priming note off; CC 120 + CC 123 again (voices reset)
    [prime_s, lead_s)     silence: limiters and reverbs settle (settle_s)
    t = lead_s            the note on                    <- audio starts here
    t = lead_s + length   the note off
    t = lead_s + n_samples / sample_rate                 <- audio ends here

The priming note drives the plugin's per-voice smoothers to the new
parameter values, so the real note starts from the same state whatever was
rendered before. What is left (e.g. amsynth's output limiter) differs between
histories by about 1e-5 of full scale. Features that are random by design
(noise oscillators, sample-and-hold LFOs, free-running sync oscillators) are
not reproducible and should stay out of a plugin config.

At load, every parameter is moved away from its value and back: some plugins
(DPF's Nekobi) only apply a parameter once it changes, so their initial sound
does not match their initial parameter values until then.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import struct
import sys
import tempfile
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PluginHost", "midi_file_bytes", "render_timeline"]

_CC_ALL_SOUND_OFF = 120
_CC_ALL_NOTES_OFF = 123
# MIDI file time base: 15360 (960 * 16) ticks per quarter note at 120 bpm
# (500,000 us per quarter) = 30720 ticks per second; a tick (32.6 us) is finer
# than a sample at rates up to 30720 Hz.
_TICKS_PER_QUARTER = 960 * 16
_TEMPO_US_PER_QUARTER = 500_000


def _vlq(n: int) -> bytes:
    """MIDI variable-length quantity."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


def midi_file_bytes(events: list[tuple[float, bytes]]) -> bytes:
    """A type-0 standard MIDI file of ``(time_s, message)`` events (stable order at equal times)."""
    ticks_per_s = _TICKS_PER_QUARTER * 1e6 / _TEMPO_US_PER_QUARTER
    track = b"\x00\xff\x51\x03" + _TEMPO_US_PER_QUARTER.to_bytes(3, "big")
    last = 0
    for time_s, message in sorted(events, key=lambda e: e[0]):
        tick = round(time_s * ticks_per_s)
        track += _vlq(tick - last) + message
        last = tick
    track += b"\x00\xff\x2f\x00"  # end of track
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, _TICKS_PER_QUARTER)
    return header + b"MTrk" + struct.pack(">I", len(track)) + track


def render_timeline(
    *, pitch: int, velocity: int, note_length_s: float, prime_s: float, lead_s: float
) -> list[tuple[float, bytes]]:
    """The MIDI events of one render (see the module docstring), channel 1."""
    reset = [bytes([0xB0, _CC_ALL_SOUND_OFF, 0]), bytes([0xB0, _CC_ALL_NOTES_OFF, 0])]
    on, off = bytes([0x90, pitch, velocity]), bytes([0x80, pitch, 0])
    events = [(0.0, m) for m in reset]
    if prime_s > 0:
        events += [(0.0, on), (prime_s, off)] + [(prime_s, m) for m in reset]
    events += [(lead_s, on), (lead_s + note_length_s, off)]
    return events


class PluginHost:
    """One plugin in one DawDreamer engine, rendering one note per request."""

    def __init__(self, load: dict[str, Any]) -> None:
        import dawdreamer

        self.sample_rate = int(load["sample_rate"])
        self.block_size = int(load["block_size"])
        self.engine = dawdreamer.RenderEngine(self.sample_rate, self.block_size)
        try:
            self.plugin = self.engine.make_plugin_processor("synth", str(load["plugin"]))
        except Exception as exc:  # DawDreamer raises RuntimeError("Unable to load plugin.")
            raise RuntimeError(f"DawDreamer cannot load it as a plugin ({exc})") from None
        self.engine.load_graph([(self.plugin, [])])
        self.n_parameters = int(self.plugin.get_plugin_parameter_size())
        self.defaults = [float(self.plugin.get_parameter(i)) for i in range(self.n_parameters)]
        self.baseline = list(self.defaults)  # defaults with the fixed parameters applied
        self.varied_ids: list[int] = []
        self.workdir = Path(tempfile.mkdtemp(prefix="host-", dir=os.environ.get("HOME")))
        self._settle_parameters(self.baseline)

    def describe(self) -> dict[str, Any]:
        descriptions = {d["index"]: d for d in self.plugin.get_parameters_description()}
        parameters = [
            {
                "index": i,
                "name": str(self.plugin.get_parameter_name(i)),
                "default": self.defaults[i],
                "text": str(self.plugin.get_parameter_text(i)),
                "label": str(descriptions.get(i, {}).get("label", "")),
            }
            for i in range(self.n_parameters)
        ]
        uid, version = self._identity()
        return {
            "parameters": parameters,
            "uid": uid,
            "version": version,
            "n_outputs": int(self.plugin.get_num_output_channels()),
        }

    def _identity(self) -> tuple[bytes, int]:
        """The plugin's VST2 unique ID and version, read from the header of its saved state."""
        path = self.workdir / "state.fxb"
        try:
            self.plugin.save_state(str(path))
            header = path.read_bytes()[:24]
        except Exception:  # a plugin without state support: presets are then unavailable
            return b"", 0
        if len(header) < 24 or header[:4] != b"CcnK":
            return b"", 0
        return header[16:20], struct.unpack(">i", header[20:24])[0]

    def _settle_parameters(self, values: list[float]) -> None:
        """Set every parameter, first moving each away so that the plugin applies it."""
        for i, v in enumerate(values):
            self.plugin.set_parameter(i, 1.0 if v < 0.5 else 0.0)
        self.engine.render(self.block_size / self.sample_rate)
        for i, v in enumerate(values):
            self.plugin.set_parameter(i, v)
        self.engine.render(self.block_size / self.sample_rate)

    def configure(self, setup: dict[str, Any]) -> None:
        for index, value in setup["fixed"]:
            self.baseline[int(index)] = float(value)
        self.varied_ids = [int(i) for i in setup["varied_ids"]]
        self.n_samples = int(setup["n_samples"])
        # Start the note on a block boundary so that its onset sits at the same
        # place within a block whatever the settings.
        lead = float(setup["prime_s"]) + float(setup["settle_s"])
        self.lead_samples = -(-round(lead * self.sample_rate) // self.block_size) * self.block_size
        events = render_timeline(
            pitch=int(setup["pitch"]),
            velocity=int(setup["velocity"]),
            note_length_s=float(setup["note_length_s"]),
            prime_s=float(setup["prime_s"]),
            lead_s=self.lead_samples / self.sample_rate,
        )
        midi_path = self.workdir / "note.mid"
        midi_path.write_bytes(midi_file_bytes(events))
        if not self.plugin.load_midi(str(midi_path), clear_previous=True, all_events=True):
            raise RuntimeError("DawDreamer could not load the note's MIDI file")
        self._settle_parameters(self.baseline)
        self._render_note()  # the first render after loading differs; never keep it

    def _render_note(self) -> np.ndarray:
        total = self.lead_samples + self.n_samples
        # DawDreamer renders floor(seconds * sample_rate) samples.
        self.engine.render((total + 0.5) / self.sample_rate)
        audio = np.asarray(self.engine.get_audio(), dtype=np.float32)  # [channels, samples]
        mono = audio.mean(axis=0) if audio.ndim == 2 else audio.reshape(-1)
        out = np.zeros(self.n_samples, dtype=np.float32)
        kept = mono[self.lead_samples : total]
        out[: kept.size] = kept
        return out

    def render(self, row: np.ndarray) -> np.ndarray:
        """Render the note with the varied parameters set to ``row`` [n_varied]."""
        for index, value in zip(self.varied_ids, row, strict=True):
            self.plugin.set_parameter(index, float(value))
        return self._render_note()

    def render_preset(self, path: str) -> np.ndarray:
        """Render the note with the plugin state of an ``.fxp`` preset file, then restore."""
        current = [float(self.plugin.get_parameter(i)) for i in range(self.n_parameters)]
        for i, v in enumerate(current):  # so that loading the preset changes every parameter
            self.plugin.set_parameter(i, 1.0 if v < 0.5 else 0.0)
        self.engine.render(self.block_size / self.sample_rate)
        if not self.plugin.load_preset(path):
            raise RuntimeError(f"the plugin refused the preset {path!r}")
        try:
            return self._render_note()
        finally:
            self._settle_parameters(self.baseline)


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies, even if the plugin hangs.

    (Linux sends the signal when the parent *thread* that started the host ends;
    the parent notices such an idle host gone and starts another.)
    """
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent's EOF still ends the loop
        pass


def _serve(conn: Connection) -> None:
    host: PluginHost | None = None
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        command = request[0]
        if command == "quit":
            return
        try:
            if command == "load":
                host = PluginHost(request[1])
                reply: Any = host.describe()
            elif host is None:
                raise RuntimeError(f"{command!r} before 'load'")
            elif command == "configure":
                host.configure(request[1])
                reply = None
            elif command == "render":
                audio = host.render(np.asarray(request[2], dtype=np.float64))
                reply = (request[1], audio.tobytes())  # bytes: the cheapest to unpickle
            elif command == "render_preset":
                reply = host.render_preset(request[1])
            else:
                raise RuntimeError(f"unknown request {command!r}")
        except Exception as exc:
            text = str(exc) if type(exc) is RuntimeError else f"{type(exc).__name__}: {exc}"
            message = " ".join(text.split())  # one line
            conn.send(("error", message))
            continue
        conn.send(("ok", reply))


def main(argv: list[str]) -> int:
    _die_with_parent()
    # The host's own prints (DawDreamer's and the plugin's) go to the log the
    # parent reads when the host dies; results go over the socket only.
    conn = Connection(int(argv[1]))
    try:
        _serve(conn)
    except (BrokenPipeError, pickle.PicklingError):
        return 1
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
