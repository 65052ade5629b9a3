"""CLIP models from transformers (``hf:openai/clip-vit-large-patch14``, Stable Diffusion 1.5's text encoder) as an
objective beside open_clip's (docs/objectives.md#clip-text-path).

The text path is rebuilt from the model's public modules (``embeddings`` with ``inputs_embeds``, the causal
``encoder``, ``final_layer_norm``, pooling at end-of-text, ``text_projection``), so it equals
``CLIPModel.get_text_features`` for the same ids while taking prompt embeddings; as for open_clip, only the
L + 2 positions the end-of-text feature depends on are run.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence

import torch
import torch.nn as nn

from pez.errors import PezError
from pez.objectives.clip import CLIPObjective
from pez.text.tokenizers import HFClipTokenizer


def _features(out) -> torch.Tensor:
    """``get_*_features`` gives a tensor (transformers 4) or an output whose ``pooler_output`` it is (5)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


@functools.cache
def _mask_cache_kwarg(create_causal_mask) -> str:
    """The cache argument's name of transformers' ``create_causal_mask``: ``cache`` in 5.x (no deprecation note),
    ``past_key_values`` before; read once, not at every forward."""
    return "cache" if "cache" in inspect.signature(create_causal_mask).parameters else "past_key_values"


class HFClipTextPath(nn.Module):
    """A transformers ``CLIPModel``'s (or ``CLIPTextModelWithProjection``'s) text features from token embeddings.

    Args:
        model: a transformers CLIP model with a ``text_model`` (and a ``text_projection`` if it projects).
        tokenizer: its tokenizer.
    """

    def __init__(self, model: nn.Module, tokenizer):
        super().__init__()
        text = getattr(model, "text_model", model)
        if not all(hasattr(text, a) for a in ("embeddings", "encoder", "final_layer_norm")):
            raise PezError(f"{type(model).__name__} is not a transformers CLIP model with a text model")
        self.text = text
        self.proj = getattr(model, "text_projection", None)
        self.tok = HFClipTokenizer(tokenizer)
        self.context_length = min(text.embeddings.position_embedding.weight.shape[0], self.tok.context_length)

    @property
    def token_embedding(self) -> torch.Tensor:
        return self.text.embeddings.token_embedding.weight  # (V, D)

    def forward(self, x: torch.Tensor, eot_pos: torch.Tensor) -> torch.Tensor:
        """Text features of sequences given as embeddings (N, S, D), pooled at ``eot_pos`` (N,)."""
        from transformers.masking_utils import create_causal_mask

        h = self.text.embeddings(inputs_embeds=x.to(self.token_embedding.dtype))  # + position embeddings
        no_cache = {_mask_cache_kwarg(create_causal_mask): None}
        mask = create_causal_mask(config=self.text.config, inputs_embeds=h, attention_mask=None, **no_cache)
        h = self.text.encoder(inputs_embeds=h, attention_mask=mask, is_causal=True).last_hidden_state  # (N, S, D)
        pooled = self.text.final_layer_norm(h[torch.arange(h.shape[0], device=h.device), eot_pos])  # (N, D)
        return self.proj(pooled) if self.proj is not None else pooled

    def encode_embeds(self, embeds: torch.Tensor) -> torch.Tensor:
        """Features of prompts given as embeddings (R, L, D): start + prompt + end."""
        r, length, _ = embeds.shape
        w = self.token_embedding
        x = torch.cat([w[self.tok.bos_id].expand(r, 1, -1), embeds.to(w.dtype), w[self.tok.eos_id].expand(r, 1, -1)], 1)
        return self(x, torch.full((r,), length + 1, device=embeds.device))

    def encode_ids(self, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        """Features of prompts given as token ids of any lengths (each cut to the context)."""
        ids = [list(i)[: self.context_length - 2] for i in ids]
        s = max(len(i) for i in ids) + 2
        rows = [[self.tok.bos_id, *i, self.tok.eos_id] + [self.tok.eos_id] * (s - len(i) - 2) for i in ids]
        t = torch.tensor(rows, device=self.token_embedding.device)
        eot = torch.tensor([len(i) + 1 for i in ids], device=t.device)
        return self(self.text.embeddings.token_embedding(t), eot)


class HFCLIPObjective(CLIPObjective):
    """:class:`~pez.objectives.clip.CLIPObjective` on a transformers CLIP model.

    Args:
        model: a transformers ``CLIPModel`` (image targets need its vision tower and ``image_processor``).
        tokenizer: its tokenizer (``AutoTokenizer``).
        image_processor: its ``CLIPImageProcessor``, for image targets.
        Other arguments as for :class:`~pez.objectives.clip.CLIPObjective`.
    """

    def __init__(self, model: nn.Module, tokenizer, image_processor=None, **targets):
        preprocess = None
        if image_processor is not None:

            def preprocess(im):
                return image_processor(images=im, return_tensors="pt")["pixel_values"][0]

        super().__init__(model, tokenizer, preprocess=preprocess, path=HFClipTextPath(model, tokenizer), **targets)

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        if not hasattr(self.model, "get_image_features"):
            raise PezError("this transformers model has no vision tower: give text targets, or a CLIPModel")
        return _features(self.model.get_image_features(pixel_values=pixels.to(self.path.token_embedding.dtype)))
