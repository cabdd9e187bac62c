"""Plugin host processes and their protocol: the parent's side of :mod:`generators.vst.host_main`.

A :class:`PluginHostPool` owns host processes (started on first use, ended by
:meth:`PluginHostPool.close`), so that plugin code never runs in the calling
process, which may have TensorFlow loaded. A host that crashes or hangs costs
only the example it was rendering, which is retried in a fresh host. An
example that fails every retry raises :class:`~core.errors.InverSynthError`
naming it, or, with ``render(..., skip_failures=True)`` (the dataset writer),
is reported as failed with a one-line warning while the rest render on.
"""

from __future__ import annotations

import collections
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
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from core.commandline import bounded_float, bounded_int
from core.environment import env_default
from core.errors import InverSynthError

__all__ = [
    "MAX_RETRIES",
    "TIMEOUT_RANGE_S",
    "PluginHostPool",
    "default_retries",
    "default_timeout_s",
    "retries_type",
    "timeout_type",
]

_HOST_SCRIPT = Path(__file__).resolve().with_name("host_main.py")
_PIPELINE_DEPTH = 2  # requests queued per host, so that a host never waits for the next one
_STARTUP_TIMEOUT_S = 60.0  # loading a plugin takes well under a second; allow a slow disk
# Plugin descriptions by (file, size and time stamp, sample rate, block size):
# a generator made again in the same process checks its config without a host.
_INFO_CACHE: dict[tuple[Any, ...], dict[str, Any]] = {}


TIMEOUT_RANGE_S = (0.01, 86_400.0)  # a render that may take longer than a day has hung
MAX_RETRIES = 100
timeout_type = bounded_float(*TIMEOUT_RANGE_S, unit="s")
retries_type = bounded_int(0, MAX_RETRIES)


def default_timeout_s() -> float:
    """Longest render before a host counts as hung: ``INVERSYNTH_VST_TIMEOUT_S``, else 30 s."""
    return env_default("VST_TIMEOUT_S", 30.0, timeout_type)


def default_retries() -> int:
    """Fresh attempts for an example whose host failed: ``INVERSYNTH_VST_RETRIES``, else 2."""
    return env_default("VST_RETRIES", 2, retries_type)


class _HostLostError(Exception):
    """A host crashed, hung, or broke the connection."""


class _PluginError(Exception):
    """A host stayed up but reported an error (a Python exception inside it)."""


class _Host:
    """One plugin host process (:mod:`generators.vst.host_main`) and its connection."""

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


@dataclass
class _Batch:
    """The bookkeeping of one :meth:`PluginHostPool.render` call."""

    rows: np.ndarray  # [batch, n_varied] float64
    describe_row: Callable[[int], str]
    audio: np.ndarray  # [batch, n_samples] float32, filled as the answers arrive
    pending: collections.deque[int]  # rows to send, in sending order
    in_flight: list[collections.deque[int]]  # per host slot: rows sent, oldest first
    head_since: list[float]  # per host slot: when its oldest request started (monotonic s)
    failures: list[int]  # per row
    skip_failures: bool  # a row that fails every retry: mark it failed (True) or raise
    failed: np.ndarray  # [batch] bool, rows given up on
    n_done: int = 0

    @classmethod
    def start(
        cls,
        rows: np.ndarray,
        describe_row: Callable[[int], str],
        *,
        n_slots: int,
        n_samples: int,
        skip_failures: bool,
    ) -> _Batch:
        n_rows = rows.shape[0]
        return cls(
            rows=rows,
            describe_row=describe_row,
            audio=np.zeros((n_rows, n_samples), dtype=np.float32),
            pending=collections.deque(range(n_rows)),
            in_flight=[collections.deque() for _ in range(n_slots)],
            head_since=[0.0] * n_slots,
            failures=[0] * n_rows,
            skip_failures=skip_failures,
            failed=np.zeros(n_rows, dtype=bool),
        )

    @property
    def finished(self) -> bool:
        return self.n_done == self.rows.shape[0]

    def busy_slots(self) -> list[int]:
        return [slot for slot, queue in enumerate(self.in_flight) if queue]


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
        """The plugin's description (see :mod:`generators.vst.host_main`).

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

    def render(
        self,
        rows: np.ndarray,
        describe_row: Callable[[int], str],
        *,
        skip_failures: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Render one note per row of varied-parameter values.

        Every host gets up to ``_PIPELINE_DEPTH`` requests at a time; each
        answer, failure or time-out makes room for the next row.

        Parameters
        ----------
        rows : np.ndarray [batch, n_varied], float64 in [0, 1]
        describe_row : callable
            ``describe_row(i)`` names row ``i`` in messages ("example 1234 (...)").
        skip_failures : bool
            A row whose host crashed or hung on every retry: give up on it
            (silence, marked in ``failed``, a warning on stderr) and render
            the rest; without it, raise.

        Returns
        -------
        audio : np.ndarray [batch, n_samples], float32
        failed : np.ndarray [batch], bool
        """
        if self.setup is None:
            raise RuntimeError("configure() the pool before rendering")
        n_slots = min(self.n_hosts, rows.shape[0])
        batch = _Batch.start(
            rows,
            describe_row,
            n_slots=n_slots,
            n_samples=self.n_samples,
            skip_failures=skip_failures,
        )
        if batch.finished:
            return batch.audio, batch.failed
        while len(self.hosts) < n_slots:
            self.hosts.append(None)
        self._drop_dead_hosts()
        try:
            while not batch.finished:
                self._start_idle_hosts(batch)
                self._dispatch(batch)
                busy = batch.busy_slots()
                if not busy:
                    continue
                answered = self._wait_for_answers(batch, busy)
                self._collect(batch, [slot for slot in busy if slot in answered])
                self._expire(batch, [slot for slot in busy if slot not in answered])
        except BaseException:
            # Hosts may still hold requests of this batch: start clean next time.
            self.close()
            raise
        return batch.audio, batch.failed

    def _start_idle_hosts(self, batch: _Batch) -> None:
        """Start hosts in the empty slots, as many as there are rows to send."""
        idle = [slot for slot in range(len(batch.in_flight)) if self.hosts[slot] is None]
        if idle and batch.pending:
            self._start_hosts(idle[: len(batch.pending)])

    def _dispatch(self, batch: _Batch) -> None:
        """Send rows to every host until it has ``_PIPELINE_DEPTH`` requests in flight."""
        for slot, queue in enumerate(batch.in_flight):
            while batch.pending and len(queue) < _PIPELINE_DEPTH:
                host = self.hosts[slot]
                if host is None:  # not started: more slots than pending rows
                    break
                row = batch.pending.popleft()
                if not queue:
                    batch.head_since[slot] = time.monotonic()
                queue.append(row)
                try:
                    host.send(("render", row, batch.rows[row].tolist()))
                except _HostLostError as exc:
                    self._fail(batch, slot, str(exc), host_lost=True)
                    break

    def _wait_for_answers(self, batch: _Batch, busy: list[int]) -> set[int]:
        """The busy slots whose host has answered, waiting until one does or a request is due."""
        first_deadline = min(batch.head_since[slot] for slot in busy) + self.timeout_s
        # select.poll directly: multiprocessing.connection.wait builds a
        # selector per call, which costs more than a render's bookkeeping.
        poller = select.poll()
        slot_of_fd = {}
        for slot in busy:
            fd = self._conn(slot).fileno()
            poller.register(fd, select.POLLIN)
            slot_of_fd[fd] = slot
        wait_ms = max(0.0, first_deadline - time.monotonic()) * 1000
        return {slot_of_fd[fd] for fd, _ in poller.poll(math.ceil(wait_ms))}

    def _collect(self, batch: _Batch, answered: list[int]) -> None:
        """Take one answer from each of these slots: a rendered row, or a failure."""
        for slot in answered:
            host = self.hosts[slot]
            assert host is not None
            try:
                tag, rendered = host.receive()
            except _HostLostError as exc:
                self._fail(batch, slot, str(exc), host_lost=True)
                continue
            except _PluginError as exc:
                self._fail(batch, slot, f"the plugin host reported {exc}", host_lost=False)
                continue
            row = batch.in_flight[slot].popleft()
            if tag != row:  # pragma: no cover - a protocol bug, not a plugin fault
                raise RuntimeError(f"plugin host answered row {tag}, expected {row}")
            batch.audio[row] = np.frombuffer(rendered, dtype=np.float32)
            batch.n_done += 1
            batch.head_since[slot] = time.monotonic()

    def _expire(self, batch: _Batch, waiting: list[int]) -> None:
        """Fail the oldest request of every slot that has waited longer than ``timeout_s``."""
        for slot in waiting:
            if time.monotonic() - batch.head_since[slot] > self.timeout_s:
                reason = f"no answer within {self.timeout_s:g} s (the plugin hung)"
                self._fail(batch, slot, reason, host_lost=True)

    def _fail(self, batch: _Batch, slot: int, reason: str, *, host_lost: bool) -> None:
        """The oldest request of ``slot`` failed: retry it, or give up on it."""
        row = batch.in_flight[slot].popleft()
        if host_lost:
            host = self.hosts[slot]
            if host is not None:
                host.kill()
            self.hosts[slot] = None
            # Requests queued behind it never started: requeue them as they were.
            batch.pending.extendleft(reversed(batch.in_flight[slot]))
            batch.in_flight[slot].clear()
        batch.failures[row] += 1
        if batch.failures[row] > self.retries:
            message = (
                f"{self.label}: {batch.describe_row(row)} failed {batch.failures[row]} time(s); "
                f"last: {reason}"
            )
            if not batch.skip_failures:
                raise InverSynthError(message)
            # Given up: the row counts as done, its audio stays silence.
            tqdm.write(f"warning: {message}; recorded as failed", file=sys.stderr)
            batch.failed[row] = True
            batch.n_done += 1
            batch.head_since[slot] = time.monotonic()
            return
        batch.pending.appendleft(row)  # retried first, in a fresh host if this one died
        batch.head_since[slot] = time.monotonic()

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
