"""The JSON record every result type is built on (``to_dict`` / ``save`` / ``load`` written once)."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, fields
from typing import TypeVar

from pez.errors import PezError

R = TypeVar("R", bound="Record")


class Record:
    """JSON I/O for a dataclass: written atomically, read back ignoring fields this version does not know."""

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: str | os.PathLike) -> None:
        """Write the record as JSON (atomically: a crash never leaves half a file; strict JSON: a non-finite number
        is written as null).

        Raises:
            PezError: the file cannot be written (a full disk, a read-only folder), saying which file and why; no
                temporary file is left behind.
        """
        path = os.fspath(path)
        tmp = f"{path}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(finite(self.to_dict()), f, indent=2, allow_nan=False)
            os.replace(tmp, path)
        except OSError as e:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise PezError(f"cannot write {path}: {e.strerror or e}") from None

    @classmethod
    def from_dict(cls: type[R], data: dict) -> R:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def load(cls: type[R], path: str | os.PathLike) -> R:
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))


def finite(value):
    """``value`` with every NaN or infinite float (at any depth) replaced by None, for strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def versions() -> dict:
    """Versions of the packages a result depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("pez", "torch", "open_clip_torch", "sentence-transformers", "transformers"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out
