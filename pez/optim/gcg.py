"""GCG: greedy coordinate gradient (Zou et al., "Universal and Transferable Adversarial Attacks on Aligned Language
Models", 2023, arXiv 2307.15043).

Each step takes the gradient at the current hard prompt, keeps the ``top_k`` allowed tokens per position with the
best first-order score, samples ``search_width`` candidates per prompt (each replacing one random position with
a random token of that position's top-k), drops those whose text does not tokenise back to the same ids, scores
the rest exactly in batched forwards, and moves to the best candidate, even if it is worse than the current
prompt (the shared loop keeps the best prompt seen). A prompt whose candidates are all dropped stays put.

Defaults are the paper's (top-k 256, 512 candidates), sized for a GPU; on a CPU 32 to 128 candidates per step is
more practical.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pez.optim.candidates import CandidateSearch, swap_scores
from pez.optim.config import CandidateConfig, check_positive, config_field


@dataclass
class GCGConfig(CandidateConfig):
    """GCG with the paper's defaults (top-k 256, search width 512)."""

    top_k: int = config_field(256, "tokens per position, by first-order score, that candidates draw from")
    search_width: int = config_field(512, "candidates per prompt per step (512 suits a GPU; use 32-128 on CPU)")

    def __post_init__(self):
        super().__post_init__()
        check_positive(self, "top_k", "search_width")


class GCG(CandidateSearch):
    name = "gcg"
    config_class = GCGConfig

    def sample_candidates(self, ids: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
        """Candidates that each replace one random position with a random token of that position's top-k.

        Args:
            ids: the current prompts, shape (R, L).
            top: candidate tokens per position, shape (R, L, k); never the current token.

        Returns:
            candidates, shape (R, search_width, L), each differing from its prompt in exactly one position.
        """
        (r, length, k), w = top.shape, self.cfg.search_width
        pos = torch.randint(length, (r, w), generator=self.gen, device=self.device)  # (R, W)
        pick = torch.randint(k, (r, w), generator=self.gen, device=self.device)  # (R, W)
        tok = top[torch.arange(r, device=self.device)[:, None], pos, pick]  # (R, W)
        return ids[:, None, :].repeat(1, w, 1).scatter_(2, pos[..., None], tok[..., None])

    def step(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.current_loss()
        grad = self.gradient()  # (R, L, D)
        k = max(1, min(self.cfg.top_k, self.projector.min_allowed - 1))
        top = swap_scores(grad, self.E, self.ids, self.allowed).topk(k, dim=-1).indices  # (R, L, k)
        cand = self.sample_candidates(self.ids, top)  # (R, W, L)
        self.move(cand, self.score_candidates(cand, filtered=True), only_if_better=False)
        return self.ids, self.cur_loss
