"""HotFlip: first-order token swaps (Ebrahimi et al., "HotFlip: White-Box Adversarial Examples for Text
Classification", ACL 2018, arXiv 1712.06751).

Each step takes the gradient g of the loss at the current hard prompt x and scores every single-token swap by its
first-order effect, -(E[v] - E[x_i]) . g_i, over all positions i and allowed tokens v. With ``candidates=1`` (the
method as published, k = 1) the best-scored swap is applied without any extra forward. With ``candidates=n > 1``
the n best-scored swaps are scored exactly in one batched forward and the best of them is applied, even if it is
worse than the current prompt (the best prompt seen is kept by the shared loop). Candidates are not filtered
for re-tokenisation: the shared loop scores the text of the best prompt honestly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pez.optim.candidates import CandidateSearch, swap_scores
from pez.optim.config import CandidateConfig, check_positive, config_field


@dataclass
class HotFlipConfig(CandidateConfig):
    """HotFlip: apply the best first-order swap each step (k = 1)."""

    candidates: int = config_field(1, "best first-order swaps scored exactly per step (1: apply the best blindly)")

    def __post_init__(self):
        super().__post_init__()
        check_positive(self, "candidates")


class HotFlip(CandidateSearch):
    """HotFlip keeps only the current prompt: the loss of a blindly applied swap is not known until it is scored."""

    name = "hotflip"
    config_class = HotFlipConfig

    def step(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        ids = self.ids
        hard = self.E[ids].float().requires_grad_(True)  # (R, L, D)
        with self.autocast():
            loss, eval_loss = self.obj.loss(hard, self.group, self.cfg.batch_size, self.gen, ids)
        (grad,) = torch.autograd.grad(loss.sum(), hard)
        scores = swap_scores(grad, self.E, ids, self.allowed).flatten(1)  # (R, L * V)
        n = max(1, min(self.cfg.candidates, self.projector.min_allowed - 1))
        top = scores.topk(n, dim=-1).indices  # (R, n), flat index = position * V + token
        pos, tok = top // self.E.shape[0], top % self.E.shape[0]
        cand = ids[:, None, :].repeat(1, n, 1).scatter_(2, pos[..., None], tok[..., None])  # (R, n, L)
        if n == 1:
            self.ids = cand[:, 0]
            return ids, eval_loss
        self.move(cand, self.score_candidates(cand, filtered=False), only_if_better=False)
        return self.ids, self.cur_loss
