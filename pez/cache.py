"""Where pez keeps files it builds once: converted models, embedded datasets, API response caches."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``$PEZ_CACHE`` (default ``~/.cache/pez``) joined with ``parts``; the folder is created."""
    root = Path(os.environ.get("PEZ_CACHE") or Path.home() / ".cache" / "pez").expanduser()
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
