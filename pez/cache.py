"""Where pez keeps files it builds once: converted models, embedded datasets, API response caches."""

from __future__ import annotations

import os
from pathlib import Path

from pez.errors import PezError


def cache_root() -> Path:
    """``$PEZ_CACHE``, or ``~/.cache/pez``."""
    return Path(os.environ.get("PEZ_CACHE") or Path.home() / ".cache" / "pez").expanduser()


def cache_error(path: str | os.PathLike, why: str) -> PezError:
    """The one line for a cache folder pez cannot write: which folder, why, and the fix."""
    return PezError(
        f"cannot write pez's cache folder {path} ({why}): set PEZ_CACHE to a writable folder "
        "(e.g. export PEZ_CACHE=/tmp/pez-cache)"
    )


def cache_dir(*parts: str, writable: bool = False) -> Path:
    """``$PEZ_CACHE`` (default ``~/.cache/pez``) joined with ``parts``; the folder is created.

    Args:
        writable: the caller is about to write there: check now, before the work whose result it stores.

    Raises:
        PezError: the folder cannot be created (a read-only cache, a file in the way), or ``writable`` and it
            cannot be written.
    """
    path = cache_root().joinpath(*parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise cache_error(path, e.strerror or type(e).__name__) from None
    if writable and not os.access(path, os.W_OK):
        raise cache_error(path, "not writable")
    return path
