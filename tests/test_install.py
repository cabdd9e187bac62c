"""The environment is the one CI tested: every package at its version in requirements.lock."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

LOCK = Path(__file__).resolve().parents[1] / "requirements.lock"
OPTIONAL = {"dexed-py"}  # the extra `dexed`; absent unless installed with `--extra dexed`
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+))?")


def _locked() -> dict[str, str]:
    """Name -> version of every lock entry whose environment marker holds here."""
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        match = _PIN.match(line)
        if match and (match[3] is None or Marker(match[3].strip()).evaluate()):
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def test_every_installed_package_is_the_locked_version() -> None:
    locked = _locked()
    assert len(locked) > 50  # the lock was parsed, not skipped
    installed: dict[str, str] = {
        canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()
    }
    wrong = {
        name: (version, installed.get(name))
        for name, version in locked.items()
        if installed.get(name) != version and not (name in OPTIONAL and name not in installed)
    }
    # A difference means pyproject.toml changed without `uv run task lock`, or the
    # environment was resolved without pyproject's exclude-newer date.
    assert not wrong, f"locked vs installed: {wrong}"


def test_pyproject_constrains_every_package_to_the_lock() -> None:
    # `uv run` resolves pyproject.toml, not the lock: only these constraints make a
    # fresh clone install the locked versions whatever the index gained since.
    import tomllib

    pyproject = tomllib.loads((LOCK.parent / "pyproject.toml").read_text())
    constraints = pyproject["tool"]["uv"]["constraint-dependencies"]
    pinned = {}
    for text in constraints:
        match = _PIN.match(text)
        assert match, f"not an exact pin: {text!r}"
        pinned[canonicalize_name(match[1])] = match[2]
    all_pins = {}
    for line in LOCK.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            all_pins[canonicalize_name(match[1])] = match[2]
    assert pinned == all_pins
