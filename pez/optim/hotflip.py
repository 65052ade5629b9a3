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

from pez.errors import PezError
from pez.optim.base import CandidateConfig, PromptOptimizer, config_field, swap_scores


@dataclass
class HotFlipConfig(CandidateConfig):
    """HotFlip: apply the best first-order swap each step (k = 1)."""

    candidates: int = config_field(1, "best first-order swaps scored exactly per step (1: apply the best blindly)")

    def __post_init__(self):
        super().__post_init__()
        if self.candidates <= 0:
            raise PezError(f"candidates must be positive, got {self.candidates}")


class HotFlip(PromptOptimizer):
    name = "hotflip"
    config_class = HotFlipConfig

    def init(self, ids: torch.Tensor) -> None:
        self.ids = ids.clone()  # (R, L), the current prompt

    def step(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        ids = self.ids
        hard = self.E[ids].float().requires_grad_(True)  # (R, L, D)
        with self.autocast():
            loss, eval_loss = self.obj.loss(hard, self.group, self.cfg.batch_size, self.gen)
        (grad,) = torch.autograd.grad(loss.sum(), hard)
        r, length = ids.shape
        scores = swap_scores(grad, self.E, ids, self.allowed).flatten(1)  # (R, L * V)
        n = max(1, min(self.cfg.candidates, len(self.projector.allowed_ids) - 1))
        top = scores.topk(n, dim=-1).indices  # (R, n), flat index = position * V + token
        pos, tok = top // self.E.shape[0], top % self.E.shape[0]
        cand = ids[:, None, :].repeat(1, top.shape[1], 1)  # (R, n, L)
        cand.scatter_(2, pos[..., None], tok[..., None])
        if top.shape[1] == 1:
            self.ids = cand[:, 0]
            return ids, eval_loss
        losses = self.candidate_losses(cand.reshape(-1, length), self.group.repeat_interleave(top.shape[1]))
        best_loss, best = losses.view(r, -1).min(-1)  # (R,)
        self.ids = cand[torch.arange(r, device=self.device), best]
        return self.ids, best_loss

    def state_dict(self) -> dict:
        return {"ids": self.ids}

    def load_state_dict(self, state: dict) -> None:
        self.ids = state["ids"].to(self.device)
