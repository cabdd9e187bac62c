"""Typed records of JSON files: serialization, and writing a file atomically.

A record is a dataclass with ``to_dict`` / ``from_dict`` (the JSON object);
:class:`JsonRecord` adds ``to_json`` / ``from_json`` (its text) and reads like
its file (``record["summary"]``), for code written against the file. Standard
library only, so that worker processes can use it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from core.errors import InverSynthError
from core.storage import write_atomic

__all__ = ["JsonRecord", "json_safe", "write_json_atomic", "write_text_atomic"]


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats (not valid JSON) replaced by None."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` whole or not at all (:func:`core.storage.write_atomic`)."""
    return write_atomic(path, text)


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON to a temporary file and rename it over ``path`` (never half-written)."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


class JsonRecord:
    """Mixin of a typed record stored as a JSON object.

    Subclasses define :meth:`to_dict` and :meth:`from_dict`; ``record[key]``
    and ``key in record`` read the JSON object :meth:`to_dict` gives.
    """

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        raise NotImplementedError

    def to_json(self) -> str:
        """The JSON text (non-finite numbers as null)."""
        return json.dumps(json_safe(self.to_dict()), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = "record") -> Self:
        """Parse :meth:`to_json`'s text; bad JSON or a bad record names ``source``."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InverSynthError(f"{source} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InverSynthError(f"{source} is not a JSON object")
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InverSynthError(f"{source} is malformed: missing or bad {exc}") from None

    def write(self, path: Path) -> Path:
        """Write :meth:`to_json` to ``path`` atomically."""
        return write_text_atomic(path, self.to_json())

    @classmethod
    def read(cls, path: Path) -> Self:
        """Read a file :meth:`write` wrote."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InverSynthError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
        return cls.from_json(text, source=repr(str(path)))

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()
