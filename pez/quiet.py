"""Library noise off: the progress bars, notes and deprecation warnings that transformers, diffusers and peft print
while pez loads or calls them, unless ``$PEZ_VERBOSE`` asks for them. The user reads pez's own lines."""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

VERBOSE_ENV = "PEZ_VERBOSE"  # set (to anything but 0 or empty) to see the libraries' own loading bars and notes
# deprecation notes that a library's own code triggers (pez's own calls use the current names): peft's
# get_peft_model reads transformers' `is_gradient_checkpointing`; peft's prefix tuning passes `past_key_values` to
# the model's forward. Filtered only around those calls (quiet_deprecations), and shown with $PEZ_VERBOSE.
LIBRARY_DEPRECATIONS = (
    r"`is_gradient_checkpointing` is deprecated",
    r"`past_key_values` is deprecated and will be removed in version \S+ for `\w+\.forward`",
)


def verbose() -> bool:
    """Whether ``$PEZ_VERBOSE`` asks for the libraries' own bars, notes and deprecation warnings."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


@contextmanager
def quiet_deprecations() -> Iterator[None]:
    """Around a library call whose own code uses a deprecated name: exactly :data:`LIBRARY_DEPRECATIONS` off,
    only during the call (the filters are put back), unless ``$PEZ_VERBOSE`` asks for them."""
    if verbose():  # as the library says them (once each)
        yield
        return
    with warnings.catch_warnings():
        for message in LIBRARY_DEPRECATIONS:
            warnings.filterwarnings("ignore", message=message, category=FutureWarning)
        yield


@contextmanager
def quiet_loading() -> Iterator[None]:
    """While a model or pipeline loads: the progress bars ("Loading weights") and info / warning notes of
    transformers and diffusers (whichever is imported) off, unless ``$PEZ_VERBOSE`` asks for them; each library's
    settings are put back afterwards (nothing global is kept). A failed load is pez's one line, not theirs too."""
    if verbose():
        yield
        return
    libraries = []
    for name in ("transformers.utils.logging", "diffusers.utils.logging"):
        try:
            libraries.append(importlib.import_module(name))
        except ImportError:
            continue
    kept = [(lib, lib.get_verbosity(), lib.is_progress_bar_enabled()) for lib in libraries]
    for lib in libraries:
        lib.set_verbosity_error()
        lib.disable_progress_bar()
    try:
        yield
    finally:
        for lib, verbosity, bars in kept:
            lib.set_verbosity(verbosity)
            if bars:
                lib.enable_progress_bar()
