"""Sentence-transformers objective: distil text targets into a short hard prompt under a sentence encoder.

The prompt's embeddings go through the model's own modules (``SentenceTransformer.forward`` with
``inputs_embeds``), so its own pooling and normalisation apply.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pez.errors import PezError
from pez.objectives.base import EmbeddingObjective, target_weights, warn_if_cut
from pez.text.tokenizers import HFTokenizer
from pez.text.vocab import Vocabulary


class SentenceObjective(EmbeddingObjective):
    """Match sentence-embedding targets (and move away from negative ones).

    Args:
        model: a ``sentence_transformers.SentenceTransformer`` with a text transformer as first module.
        texts: target texts.
        negative_texts: texts to move away from.
        negative_weight: weight of each negative target relative to a positive one.
        model_name: how the model is named in results.
    """

    def __init__(
        self,
        model,
        texts: Sequence[str] = (),
        negative_texts: Sequence[str] = (),
        negative_weight: float = 1.0,
        model_name: str | None = None,
        images: Sequence = (),
        negative_images: Sequence = (),
    ):
        if len(images) or len(negative_images):
            raise PezError("a sentence-transformers model cannot take image targets: use a CLIP model for images")
        if not len(texts):
            raise PezError("no targets given: pass at least one --text")
        self.model = model
        self.hf = model[0].auto_model
        self.tok = HFTokenizer(model.tokenizer)
        limit = min(model.max_seq_length or 10**9, getattr(self.hf.config, "max_position_embeddings", 10**9))
        max_len = limit - len(self.tok.prefix_ids) - len(self.tok.suffix_ids)
        self.vocab = vocab = Vocabulary(self.tok, self.hf.get_input_embeddings().weight, max_len)
        warn_if_cut([len(self.tok.encode(t)) for t in [*texts, *negative_texts]], max_len, limit)
        device = vocab.embeddings.device
        self._prefix = torch.tensor(self.tok.prefix_ids, dtype=torch.long, device=device)  # e.g. [CLS]
        self._suffix = torch.tensor(self.tok.suffix_ids, dtype=torch.long, device=device)  # e.g. [SEP]
        with torch.no_grad():
            pos = self.encode_ids([self.tok.encode(t) for t in texts])
            neg = self.encode_ids([self.tok.encode(t) for t in negative_texts]) if len(negative_texts) else None
        feats = pos if neg is None else torch.cat([pos, neg])
        info = {
            "kind": "sentence",
            "model": model_name or "sentence-transformers",
            "targets": [f"text:{t}" for t in texts] + [f"text:{t}" for t in negative_texts],
            "negatives": len(negative_texts),
            "negative_weight": negative_weight,
        }
        super().__init__(vocab, feats, target_weights(len(texts), len(negative_texts), negative_weight), info)

    def _forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model({"inputs_embeds": x, "attention_mask": mask})["sentence_embedding"]

    def encode_embeds(self, embeds):
        r = embeds.shape[0]
        w = self.vocab.embeddings
        pre, suf = w[self._prefix].expand(r, -1, -1), w[self._suffix].expand(r, -1, -1)
        x = torch.cat([pre, embeds.to(w.dtype), suf], dim=1)  # (R, S, D)
        mask = torch.ones(x.shape[:2], dtype=torch.long, device=x.device)
        return self._forward(x, mask)

    def encode_ids(self, ids):
        ids = [self.tok.prefix_ids + list(i)[: self.vocab.max_len] + self.tok.suffix_ids for i in ids]
        s = max(len(i) for i in ids)
        pad = self.tok.tok.pad_token_id or 0
        device = self.vocab.embeddings.device
        t = torch.tensor([i + [pad] * (s - len(i)) for i in ids], device=device)
        mask = torch.tensor([[1] * len(i) + [0] * (s - len(i)) for i in ids], device=device)
        return self._forward(self.hf.get_input_embeddings()(t), mask)
