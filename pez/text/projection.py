"""The one projection: continuous embeddings to their nearest allowed vocabulary rows by cosine (PEZ, Wen et al.
2023, eq. 1; docs/algorithms.md#the-pez-step).

"Nearest token" means this and only this in pez: the optimisers project with it, and objectives that need the
hard ids of a prompt (fluency) receive them from the optimiser instead of searching again.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Projector:
    """Nearest allowed vocabulary row by cosine similarity (the PEZ projection).

    Args:
        embeddings: E, shape (V, D).
        allowed: boolean mask, shape (V,).
    """

    def __init__(self, embeddings: torch.Tensor, allowed: torch.Tensor):
        self.allowed_ids = allowed.nonzero().squeeze(1).to(embeddings.device)  # (A,)
        self.normed = F.normalize(embeddings.detach()[self.allowed_ids].float(), dim=-1)  # (A, D)

    @torch.no_grad()
    def __call__(self, soft: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
        """Project soft embeddings of shape (..., D) to token ids of shape (...).

        Queries go in chunks of ``chunk`` rows so the (rows, A) similarity matrix stays small.
        """
        q = F.normalize(soft.float(), dim=-1).reshape(-1, soft.shape[-1])  # (N, D)
        best = [(part @ self.normed.T).argmax(-1) for part in q.split(chunk)]  # (n, A) -> (n,)
        return self.allowed_ids[torch.cat(best)].reshape(soft.shape[:-1])
