"""The matching page: ``python -m models.serve`` (``uv run task serve``) serves it on this machine.

Open the address it prints, drop a sound (WAV, FLAC, OGG, MP3, or record one),
pick a model (the shipped FM model, any other folder under
``models/pretrained/``, any run folder under ``--output_dir``), the method and
the budget, and hear the sound, the network's guess and the match side by
side, with their spectrograms, the metrics and the parameter table; take the
preset (``.fxp`` for a plugin run, ``.syx`` for a DX7 run), the JSON and the
WAVs. The page runs ``python -m models.predict``'s pipeline
(:mod:`models.web.library`), one match at a time; other tabs wait their turn
and see their place in the queue.

It listens on 127.0.0.1 unless ``--host`` says otherwise: the page has no
login, so anyone who can reach the address can use it. Uploads and results go
into ``--serve_directory`` and nowhere else. Ctrl-C stops it (exit code 130;
SIGTERM 143), cancelling the match under way.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from core.commandline import bounded_float, bounded_int, make_parser, run_cli
from core.environment import env_default
from core.errors import InverSynthError
from core.interrupts import signal_exception
from core.options import add_bool_argument, add_output_dir_argument
from generators.outputs import SERVE_FOLDER

__all__ = ["get_parser", "main"]

_port = bounded_int(0, 65535)
_upload_mb = bounded_float(0.01, 2000.0, "MB")
_duration_s = bounded_float(1.0, 3600.0, "s")


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        prog="python -m models.serve",
        description="Serve the matching page on this machine: drop a sound, hear the match, "
        "take the preset. Uploads and results go into --serve_directory.",
    )
    parser.add_argument(
        "--host",
        default=env_default("SERVE_HOST", "127.0.0.1"),
        help="address to listen on; anything but a loopback address lets other machines in "
        "(the page has no login)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=env_default("SERVE_PORT", 8000, _port),
        help="TCP port (0: any free port, printed at start)",
    )
    parser.add_argument(
        "--serve_directory",
        type=Path,
        default=env_default("SERVE_DIRECTORY", SERVE_FOLDER, Path),
        help="folder of the uploads and results; the page reads and writes nothing else",
    )
    add_output_dir_argument(
        parser,
        default=Path("runs"),
        env="OUTPUT_DIR",
        help="folder of the run folders offered beside the shipped models",
    )
    parser.add_argument(
        "--max_upload_mb",
        type=_upload_mb,
        default=env_default("SERVE_MAX_UPLOAD_MB", 20.0, _upload_mb),
        help="the largest sound file taken, MB",
    )
    parser.add_argument(
        "--max_duration_s",
        type=_duration_s,
        default=env_default("SERVE_MAX_DURATION_S", 60.0, _duration_s),
        help="the longest sound taken, seconds (the model hears its first second or so)",
    )
    add_bool_argument(
        parser,
        "preload",
        env="SERVE_PRELOAD",
        default=True,
        help="load the first model as the server starts, so that the first match does not wait "
        "for TensorFlow",
    )
    return parser


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, or one line of error saying why not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InverSynthError(f"--host {host!r} is not an address of this machine: {exc}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise InverSynthError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def _allowed_hosts(host: str) -> tuple[str, ...]:
    """Host names a request may name: this machine's own, or any when listening on all addresses."""
    if host in ("0.0.0.0", "::", ""):
        return ("*",)
    return tuple(dict.fromkeys((host, "127.0.0.1", "localhost")))


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    import uvicorn

    from models.web.server import ServeSettings, create_app, open_serve_folder

    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]
    settings = ServeSettings(
        serve_dir=args.serve_directory,
        runs_dir=args.output_dir,
        max_upload_bytes=round(args.max_upload_mb * 1_000_000),
        max_duration_s=args.max_duration_s,
        allowed_hosts=_allowed_hosts(args.host),
        preload=args.preload,
    )
    try:  # refused here in one line, before the server starts (it locks the folder again)
        open_serve_folder(settings).release()
    except BaseException:
        sock.close()
        raise
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"the matching page is at http://{shown}:{port}/ (Ctrl-C stops it); uploads and results "
        f"go to {args.serve_directory}/",
        flush=True,
    )
    if not _is_loopback(args.host):
        print(
            f"warning: listening on {args.host}: anyone who reaches this machine can use the "
            "page (it has no login)",
            file=sys.stderr,
        )
    config = uvicorn.Config(create_app(settings), log_level="warning", timeout_graceful_shutdown=5)
    server = _signalled_server_class()(config)
    server.run(sockets=[sock])
    if server.signal_received is not None:
        # uvicorn raises the signal again once it has stopped, but a process that
        # inherited SIGINT ignored (a background job, some test runners) would then
        # exit 0: the signal that stopped the page decides the exit code.
        raise signal_exception(server.signal_received)
    return 0


def _signalled_server_class() -> type[Any]:
    import uvicorn  # deferred, as in main: --help and refusals start without it

    class SignalledServer(uvicorn.Server):
        """uvicorn's server, remembering the signal that stopped it."""

        signal_received: int | None = None

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            self.signal_received = sig
            super().handle_exit(sig, frame)

    return SignalledServer


if __name__ == "__main__":
    run_cli(main)
