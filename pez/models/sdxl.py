"""``sdxl``: SDXL's two text encoders as one model, OpenAI CLIP ViT-L-14 and OpenCLIP ViT-bigG-14
(``sdxl:SPEC_L,SPEC_G`` for other weights, e.g. local files or ``random`` ones)."""

from __future__ import annotations

import torch

from pez.errors import PezError
from pez.models.base import LoadedModel
from pez.models.clip import load_clip

SDXL_TOWERS = ("ViT-L-14/openai", "ViT-bigG-14/laion2b_s39b_b160k")


def load_sdxl(spec: str, dev: torch.device) -> LoadedModel:
    """Both towers (each an open_clip model spec) as a LoadedModel of kind ``sdxl`` whose ``model`` is the pair."""
    if spec == "sdxl":
        specs = SDXL_TOWERS
    elif spec.startswith("sdxl:"):
        specs = tuple(s.strip() for s in spec[len("sdxl:") :].split(","))
        if len(specs) != 2 or not all(specs):
            example = ",".join(SDXL_TOWERS)
            raise PezError(f"{spec!r}: write sdxl:SPEC_L,SPEC_G, two open_clip specs, e.g. sdxl:{example}")
    else:
        raise PezError(f"unknown model {spec!r}: use sdxl or sdxl:SPEC_L,SPEC_G")
    towers = [load_clip(s, dev) for s in specs]
    return LoadedModel(spec, "sdxl", towers)
