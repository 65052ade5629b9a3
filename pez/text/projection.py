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
        # one (ids, normalised rows, positions) per distinct mask; positions None: every position (one mask).
        # Positions are index tensors made once, on the device, so projecting never copies from the host.
        self.sets = []
        self.shortlists = {}  # on CUDA: bf16 copies of the normalised rows, for a shortlist re-ranked in fp32
        for k, mask in enumerate(masks):
            ids = mask.nonzero().squeeze(1)  # (A_k,)
            normed = F.normalize(embeddings.detach()[ids].float(), dim=-1)  # (A_k, D)
            positions = (where == k).nonzero().squeeze(1) if len(masks) > 1 else None  # (P_k,)
            self.sets.append((ids, normed, positions))
            if normed.is_cuda and len(ids) > self.SHORTLIST:
                # rows padded to a multiple of 64 (repeating the first ones) keep the matmul on fast kernels
                pad = -len(ids) % 64
                self.shortlists[id(normed)] = torch.cat([normed, normed[:pad]]).bfloat16()
        self.min_allowed = min(len(ids) for ids, _, _ in self.sets)

    SHORTLIST = 16  # on CUDA: candidates from a bf16 search, re-ranked by their exact fp32 cosine

    @torch.no_grad()
    def __call__(self, soft: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
        """Project soft embeddings of shape (..., L, D) (positions 0..L-1) to token ids of shape (..., L).

        Queries go in chunks of ``chunk`` rows so the (rows, A) similarity matrix stays small.
        """
        if len(self.sets) == 1:
            return self._nearest(soft, *self.sets[0][:2], chunk)
        out = torch.empty(soft.shape[:-1], dtype=torch.long, device=soft.device)
        length = soft.shape[-2]
        for ids, normed, positions in self.sets:
            positions = positions[positions < length] if length < self.length else positions
            out[..., positions] = self._nearest(soft[..., positions, :], ids, normed, chunk)
        return out

    @property
    def length(self) -> int:
        return sum(len(p) for _, _, p in self.sets) if len(self.sets) > 1 else 0

    def _nearest(self, soft: torch.Tensor, ids: torch.Tensor, normed: torch.Tensor, chunk: int) -> torch.Tensor:
        q = F.normalize(soft.float(), dim=-1).reshape(-1, soft.shape[-1])  # (N, D)
        half = self.shortlists.get(id(normed))
        if half is None:
            best = [(c @ normed.T).argmax(-1) for c in q.split(chunk)]  # (n, A) -> (n,)
        else:  # a bf16 matmul finds a shortlist; the exact fp32 cosines of the shortlist pick the nearest
            best = []
            for c in q.split(chunk):
                cand = (c.bfloat16() @ half.T).topk(self.SHORTLIST, dim=-1).indices % len(ids)  # (n, K)
                exact = torch.einsum("nd,nkd->nk", c, normed[cand])  # (n, K)
                best.append(cand.gather(1, exact.argmax(-1, keepdim=True)).squeeze(1))
        return ids[torch.cat(best)].reshape(soft.shape[:-1])

    def sample(self, shape: tuple[int, ...], positions: torch.Tensor | None, generator: torch.Generator):
        """Random allowed tokens of shape ``shape``; ``positions`` (same shape) gives the prompt position of each
        (None: the last axis of ``shape`` is the prompt positions 0..L-1)."""
        out = None
        for ids, _, pos in self.sets:
            pick = ids[torch.randint(len(ids), shape, generator=generator, device=generator.device)]
            if out is None:
                out = pick
                continue
            if positions is None:
                positions = torch.arange(shape[-1], device=generator.device).expand(shape)
            out = torch.where(torch.isin(positions, pos), pick, out)
        return out
