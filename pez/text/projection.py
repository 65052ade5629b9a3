"""The one projection: continuous embeddings to their nearest allowed vocabulary rows by cosine (PEZ, Wen et al.
2023, eq. 1; docs/algorithms.md#the-pez-step).

"Nearest token" means this and only this in pez: the optimisers project with it, and objectives that need the
hard ids of a prompt (fluency) receive them from the optimiser instead of searching again.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Projector:
    """Nearest allowed vocabulary row by cosine similarity (the PEZ projection), per prompt position.

    Args:
        embeddings: E, shape (V, D).
        allowed: boolean mask, shape (V,) (every position alike) or (L, V) (one mask per position).
    """

    def __init__(self, embeddings: torch.Tensor, allowed: torch.Tensor):
        allowed = allowed.to(embeddings.device)
        if allowed.ndim == 1:
            allowed = allowed[None]
        masks, where = torch.unique(allowed, dim=0, return_inverse=True)
        self.length = allowed.shape[0] if len(masks) > 1 else None  # None: one mask, for prompts of any length
        # one (ids, normalised rows) per distinct mask, and the positions that use it
        self.sets = []
        for k, mask in enumerate(masks):
            ids = mask.nonzero().squeeze(1)  # (A_k,)
            normed = F.normalize(embeddings.detach()[ids].float(), dim=-1)  # (A_k, D)
            self.sets.append((ids, normed, (where == k).nonzero().squeeze(1).tolist()))
        self.min_allowed = min(len(ids) for ids, _, _ in self.sets)

    def _positions(self, n: int) -> list[list[int]]:
        """Per distinct mask, the positions among 0..n-1 that use it."""
        if self.length is None:
            return [list(range(n))]
        return [[p for p in positions if p < n] for _, _, positions in self.sets]

    @torch.no_grad()
    def __call__(self, soft: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
        """Project soft embeddings of shape (..., L, D) (positions 0..L-1) to token ids of shape (..., L).

        Queries go in chunks of ``chunk`` rows so the (rows, A) similarity matrix stays small.
        """
        out = torch.empty(soft.shape[:-1], dtype=torch.long, device=soft.device)
        for (ids, normed, _), positions in zip(self.sets, self._positions(soft.shape[-2])):
            if not positions:
                continue
            part = soft[..., positions, :]
            q = F.normalize(part.float(), dim=-1).reshape(-1, soft.shape[-1])  # (N, D)
            best = [(c @ normed.T).argmax(-1) for c in q.split(chunk)]  # (n, A) -> (n,)
            out[..., positions] = ids[torch.cat(best)].reshape(part.shape[:-1])
        return out

    def sample(self, shape: tuple[int, ...], positions: torch.Tensor | None, generator: torch.Generator):
        """Random allowed tokens: shape ``shape``; ``positions`` (same shape) says the prompt position of each
        (None: shape ends with the prompt positions 0..L-1)."""
        if positions is None:
            positions = torch.arange(shape[-1], device=generator.device).expand(shape)
        out = None
        for ids, _, pos in self.sets:
            pick = ids[torch.randint(len(ids), shape, generator=generator, device=generator.device)]
            if out is None:
                out = pick
            else:
                use = torch.isin(positions, torch.tensor(pos, device=positions.device))
                out = torch.where(use, pick, out)
        return out
