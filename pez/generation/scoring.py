"""Image-image cosine under a reference CLIP: how close generated images come to the targets."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from pez.errors import PezError

DEFAULT_REFERENCE = "ViT-g-14/laion2b_s34b_b88k"  # a large open_clip model, apart from the ones prompts are found with


class ReferenceScorer:
    """Image features of a reference open_clip model (normalised), and cosines between image sets.

    Args:
        loaded: a :class:`pez.models.LoadedModel` of kind ``clip`` (open_clip, with its preprocessing).
    """

    def __init__(self, loaded):
        if loaded.kind != "clip" or not hasattr(loaded.model, "encode_image"):
            raise PezError(f"the reference model {loaded.spec} must be an open_clip CLIP with an image tower")
        self.spec = loaded.spec
        self.model = loaded.model
        self.preprocess = loaded.preprocess
        self.device = next(self.model.parameters()).device

    @torch.no_grad()
    def features(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Normalised image features, shape (N, F)."""
        pixels = torch.stack([self.preprocess(im.convert("RGB")) for im in images]).to(self.device)
        dtype = next(self.model.visual.parameters()).dtype
        return F.normalize(self.model.encode_image(pixels.to(dtype)).float(), dim=-1)

    def cosines(self, generated: Sequence[Image.Image], targets: Sequence[Image.Image]) -> torch.Tensor:
        """Cosine of every generated image with every target, shape (G, T)."""
        return self.features(generated) @ self.features(targets).T
