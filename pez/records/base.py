"""The JSON record every result type is built on (``to_dict`` / ``save`` / ``load`` written once)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, fields
from typing import TypeVar

R = TypeVar("R", bound="Record")


class Record:
    """JSON I/O for a dataclass: written atomically, read back ignoring fields this version does not know."""

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: str | os.PathLike) -> None:
        """Write the record as JSON (atomically: a crash never leaves half a file)."""
        path = os.fspath(path)
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
        os.replace(tmp, path)

    @classmethod
    def from_dict(cls: type[R], data: dict) -> R:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def load(cls: type[R], path: str | os.PathLike) -> R:
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))


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
