"""Real synthesizer plugins (VST2 ``.so``, VST3) as sound generators, hosted by DawDreamer.

A :class:`VSTGenerator` plays one MIDI note per example on a plugin whose
parameters are set from the example's classes. Which parameters vary, and
over which values, is a *plugin config*, a JSON file (``plugin_config/*.json``)::

    {
      "plugin": "/usr/lib/vst/amsynth_vst.so",
      "parameters": [
        {"id": 11, "name": "filter_cutoff", "values": [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]},
        {"name": "filter_resonance", "n_levels": 4, "low": 0.0, "high": 0.75}
      ],
      "fixed_parameters": [
        {"id": 14, "name": "master_vol", "value": 0.67}
      ],
      "note": {"pitch": 60, "velocity": 100, "length_s": 0.5},
      "render": {"prime_s": 0.1, "settle_s": 0.3},
      "comment": "free text"
    }

``plugin`` (optional)
    Path of the plugin; the ``plugin=`` argument (``--plugin``) wins over it.
``parameters`` (at least one)
    The varied parameters, in label column order. ``name`` is required and
    must be the plugin's name of parameter ``id`` (``python -m
    generators.vst_generator describe --plugin PATH`` lists them); without
    ``id`` the parameter is looked up by name. The levels are either
    ``values`` (at least two distinct numbers) or ``n_levels`` evenly spaced
    from ``low`` (0) to ``high`` (1). Plugin values are normalized: every
    level lies in [0, 1]. A switch (a waveform selector, say) snaps to its
    nearest position, so give it the exact positions (amsynth's five
    waveforms are 0, 0.25, 0.5, 0.75, 1).
``fixed_parameters`` (optional)
    Parameters held at ``value`` for every example. Parameters named nowhere
    keep the plugin's defaults.
``note`` (optional)
    The MIDI note of every example: ``pitch`` (0-127, default 60),
    ``velocity`` (1-127, default 100), ``length_s`` (note-on to note-off,
    default half the example). Arguments of :class:`VSTGenerator` win.
``render`` (optional)
    ``prime_s`` (0.1) and ``settle_s`` (0.3), the lead-in before every note
    that makes a render independent of the renders before it (see
    :mod:`generators.plugin_host`).
``comment`` (optional, also allowed in every parameter entry)
    Ignored.

Rendering runs in plugin host processes that the generator owns (started on
first use, ended by :meth:`VSTGenerator.close`), never in the calling process,
which may have TensorFlow loaded. A host that crashes or hangs costs only the
example it was rendering, which is retried in a fresh host; an example that
fails every retry raises :class:`~generators.errors.InverSynthError` naming it.

Command line::

    python -m generators.vst_generator describe --plugin /usr/lib/vst/amsynth_vst.so \\
        --output plugin_config/my_amsynth.json
    python -m generators.vst_generator check --config plugin_config/amsynth.json
    python -m generators.vst_generator run --config plugin_config/amsynth.json \\
        --num_examples 20000 --name amsynth --workers 2
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from generators import plugin_host
from generators.cli import (
    add_dataset_arguments,
    create_dataset_from_args,
    env_default,
    make_parser,
    n_samples_from_args,
    run_cli,
)
from generators.dataset import SILENCE_PEAK
from generators.errors import InverSynthError
from generators.generator import SoundGenerator
from generators.parameters import Parameter, ParameterSet, example_uniforms

__all__ = [
    "PluginHostPool",
    "VSTGenerator",
    "describe_plugin",
    "load_plugin_config",
    "plugin_config_template",
]

_HOST_SCRIPT = Path(plugin_host.__file__).resolve()
_INSTALL_HINT = "apt-get install -y amsynth dpf-plugins-vst"
_PIPELINE_DEPTH = 2  # requests queued per host, so that a host never waits for the next one
_STARTUP_TIMEOUT_S = 60.0  # loading a plugin takes well under a second; allow a slow disk
# Plugin descriptions by (file, size and time stamp, sample rate, block size):
# a generator made again in the same process checks its config without a host.
_INFO_CACHE: dict[tuple[Any, ...], dict[str, Any]] = {}

_TOP_KEYS = {"plugin", "parameters", "fixed_parameters", "note", "render", "comment"}
_VARIED_KEYS = {"id", "name", "values", "n_levels", "low", "high", "comment"}
_FIXED_KEYS = {"id", "name", "value", "comment"}
_NOTE_KEYS = {"pitch", "velocity", "length_s"}
_RENDER_KEYS = {"prime_s", "settle_s"}


# --------------------------------------------------------------------------
# Plugin config
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Varied:
    name: str
    id: int | None
    levels: tuple[float, ...]
    spacing: str


@dataclass(frozen=True)
class _Fixed:
    name: str
    id: int | None
    value: float


@dataclass(frozen=True)
class _PluginConfig:
    """A checked plugin config (its structure and values; the plugin itself is checked later)."""

    raw: dict[str, Any]
    source: str  # file name or "plugin_config", for messages
    plugin: str | None
    varied: tuple[_Varied, ...]
    fixed: tuple[_Fixed, ...]
    note: dict[str, Any]
    render: dict[str, Any]


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_keys(entry: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise InverSynthError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def _entry_id(entry: dict[str, Any], where: str) -> int | None:
    if "id" not in entry:
        return None
    pid = entry["id"]
    if not isinstance(pid, int) or isinstance(pid, bool) or pid < 0:
        raise InverSynthError(f"{where}: 'id' must be an integer >= 0, got {pid!r}")
    return pid


def _entry_name(entry: Any, where: str) -> str:
    if not isinstance(entry, dict):
        raise InverSynthError(f"{where} must be an object, got {entry!r}")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise InverSynthError(f"{where}: 'name' (the plugin's parameter name) is required")
    return name


def _unit_value(value: Any, where: str) -> float:
    if not _is_number(value) or not 0.0 <= value <= 1.0:
        raise InverSynthError(
            f"{where}: plugin parameter values are normalized to [0, 1], got {value!r}"
        )
    return float(value)


def _parse_varied(entry: Any, where: str) -> _Varied:
    name = _entry_name(entry, where)
    where = f"{where} {name!r}"
    _check_keys(entry, _VARIED_KEYS, where)
    if ("values" in entry) == ("n_levels" in entry):
        raise InverSynthError(f"{where}: give either 'values' or 'n_levels' (with 'low', 'high')")
    if "values" in entry:
        if "low" in entry or "high" in entry:
            raise InverSynthError(f"{where}: 'low' and 'high' go with 'n_levels', not 'values'")
        values = entry["values"]
        if not isinstance(values, list) or len(values) < 2:
            raise InverSynthError(f"{where}: 'values' must be a list of at least 2, got {values!r}")
        levels = tuple(_unit_value(v, where) for v in values)
        spacing = "custom"
    else:
        n = entry["n_levels"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 2:
            raise InverSynthError(f"{where}: 'n_levels' must be an integer >= 2, got {n!r}")
        low = _unit_value(entry.get("low", 0.0), where)
        high = _unit_value(entry.get("high", 1.0), where)
        levels = tuple(np.linspace(low, high, n).tolist())
        spacing = "linear"
    if len(set(levels)) != len(levels):
        raise InverSynthError(f"{where}: levels must be distinct, got {list(levels)}")
    return _Varied(name=name, id=_entry_id(entry, where), levels=levels, spacing=spacing)


def _parse_fixed(entry: Any, where: str) -> _Fixed:
    name = _entry_name(entry, where)
    where = f"{where} {name!r}"
    _check_keys(entry, _FIXED_KEYS, where)
    if "value" not in entry:
        raise InverSynthError(f"{where}: 'value' is required")
    return _Fixed(name=name, id=_entry_id(entry, where), value=_unit_value(entry["value"], where))


def _section(data: dict[str, Any], key: str, allowed: set[str], source: str) -> dict[str, Any]:
    section = data.get(key, {})
    if not isinstance(section, dict):
        raise InverSynthError(f"{source}: {key!r} must be an object, got {section!r}")
    _check_keys(section, allowed, f"{source}: {key!r}")
    for k, v in section.items():
        if not _is_number(v):
            raise InverSynthError(f"{source}: {key}.{k} must be a number, got {v!r}")
    return dict(section)


def load_plugin_config(source: dict[str, Any] | str | Path) -> _PluginConfig:
    """Read and check a plugin config (a dict, or the path of its JSON file).

    Checks everything that does not need the plugin: the structure, the
    levels (in [0, 1], distinct), unique names. :meth:`VSTGenerator.validate`
    checks the names and indices against the plugin.
    """
    if isinstance(source, dict):
        data, label = source, "plugin_config"
    else:
        path = Path(source)
        label = str(path)
        if not path.is_file():
            raise InverSynthError(f"plugin config {label!r} does not exist")
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InverSynthError(f"plugin config {label!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InverSynthError(f"{label}: a plugin config is a JSON object, got {data!r:.80}")
    _check_keys(data, _TOP_KEYS, label)
    plugin = data.get("plugin")
    if plugin is not None and (not isinstance(plugin, str) or not plugin):
        raise InverSynthError(f"{label}: 'plugin' must be a path, got {plugin!r}")
    varied_raw = data.get("parameters")
    if not isinstance(varied_raw, list) or not varied_raw:
        raise InverSynthError(
            f"{label}: 'parameters' must list at least one varied parameter, got {varied_raw!r:.80}"
        )
    fixed_raw = data.get("fixed_parameters", [])
    if not isinstance(fixed_raw, list):
        raise InverSynthError(f"{label}: 'fixed_parameters' must be a list, got {fixed_raw!r:.80}")
    varied = tuple(_parse_varied(e, f"{label}: parameter") for e in varied_raw)
    fixed = tuple(_parse_fixed(e, f"{label}: fixed parameter") for e in fixed_raw)
    names = [p.name for p in varied] + [p.name for p in fixed]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InverSynthError(f"{label}: parameter(s) {repeated} named more than once")
    return _PluginConfig(
        raw=json.loads(json.dumps(data)),  # a private, JSON-clean copy
        source=label,
        plugin=plugin,
        varied=varied,
        fixed=fixed,
        note=_section(data, "note", _NOTE_KEYS, label),
        render=_section(data, "render", _RENDER_KEYS, label),
    )


def _resolve_index(
    entry: _Varied | _Fixed, names: list[str], source: str, kind: str = "parameter"
) -> int:
    """The plugin's index of a config entry, checking its name."""
    where = f"{source}: {kind} {entry.name!r}"
    if entry.id is not None:
        if entry.id >= len(names):
            raise InverSynthError(
                f"{where}: id {entry.id} is out of range, the plugin has {len(names)} parameters "
                f"(0..{len(names) - 1})"
            )
        if names[entry.id] != entry.name:
            raise InverSynthError(
                f"{where}: the plugin calls parameter {entry.id} {names[entry.id]!r}; use that "
                "name, or drop 'id' to look the parameter up by name"
            )
        return entry.id
    matches = [i for i, n in enumerate(names) if n == entry.name]
    if not matches:
        raise InverSynthError(f"{where}: the plugin has no parameter of that name; it has {names}")
    if len(matches) > 1:
        raise InverSynthError(f"{where}: the plugin has several ({matches}); give 'id'")
    return matches[0]


# --------------------------------------------------------------------------
# Plugin host processes
# --------------------------------------------------------------------------


class _HostLostError(Exception):
    """A host crashed, hung, or broke the connection."""


class _PluginError(Exception):
    """A host stayed up but reported an error (a Python exception inside it)."""


class _Host:
    """One plugin host process (:mod:`generators.plugin_host`) and its connection."""

    def __init__(self) -> None:
        # amsynth writes its preset bank under $HOME; each host gets its own.
        self.home = Path(tempfile.mkdtemp(prefix="inversynth-plugin-host-"))
        for sub in (".local/share", ".config", ".cache"):
            (self.home / sub).mkdir(parents=True)
        self.log_path = self.home / "host.log"
        parent_sock, child_sock = socket.socketpair()
        env = dict(os.environ, HOME=str(self.home))
        try:
            with open(self.log_path, "wb") as log:
                # A fresh interpreter (not a fork, not a multiprocessing child):
                # it imports nothing of the caller, so never TensorFlow. -P keeps
                # the generators folder off sys.path.
                self.process = subprocess.Popen(
                    [sys.executable, "-P", str(_HOST_SCRIPT), str(child_sock.fileno())],
                    pass_fds=(child_sock.fileno(),),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self.home,
                )
        except OSError as exc:
            parent_sock.close()
            shutil.rmtree(self.home, ignore_errors=True)
            raise InverSynthError(f"cannot start a plugin host process: {exc}") from None
        finally:
            child_sock.close()
        self.conn = Connection(parent_sock.detach())

    def send(self, request: tuple[Any, ...]) -> None:
        try:
            self.conn.send(request)
        except OSError:
            raise _HostLostError(self.death_note()) from None

    def receive(self) -> Any:
        """The payload of the next answer; raises _HostLostError or _PluginError."""
        try:
            status, payload = self.conn.recv()
        except (EOFError, OSError):
            raise _HostLostError(self.death_note()) from None
        if status != "ok":
            raise _PluginError(payload)
        return payload

    def call(self, request: tuple[Any, ...], timeout_s: float) -> Any:
        self.send(request)
        if not self.conn.poll(timeout_s):
            raise _HostLostError(f"no answer within {timeout_s:g} s")
        return self.receive()

    def death_note(self) -> str:
        """How the host ended, with the last line it printed."""
        try:
            code = self.process.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            return "the plugin host broke its connection"
        if code < 0:
            try:
                how = f"crashed ({signal.Signals(-code).name})"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        last = self.last_log_line()
        return f"the plugin host {how}" + (f"; it last printed: {last}" if last else "")

    def last_log_line(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        lines = [" ".join(line.split()) for line in lines if line.strip()]
        return lines[-1][:200] if lines else ""

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.conn.close()
        shutil.rmtree(self.home, ignore_errors=True)

    def quit(self) -> None:
        """Ask the host to exit; kill it if it does not within a second."""
        if self.process.poll() is None:
            try:
                self.conn.send(("quit",))
                self.process.wait(timeout=1.0)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()


def _stop_hosts(hosts: list[_Host | None]) -> None:
    for i, host in enumerate(hosts):
        if host is not None:
            host.quit()
            hosts[i] = None


class PluginHostPool:
    """Plugin host processes rendering one note per request, restarted when they fail.

    Parameters
    ----------
    load : dict
        ``{"plugin": absolute path, "sample_rate": Hz, "block_size": samples}``.
    n_hosts : int > 0
        Processes rendering in parallel (started on first use).
    timeout_s : float > 0
        Longest wait for one render before its host counts as hung.
    retries : int >= 0
        Fresh attempts an example gets after its host crashed or hung.
    label : str
        Names the plugin in messages.
    """

    def __init__(
        self, *, load: dict[str, Any], n_hosts: int, timeout_s: float, retries: int, label: str
    ) -> None:
        self.load = load
        self.n_hosts = n_hosts
        self.timeout_s = timeout_s
        self.retries = retries
        self.label = label
        self.setup: dict[str, Any] | None = None
        self.n_samples = 0
        self._info: dict[str, Any] | None = None
        self.hosts: list[_Host | None] = []
        # Hosts end with the pool, or at exit, even if close() is never called.
        self._finalizer = weakref.finalize(self, _stop_hosts, self.hosts)

    # ---- starting hosts ------------------------------------------------------
    def _start_hosts(self, slots: list[int]) -> None:
        """Start hosts in these slots, side by side: plugin loaded (and configured, if set)."""
        todo, reason = list(slots), ""
        for _attempt in range(self.retries + 1):
            started = {slot: _Host() for slot in todo}
            todo = []
            # Every host loads at once; then each is waited for.
            for step in [("load", self.load)] + ([("configure", self.setup)] if self.setup else []):
                for slot, host in started.items():
                    if slot in todo:
                        continue
                    try:
                        host.send(step)
                    except _HostLostError as exc:
                        todo.append(slot)
                        reason = str(exc)
                for slot, host in started.items():
                    if slot in todo:
                        continue
                    try:
                        if not host.conn.poll(_STARTUP_TIMEOUT_S):
                            raise _HostLostError(f"no answer within {_STARTUP_TIMEOUT_S:g} s")
                        answer = host.receive()
                    except _PluginError as exc:  # deterministic: retrying cannot help
                        for h in started.values():
                            h.kill()
                        raise InverSynthError(f"{self.label}: {exc}") from None
                    except _HostLostError as exc:
                        todo.append(slot)
                        reason = str(exc)
                        continue
                    if step[0] == "load" and self._info is None:
                        self._info = answer
                        _INFO_CACHE[self._cache_key()] = answer
            for slot, host in started.items():
                if slot in todo:
                    host.kill()
                else:
                    self.hosts[slot] = host
            if not todo:
                return
        raise InverSynthError(
            f"{self.label}: the plugin host failed while loading the plugin "
            f"{self.retries + 1} time(s): {reason}"
        )

    def _cache_key(self) -> tuple[Any, ...]:
        path = Path(self.load["plugin"])
        stat = path.stat() if path.is_file() else None
        stamp = (stat.st_size, stat.st_mtime_ns) if stat else None
        return (str(path), stamp, self.load["sample_rate"], self.load["block_size"])

    def info(self) -> dict[str, Any]:
        """The plugin's description (see :mod:`generators.plugin_host`).

        Loads the plugin in a host unless this process has described the
        same plugin file before.
        """
        if self._info is None:
            self._info = _INFO_CACHE.get(self._cache_key())
        if self._info is None:
            if not self.hosts:
                self.hosts.append(None)
            if self.hosts[0] is None:
                self._start_hosts([0])
        assert self._info is not None  # set by the first host that loaded the plugin
        return self._info

    def configure(self, setup: dict[str, Any]) -> None:
        """Set what every render plays (note, fixed and varied parameter indices)."""
        self.setup = setup
        self.n_samples = int(setup["n_samples"])
        for i, host in enumerate(self.hosts):
            if host is None:
                continue
            try:
                host.call(("configure", setup), _STARTUP_TIMEOUT_S)
            except _PluginError as exc:
                self.close()
                raise InverSynthError(f"{self.label}: {exc}") from None
            except _HostLostError:
                host.kill()
                self.hosts[i] = None  # restarted, configured, on next use

    # ---- requests ------------------------------------------------------------
    def call(self, request: tuple[Any, ...]) -> Any:
        """One request to one host, retried in a fresh host if that one fails."""
        if not self.hosts:
            self.hosts.append(None)
        self._drop_dead_hosts()
        reason = ""
        for _attempt in range(self.retries + 1):
            if self.hosts[0] is None:
                self._start_hosts([0])
            host = self.hosts[0]
            assert host is not None
            try:
                return host.call(request, self.timeout_s)
            except _PluginError as exc:
                raise InverSynthError(f"{self.label}: {exc}") from None
            except _HostLostError as exc:
                host.kill()
                self.hosts[0] = None
                reason = str(exc)
        raise InverSynthError(
            f"{self.label}: {request[0]} failed {self.retries + 1} time(s): {reason}"
        )

    def render(self, rows: np.ndarray, describe_row: Callable[[int], str]) -> np.ndarray:
        """Render one note per row of varied-parameter values.

        Parameters
        ----------
        rows : np.ndarray [batch, n_varied], float64 in [0, 1]
        describe_row : callable
            ``describe_row(i)`` names row ``i`` in error messages ("example 1234 (...)").

        Returns
        -------
        audio : np.ndarray [batch, n_samples], float32
        """
        if self.setup is None:
            raise RuntimeError("configure() the pool before rendering")
        n_rows = rows.shape[0]
        audio = np.zeros((n_rows, self.n_samples), dtype=np.float32)
        if n_rows == 0:
            return audio
        n_slots = min(self.n_hosts, n_rows)
        while len(self.hosts) < n_slots:
            self.hosts.append(None)
        self._drop_dead_hosts()
        pending = collections.deque(range(n_rows))
        failures = [0] * n_rows
        in_flight: list[collections.deque[int]] = [collections.deque() for _ in range(n_slots)]
        head_since = [0.0] * n_slots  # when the oldest request of each host started
        n_done = 0

        def fail(slot: int, reason: str, *, host_lost: bool) -> None:
            """The oldest request of ``slot`` failed: retry it, or give up on it."""
            row = in_flight[slot].popleft()
            if host_lost:
                host = self.hosts[slot]
                if host is not None:
                    host.kill()
                self.hosts[slot] = None
                # Requests queued behind it never started: requeue them as they were.
                pending.extendleft(reversed(in_flight[slot]))
                in_flight[slot].clear()
            failures[row] += 1
            if failures[row] > self.retries:
                raise InverSynthError(
                    f"{self.label}: {describe_row(row)} failed {failures[row]} time(s); "
                    f"last: {reason}"
                )
            pending.appendleft(row)  # retried first, in a fresh host if this one died
            head_since[slot] = time.monotonic()

        try:
            while n_done < n_rows:
                idle = [s for s in range(n_slots) if self.hosts[s] is None]
                if idle and pending:
                    self._start_hosts(idle[: len(pending)])
                for slot in range(n_slots):
                    while pending and len(in_flight[slot]) < _PIPELINE_DEPTH:
                        host = self.hosts[slot]
                        if host is None:  # not started: more slots than pending rows
                            break
                        row = pending.popleft()
                        if not in_flight[slot]:
                            head_since[slot] = time.monotonic()
                        in_flight[slot].append(row)
                        try:
                            host.send(("render", row, rows[row].tolist()))
                        except _HostLostError as exc:
                            fail(slot, str(exc), host_lost=True)
                            break
                busy = [s for s in range(n_slots) if in_flight[s]]
                if not busy:
                    continue
                first_deadline = min(head_since[s] for s in busy) + self.timeout_s
                # select.poll directly: multiprocessing.connection.wait builds a
                # selector per call, which costs more than a render's bookkeeping.
                poller = select.poll()
                for slot in busy:
                    poller.register(self._conn(slot).fileno(), select.POLLIN)
                wait_ms = max(0.0, first_deadline - time.monotonic()) * 1000
                ready = {fd for fd, _ in poller.poll(math.ceil(wait_ms))}
                for slot in busy:
                    host = self.hosts[slot]
                    assert host is not None
                    if host.conn.fileno() in ready:
                        try:
                            tag, rendered = host.receive()
                        except _HostLostError as exc:
                            fail(slot, str(exc), host_lost=True)
                            continue
                        except _PluginError as exc:
                            fail(slot, f"the plugin host reported {exc}", host_lost=False)
                            continue
                        row = in_flight[slot].popleft()
                        if tag != row:  # pragma: no cover - a protocol bug, not a plugin fault
                            raise RuntimeError(f"plugin host answered row {tag}, expected {row}")
                        audio[row] = np.frombuffer(rendered, dtype=np.float32)
                        n_done += 1
                        head_since[slot] = time.monotonic()
                    elif time.monotonic() - head_since[slot] > self.timeout_s:
                        fail(
                            slot,
                            f"no answer within {self.timeout_s:g} s (the plugin hung)",
                            host_lost=True,
                        )
        except BaseException:
            # Hosts may still hold requests of this batch: start clean next time.
            self.close()
            raise
        return audio

    def _drop_dead_hosts(self) -> None:
        """Forget hosts that ended while idle (their parent thread ended, say): no example's fault."""
        for slot, host in enumerate(self.hosts):
            if host is not None and host.process.poll() is not None:
                host.kill()
                self.hosts[slot] = None

    def _conn(self, slot: int) -> Connection:
        host = self.hosts[slot]
        assert host is not None
        return host.conn

    def close(self) -> None:
        """End every host process. The pool restarts them if used again."""
        _stop_hosts(self.hosts)


def _check_plugin_path(plugin: str | Path) -> str:
    path = Path(plugin).expanduser()
    if not path.exists():
        hint = f" (the Debian plugins install with: {_INSTALL_HINT})" if "/vst" in str(path) else ""
        raise InverSynthError(f"plugin {str(path)!r} does not exist{hint}")
    if path.is_dir() and path.suffix.lower() != ".vst3":
        raise InverSynthError(f"plugin {str(path)!r} is a folder, not a VST plugin")
    return str(path.resolve())


def describe_plugin(
    plugin: str | Path, *, sample_rate: int = 44100, timeout_s: float | None = None
) -> dict[str, Any]:
    """Load a plugin in a host process and describe it.

    Returns
    -------
    info : dict
        ``{"plugin": path, "parameters": [{"index", "name", "default", "text",
        "label"}], "uid": bytes, "version": int, "n_outputs": int}``; ``default``
        is the normalized value at load, ``text`` the plugin's display of it.
    """
    path = _check_plugin_path(plugin)
    pool = PluginHostPool(
        load={"plugin": path, "sample_rate": int(sample_rate), "block_size": 128},
        n_hosts=1,
        timeout_s=timeout_s or env_default("VST_TIMEOUT_S", 30.0, float),
        retries=0,
        label=f"plugin {path!r}",
    )
    try:
        return {"plugin": path, **pool.info()}
    finally:
        pool.close()


def plugin_config_template(info: dict[str, Any]) -> dict[str, Any]:
    """A plugin config with every parameter fixed at its default, to edit into a real one.

    Move the entries to vary from ``fixed_parameters`` to ``parameters`` and
    replace their ``value`` with ``values`` (or ``n_levels``).
    """
    fixed = []
    for p in info["parameters"]:
        shown = f"{p['text']} {p['label']}".strip()
        entry: dict[str, Any] = {"id": p["index"], "name": p["name"], "value": p["default"]}
        if shown:
            entry["comment"] = f"default shows as {shown!r}"
        fixed.append(entry)
    return {
        "plugin": info["plugin"],
        "comment": "move the parameters to vary from fixed_parameters to parameters, "
        "with 'values' (normalized, in [0, 1]) instead of 'value'",
        "parameters": [],
        "fixed_parameters": fixed,
        "note": {"pitch": 60, "velocity": 100, "length_s": 0.5},
    }


# --------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------


class VSTGenerator(SoundGenerator):
    """A plugin playing one MIDI note per example, its parameters set from the example.

    Parameters
    ----------
    plugin_config : dict or path
        The plugin config (see the module docstring), or its JSON file. Its
        contents (not its path) go into :meth:`config`, so a dataset carries it.
    plugin : path, optional
        The plugin; defaults to the config's ``"plugin"``.
    sample_rate : int > 0
        Hz; the plugin renders at this rate.
    n_samples : int > 0
        Length of every example.
    pitch, velocity : int, optional
        MIDI note (0-127) and velocity (1-127); default the config's ``note``, else 60 and 100.
    note_length_s : float > 0, optional
        Note-on to note-off; default the config's ``note.length_s``, else half the example.
    prime_s, settle_s : float >= 0, optional
        Lead-in of every render (see :mod:`generators.plugin_host`); default the
        config's ``render`` section, else 0.1 and 0.3.
    resample_silent : bool
        In :meth:`render_examples` (the dataset writer), redraw the parameters of
        an example that renders silent (peak below 1e-4, or not finite), up to
        ``max_redraws`` times, deterministically (see :meth:`render_examples`).
    max_redraws : int >= 1
    workers : int > 0
        Plugin host processes rendering in parallel. Not part of :meth:`config`:
        the dataset writer's own workers each build a generator with one host.
    timeout_s : float > 0, optional
        Longest render before a host counts as hung (default
        ``INVERSYNTH_VST_TIMEOUT_S``, else 30). Not part of :meth:`config`.
    retries : int >= 0, optional
        Fresh attempts for an example whose host crashed or hung (default
        ``INVERSYNTH_VST_RETRIES``, else 2). Not part of :meth:`config`.
    block_size : int > 0
        DawDreamer's processing block, in samples.
    """

    name = "vst"

    def __init__(
        self,
        *,
        plugin_config: dict[str, Any] | str | Path,
        plugin: str | Path | None = None,
        sample_rate: int = 16384,
        n_samples: int = 16384,
        pitch: int | None = None,
        velocity: int | None = None,
        note_length_s: float | None = None,
        prime_s: float | None = None,
        settle_s: float | None = None,
        resample_silent: bool = False,
        max_redraws: int = 8,
        workers: int = 1,
        timeout_s: float | None = None,
        retries: int | None = None,
        block_size: int = 128,
    ) -> None:
        super().__init__(sample_rate=sample_rate, n_samples=n_samples)
        self.plugin_config = load_plugin_config(plugin_config)
        chosen = plugin if plugin is not None else self.plugin_config.plugin
        if chosen is None:
            raise InverSynthError(
                f"no plugin given: pass --plugin, or set 'plugin' in {self.plugin_config.source}"
            )
        self.plugin = _check_plugin_path(chosen)
        note, render = self.plugin_config.note, self.plugin_config.render
        self.pitch = _int_in(pitch if pitch is not None else note.get("pitch", 60), "pitch", 0, 127)
        self.velocity = _int_in(
            velocity if velocity is not None else note.get("velocity", 100), "velocity", 1, 127
        )
        length = note_length_s if note_length_s is not None else note.get("length_s")
        self.note_length_s = float(length) if length is not None else self.duration_s / 2
        if not self.note_length_s > 0:
            raise InverSynthError(f"note_length_s must be > 0, got {self.note_length_s!r}")
        self.prime_s = float(prime_s if prime_s is not None else render.get("prime_s", 0.1))
        self.settle_s = float(settle_s if settle_s is not None else render.get("settle_s", 0.3))
        for label, value in (("prime_s", self.prime_s), ("settle_s", self.settle_s)):
            if not 0 <= value <= 60:
                raise InverSynthError(f"{label} must be in [0, 60] s, got {value!r}")
        self.resample_silent = bool(resample_silent)
        self.max_redraws = _int_in(max_redraws, "max_redraws", 1, 1000)
        self.workers = _int_in(workers, "workers", 1, 1024)
        self.block_size = _int_in(block_size, "block_size", 1, 65536)
        self.timeout_s = float(
            timeout_s if timeout_s is not None else env_default("VST_TIMEOUT_S", 30.0, float)
        )
        if not self.timeout_s > 0:
            raise InverSynthError(f"timeout_s must be > 0, got {self.timeout_s!r}")
        self.retries = _int_in(
            retries if retries is not None else env_default("VST_RETRIES", 2, int),
            "retries",
            0,
            100,
        )
        self._parameters = ParameterSet(
            Parameter(name=p.name, levels=p.levels, unit="", spacing=p.spacing)
            for p in self.plugin_config.varied
        )
        self._pool: PluginHostPool | None = None
        self._validated = False
        self._all_defaults: list[float] = []
        self._varied_ids: list[int] = []
        self._fixed: list[tuple[int, float]] = []

    # ---- SoundGenerator --------------------------------------------------------
    @property
    def parameter_set(self) -> ParameterSet:
        return self._parameters

    def config(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "plugin_config": self.plugin_config.raw,
            "sample_rate": self.sample_rate,
            "n_samples": self.n_samples,
            "pitch": self.pitch,
            "velocity": self.velocity,
            "note_length_s": self.note_length_s,
            "prime_s": self.prime_s,
            "settle_s": self.settle_s,
            "resample_silent": self.resample_silent,
            "max_redraws": self.max_redraws,
            "block_size": self.block_size,
        }

    def render(self, values: np.ndarray) -> np.ndarray:
        audio, _ = self.render_checked(values)
        return audio

    def render_checked(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Render, and flag the silent examples.

        Parameters
        ----------
        values : np.ndarray [batch, n_parameters], in [0, 1]

        Returns
        -------
        audio : np.ndarray [batch, n_samples], float32
            Non-finite samples (a plugin gone unstable) are replaced by 0.
        silent : np.ndarray [batch], bool
            Peak below ``SILENCE_PEAK`` (1e-4), or not finite before the replacement.
        """
        return self._render_rows(values, example_numbers=None)

    def render_examples(
        self, *, seed: int, start: int, n_examples: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sample and render dataset examples ``[start, start + n_examples)``.

        With ``resample_silent``, an example that renders silent is drawn again
        from ``example_uniforms(seed=seed, start=index, n_draws=n_parameters,
        stream=k)`` for k = 1, 2, ... ``max_redraws`` (stream 0 is the first
        draw), until it sounds: the result still depends only on ``(seed,
        example index)``, so shards, workers and resumed runs agree. An example
        silent after every redraw keeps its last draw and counts as silent.

        Returns
        -------
        indices : np.ndarray [n_examples, n_parameters], int64
        audio : np.ndarray [n_examples, n_samples], float32
        """
        ps = self.parameter_set
        indices = ps.sample_indices(seed=seed, start=start, n_examples=n_examples)
        numbers = np.arange(start, start + n_examples)
        audio, silent = self._render_rows(ps.to_values(indices), example_numbers=numbers)
        if not self.resample_silent:
            return indices, audio
        for stream in range(1, self.max_redraws + 1):
            rows = np.flatnonzero(silent)
            if rows.size == 0:
                break
            u = np.concatenate(
                [
                    example_uniforms(
                        seed=seed,
                        start=int(numbers[r]),
                        n_examples=1,
                        n_draws=ps.n_parameters,
                        stream=stream,
                    )
                    for r in rows
                ]
            )  # [n_silent, n_parameters]
            indices[rows] = np.floor(u * ps.n_levels[None, :]).astype(np.int64)
            redone, still_silent = self._render_rows(
                ps.to_values(indices[rows]), example_numbers=numbers[rows]
            )
            audio[rows] = redone
            silent[rows] = still_silent
        return indices, audio

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> VSTGenerator:
        return self

    # ---- plugin ------------------------------------------------------------
    def _get_pool(self) -> PluginHostPool:
        if self._pool is None:
            self._pool = PluginHostPool(
                load={
                    "plugin": self.plugin,
                    "sample_rate": self.sample_rate,
                    "block_size": self.block_size,
                },
                n_hosts=self.workers,
                timeout_s=self.timeout_s,
                retries=self.retries,
                label=f"plugin {Path(self.plugin).name!r}",
            )
        return self._pool

    def describe_plugin(self) -> dict[str, Any]:
        """The plugin's description (see :func:`describe_plugin`)."""
        return {"plugin": self.plugin, **self._get_pool().info()}

    def validate(self) -> None:
        """Check the plugin config against the plugin; done once, before the first render.

        Raises
        ------
        InverSynthError
            When the plugin cannot be loaded, or a config entry names a
            parameter the plugin does not have (by index or by name).
        """
        if self._validated:
            return
        pool = self._get_pool()
        info = pool.info()
        names = [p["name"] for p in info["parameters"]]
        cfg = self.plugin_config
        varied_ids = [_resolve_index(p, names, cfg.source) for p in cfg.varied]
        fixed = [
            (_resolve_index(p, names, cfg.source, "fixed parameter"), p.value) for p in cfg.fixed
        ]
        every = varied_ids + [i for i, _ in fixed]
        twice = sorted({names[i] for i in every if every.count(i) > 1})
        if twice:
            raise InverSynthError(f"{cfg.source}: plugin parameter(s) {twice} appear twice")
        pool.configure(
            {
                "varied_ids": varied_ids,
                "fixed": fixed,
                "n_samples": self.n_samples,
                "pitch": self.pitch,
                "velocity": self.velocity,
                "note_length_s": self.note_length_s,
                "prime_s": self.prime_s,
                "settle_s": self.settle_s,
            }
        )
        self._varied_ids, self._fixed = varied_ids, fixed
        self._all_defaults = [float(p["default"]) for p in info["parameters"]]
        self._validated = True

    def _check_unit_values(self, values: np.ndarray) -> np.ndarray:
        v = self.check_values(values)
        bad = (v < 0.0) | (v > 1.0)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise InverSynthError(
                f"vst: plugin parameter values are normalized to [0, 1], got "
                f"{v[row, col]!r} for {self.parameter_set.names[col]!r}"
            )
        return v

    def _render_rows(
        self, values: np.ndarray, *, example_numbers: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        v = self._check_unit_values(values)
        self.validate()
        names = self.parameter_set.names

        def describe_row(i: int) -> str:
            where = f"example {example_numbers[i]}" if example_numbers is not None else f"row {i}"
            settings = ", ".join(f"{n}={x:.6g}" for n, x in zip(names, v[i], strict=True))
            return f"{where} ({settings})"

        audio = self._get_pool().render(v, describe_row)  # [batch, n_samples]
        # max and min propagate NaN and keep inf: non-finite rows have non-finite peaks.
        peaks = np.maximum(audio.max(axis=1), -audio.min(axis=1))  # [batch]
        finite = np.isfinite(peaks)
        if not finite.all():
            audio[~finite] = np.nan_to_num(audio[~finite], nan=0.0, posinf=0.0, neginf=0.0)
        silent = ~finite | (peaks < SILENCE_PEAK)
        return audio, silent

    # ---- presets -------------------------------------------------------------
    def preset_values(
        self, *, values: np.ndarray | None = None, indices: np.ndarray | None = None
    ) -> list[float]:
        """Every plugin parameter (normalized, index order) for one example's values or classes."""
        if (values is None) == (indices is None):
            raise InverSynthError("give exactly one of values= or indices=")
        if indices is not None:
            row = self.parameter_set.to_values(np.asarray(indices).reshape(1, -1))
        else:
            row = np.asarray(values, dtype=np.float64).reshape(1, -1)
        v = self._check_unit_values(row)[0]
        self.validate()
        every = list(self._all_defaults)
        for index, value in self._fixed:
            every[index] = value
        for index, value in zip(self._varied_ids, v, strict=True):
            every[index] = float(value)
        return every

    def write_preset(
        self,
        path: str | Path,
        *,
        values: np.ndarray | None = None,
        indices: np.ndarray | None = None,
        preset_name: str = "inversynth",
    ) -> Path:
        """Write one example's patch as a VST2 ``.fxp`` preset that the plugin (in any host) loads.

        Parameters
        ----------
        path : path-like
            Must end in ``.fxp``.
        values : np.ndarray [n_parameters], optional
            Parameter values in [0, 1] (e.g. ``parameter_set.to_values`` of a prediction).
        indices : np.ndarray [n_parameters], optional
            Class indices instead (e.g. a model's decoded prediction).

        Returns
        -------
        path : Path
        """
        out = Path(path)
        if out.suffix.lower() != ".fxp":
            raise InverSynthError(f"a VST2 preset file ends in .fxp, got {str(out)!r}")
        every = self.preset_values(values=values, indices=indices)
        info = self._get_pool().info()
        if len(info["uid"]) != 4:
            raise InverSynthError(
                f"plugin {self.plugin!r} does not report a VST2 unique ID, so it has no .fxp presets"
            )
        data = plugin_host.fxp_bytes(
            uid=info["uid"], version=info["version"], values=every, name=preset_name
        )
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        except OSError as exc:
            raise InverSynthError(f"cannot write preset {str(out)!r}: {exc.strerror}") from None
        return out

    def render_preset(self, path: str | Path) -> np.ndarray:
        """Render the note with the patch of an ``.fxp`` preset file: float32 [n_samples]."""
        preset = Path(path).resolve()
        if not preset.is_file() or preset.suffix.lower() != ".fxp":
            raise InverSynthError(f"preset {str(path)!r} is not an existing .fxp file")
        self.validate()
        audio: np.ndarray = self._get_pool().call(("render_preset", str(preset)))
        return audio


def write_preset(
    generator: VSTGenerator,
    path: str | Path,
    *,
    values: np.ndarray | None = None,
    indices: np.ndarray | None = None,
) -> Path:
    """Write a predicted patch as an ``.fxp`` preset; see :meth:`VSTGenerator.write_preset`."""
    return generator.write_preset(path, values=values, indices=indices)


def _int_in(value: Any, label: str, low: int, high: int) -> int:
    """``value`` as an int in [low, high] (integral floats such as 60.0 pass)."""
    ok = isinstance(value, (int, np.integer, float)) and not isinstance(value, bool)
    if not ok or not float(value).is_integer() or not low <= value <= high:
        raise InverSynthError(f"{label} must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def _format_table(info: dict[str, Any]) -> str:
    rows = [f"{'index':>5}  {'name':<24} {'default':>9}  display"]
    for p in info["parameters"]:
        shown = f"{p['text']} {p['label']}".strip()
        rows.append(f"{p['index']:>5}  {p['name']:<24} {p['default']:>9.4f}  {shown}")
    uid = info["uid"].decode("ascii", "replace") if info["uid"] else "-"
    head = (
        f"{info['plugin']}: {len(info['parameters'])} parameters, "
        f"{info['n_outputs']} output channel(s), VST2 ID {uid!r}"
    )
    return "\n".join([head, *rows])


def _generator_from_args(args: argparse.Namespace, *, workers: int = 1) -> VSTGenerator:
    return VSTGenerator(
        plugin_config=args.config,
        plugin=args.plugin,
        sample_rate=args.sample_rate,
        n_samples=n_samples_from_args(args),
        pitch=args.pitch,
        velocity=args.velocity,
        note_length_s=args.note_length,
        resample_silent=getattr(args, "resample_silent", False),
        workers=workers,
        timeout_s=args.timeout,
        retries=args.retries,
    )


def _add_synth_arguments(parser: argparse.ArgumentParser, *, with_dataset: bool) -> None:
    g = parser.add_argument_group("plugin")
    g.add_argument(
        "--config",
        type=Path,
        default=env_default("PLUGIN_CONFIG", None, Path),
        required=env_default("PLUGIN_CONFIG", None) is None,
        help="plugin config JSON (plugin_config/*.json)",
    )
    g.add_argument(
        "--plugin",
        default=env_default("PLUGIN", None),
        help="plugin file (unset: the config's 'plugin')",
    )
    g.add_argument(
        "--pitch",
        type=int,
        default=None,
        help="MIDI note (unset: the config's note.pitch, else 60)",
    )
    g.add_argument(
        "--velocity",
        type=int,
        default=None,
        help="MIDI velocity (unset: the config's note.velocity, else 100)",
    )
    g.add_argument(
        "--note_length",
        type=float,
        default=None,
        help="seconds from note-on to note-off (unset: the config's note.length_s, else half "
        "the example)",
    )
    g.add_argument(
        "--timeout",
        type=float,
        default=env_default("VST_TIMEOUT_S", 30.0, float),
        help="seconds one render may take before its plugin host counts as hung",
    )
    g.add_argument(
        "--retries",
        type=int,
        default=env_default("VST_RETRIES", 2, int),
        help="fresh attempts for an example whose plugin host crashed or hung",
    )
    if with_dataset:
        g.add_argument(
            "--resample_silent",
            action=argparse.BooleanOptionalAction,
            default=env_default("RESAMPLE_SILENT", False),
            help="redraw (deterministically) the parameters of examples that render silent",
        )
    else:
        g.add_argument("--sample_rate", type=int, default=env_default("SAMPLE_RATE", 16384, int))
        g.add_argument("--length", type=float, default=env_default("LENGTH", 1.0, float))


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        prog="python -m generators.vst_generator",
        description="Datasets from real synthesizer plugins (VST2/VST3, hosted by DawDreamer).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    describe = commands.add_parser(
        "describe",
        help="list a plugin's parameters; write a plugin config template",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    describe.add_argument("--plugin", required=True, help="plugin file (.so, .vst3)")
    describe.add_argument(
        "--output", type=Path, default=None, help="write a plugin config template here"
    )
    check = commands.add_parser(
        "check",
        help="render a few examples twice: determinism, levels, silence",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_synth_arguments(check, with_dataset=False)
    check.add_argument("--examples", type=int, default=32, help="examples to render")
    check.add_argument("--seed", type=int, default=0)
    run = commands.add_parser(
        "run",
        help="make a dataset",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_synth_arguments(run, with_dataset=True)
    add_dataset_arguments(run, default_name="vst")
    return parser


def check_determinism(generator: VSTGenerator, *, seed: int, n_examples: int) -> dict[str, Any]:
    """Render examples in order, then again in reverse order in fresh hosts; compare.

    A plugin config whose renders depend on what was rendered before (a noise
    oscillator, a free-running LFO) shows up as a large ``max_difference``.
    """
    if n_examples < 1:
        raise InverSynthError(f"--examples must be >= 1, got {n_examples}")
    ps = generator.parameter_set
    indices = ps.sample_indices(seed=seed, start=0, n_examples=n_examples)
    values = ps.to_values(indices)
    t0 = time.perf_counter()
    first, silent = generator.render_checked(values)
    elapsed = time.perf_counter() - t0
    generator.close()  # fresh hosts: a different history for every example
    again = generator.render(values[::-1])[::-1]
    peaks = np.max(np.abs(first), axis=1)
    return {
        "examples": n_examples,
        "max_difference": float(np.max(np.abs(first - again))),
        "peak_min": float(peaks.min()),
        "peak_max": float(peaks.max()),
        "silent": int(silent.sum()),
        "examples_per_s": n_examples / elapsed if elapsed > 0 else float("inf"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    if args.command == "describe":
        info = describe_plugin(args.plugin)
        print(_format_table(info))
        if args.output is not None:
            template = plugin_config_template(info)
            try:
                args.output.parent.mkdir(parents=True, exist_ok=True)
                args.output.write_text(json.dumps(template, indent=2) + "\n")
            except OSError as exc:
                raise InverSynthError(
                    f"cannot write {str(args.output)!r}: {exc.strerror}"
                ) from None
            print(f"template: {args.output}")
        return 0
    if args.command == "check":
        with _generator_from_args(args) as generator:
            report = check_determinism(generator, seed=args.seed, n_examples=args.examples)
        for key, value in report.items():
            print(f"{key:<16}: {value:.6g}" if isinstance(value, float) else f"{key:<16}: {value}")
        verdict = "ok" if report["max_difference"] <= 1e-3 else "NOT reproducible"
        print(f"renders depend on the parameters only: {verdict}")
        return 0
    # "run": the generator's plugin hosts are the workers, fed by one writer
    # process. That starts faster and copies less audio than writer processes
    # with a host each (the dataset is the same either way).
    with _generator_from_args(args, workers=args.workers) as generator:
        generator.validate()  # a bad config fails here, before a dataset file exists
        create_dataset_from_args(generator, argparse.Namespace(**{**vars(args), "workers": 1}))
    return 0


if __name__ == "__main__":
    run_cli(main)
