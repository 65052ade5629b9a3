"""The one projection: continuous embeddings to their nearest allowed vocabulary rows by cosine (PEZ, Wen et al.
2023, eq. 1; docs/algorithms.md#the-pez-step).

"Nearest token" means this and only this in pez: the optimisers project with it, and objectives that need the
hard ids of a prompt (fluency) receive them from the optimiser instead of searching again.

Where bf16 matrix products are fast (CUDA; CPUs with AVX512-BF16 or AMX) a bf16 search finds a shortlist that
fp32 cosines re-rank. On CPU the result is checked to be the fp32 nearest row: a bf16 score is within
``BF16_ERROR`` of the fp32 cosine, so a row whose best fp32 cosine beats the last shortlisted bf16 score by more
than that has its nearest token in the shortlist; the rows that fail the check are searched again in fp32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Projector:
    """Nearest allowed vocabulary row by cosine similarity (the PEZ projection), per prompt position.

    Args:
        embeddings: E, shape (V, D).
        allowed: boolean mask, shape (V,) (every position alike) or (L, V) (one mask per position).
        bf16: search a bf16 shortlist first; None: where bf16 products are fast (:func:`fast_bf16`).
    """

    SHORTLIST = 32  # candidates from the bf16 search, re-ranked by their exact fp32 cosine
    # how far a bf16 score of unit rows can be from their fp32 cosine: both inputs rounded to bf16 (2 x 2^-8,
    # relative, and |q||e| = 1 bounds the sum of |q_i e_i|), the product rounded to bf16 (2^-8), with room for
    # the fp32 accumulation
    BF16_ERROR = 3 * 2**-8 + 2**-12

    def __init__(self, embeddings: torch.Tensor, allowed: torch.Tensor, bf16: bool | None = None):
        allowed = allowed.to(embeddings.device)
        if allowed.ndim == 1:
            allowed = allowed[None]
        masks, where = torch.unique(allowed, dim=0, return_inverse=True)
        # one (ids, normalised rows, positions) per distinct mask; positions None: every position (one mask).
        # Positions are index tensors made once, on the device, so projecting never copies from the host.
        self.sets = []
        self.shortlists = {}  # bf16 copies of the normalised rows, for a shortlist re-ranked in fp32
        bf16 = fast_bf16(embeddings.device) if bf16 is None else bf16
        self.rechecked = 0  # CPU rows whose shortlist could not be shown to hold the nearest row (searched in fp32)
        for k, mask in enumerate(masks):
            ids = mask.nonzero().squeeze(1)  # (A_k,)
            normed = F.normalize(embeddings.detach()[ids].float(), dim=-1)  # (A_k, D)
            positions = (where == k).nonzero().squeeze(1) if len(masks) > 1 else None  # (P_k,)
            self.sets.append((ids, normed, positions))
            if bf16 and len(ids) > self.SHORTLIST:
                # on CUDA, rows padded to a multiple of 64 (repeating the first ones) keep the matmul on fast kernels
                pad = -len(ids) % 64 if normed.is_cuda else 0
                self.shortlists[id(normed)] = torch.cat([normed, normed[:pad]]).bfloat16()
        self.min_allowed = min(len(ids) for ids, _, _ in self.sets)

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
        else:
            best = [self._shortlisted(c, normed, half) for c in q.split(chunk)]
        return ids[torch.cat(best)].reshape(soft.shape[:-1])

    def _shortlisted(self, q: torch.Tensor, normed: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
        """A bf16 matmul finds a shortlist; the exact fp32 cosines of the shortlist pick the nearest (n, D) -> (n,).

        On CPU each row is checked (see the module's docstring) and those that fail are searched in fp32; on CUDA
        the step stays free of host syncs (a captured graph cannot branch), and the GPU test checks the result.
        """
        top, cand = (q.bfloat16() @ half.T).topk(self.SHORTLIST, dim=-1)  # (n, K)
        cand %= len(normed)
        exact = torch.einsum("nd,nkd->nk", q, normed[cand])  # (n, K)
        score, pick = exact.max(-1)
        best = cand.gather(1, pick[:, None]).squeeze(1)
        if q.is_cuda:
            return best
        unsure = (score <= top[:, -1].float() + self.BF16_ERROR).nonzero().squeeze(1)
        if len(unsure):
            self.rechecked += len(unsure)
            best[unsure] = (q[unsure] @ normed.T).argmax(-1)
        return best

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


def fast_bf16(device: torch.device) -> bool:
    """Whether bf16 matrix products run faster than fp32 ones on ``device``: CUDA, or a CPU with AVX512-BF16 or
    AMX (what oneDNN's bf16 kernels use; elsewhere bf16 is emulated and slower)."""
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    cpu = torch.cpu
    return any(getattr(cpu, name, lambda: False)() for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
