"""What a plugin offers: its parameters (described by a host process) and a config template.

``python -m generators.vst describe --plugin PATH --output FILE`` prints the
table and writes the template (never over an existing file without ``--overwrite``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from core.errors import InverSynthError
from generators.parameters import default_ordered
from generators.vst.config import check_plugin_path
from generators.vst.hosts import PluginHostPool, default_timeout_s

__all__ = ["describe_plugin", "format_plugin_table", "plugin_config_template", "write_text_atomic"]


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
    path = check_plugin_path(plugin)
    pool = PluginHostPool(
        load={"plugin": path, "sample_rate": int(sample_rate), "block_size": 128},
        n_hosts=1,
        timeout_s=timeout_s or default_timeout_s(),
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
    replace their ``value`` with ``values`` (or ``n_levels``). Every entry says
    whether it is ``ordered``: the plugin does not tell, so the template starts
    from :func:`~generators.parameters.default_ordered` of the name (a switch or
    a waveform is not), for the editor to check.
    """
    fixed = []
    for p in info["parameters"]:
        shown = f"{p['text']} {p['label']}".strip()
        entry: dict[str, Any] = {
            "id": p["index"],
            "name": p["name"],
            "value": p["default"],
            "ordered": default_ordered(p["name"]),
        }
        if shown:
            entry["comment"] = f"default shows as {shown!r}"
        fixed.append(entry)
    return {
        "plugin": info["plugin"],
        "comment": "move the parameters to vary from fixed_parameters to parameters, "
        "with 'values' (normalized, in [0, 1]) instead of 'value'; check 'ordered' (false for "
        "a switch or a waveform)",
        "parameters": [],
        "fixed_parameters": fixed,
        "note": {"pitch": 60, "velocity": 100, "length_s": 0.5},
    }


def format_plugin_table(info: dict[str, Any]) -> str:
    """A described plugin as a text table: one line per parameter."""
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


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it: the file is whole or absent.

    Raises
    ------
    InverSynthError
        The folder cannot be made or written, naming the reason.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise InverSynthError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's file is private; a config is not
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InverSynthError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
        raise
