"""Random search: the sanity floor that every gradient method has to beat.

Each step draws ``candidates`` prompts per current prompt, each with ``positions`` random positions set to random
allowed tokens (``positions = prompt_len``: fully random prompts), scores them exactly in batched forwards and
keeps the best if it beats the current prompt. No gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pez.errors import PezError
from pez.optim.base import CandidateConfig, PromptOptimizer, config_field


@dataclass
class RandomConfig(CandidateConfig):
    """Random local search: change one random position per candidate, keep the best."""

    candidates: int = config_field(64, "random candidates per prompt per step")
    positions: int = config_field(1, "positions redrawn in each candidate (prompt-len: fully random prompts)")

    def __post_init__(self):
        super().__post_init__()
        if self.candidates <= 0:
            raise PezError(f"candidates must be positive, got {self.candidates}")
        if not 0 < self.positions <= self.prompt_len:
            raise PezError(f"positions must be between 1 and prompt-len ({self.prompt_len}), got {self.positions}")


class RandomSearch(PromptOptimizer):
    name = "random"
    config_class = RandomConfig

    def init(self, ids: torch.Tensor) -> None:
        self.ids = ids.clone()  # (R, L), the current prompt
        self.cur_loss: torch.Tensor | None = None  # (R,), its eval loss, computed on the first step

    def step(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        ids, cfg = self.ids, self.cfg
        (r, length), w = ids.shape, cfg.candidates
        if self.cur_loss is None:
            self.cur_loss = self.candidate_losses(ids, self.group)
        allowed = self.projector.allowed_ids
        pos = torch.rand((r, w, length), generator=self.gen, device=self.device).argsort(-1)[..., : cfg.positions]
        tok = allowed[torch.randint(len(allowed), pos.shape, generator=self.gen, device=self.device)]  # (R, W, m)
        cand = ids[:, None, :].repeat(1, w, 1).scatter_(2, pos, tok)  # (R, W, L)
        losses = self.candidate_losses(cand.reshape(-1, length), self.group.repeat_interleave(w)).view(r, w)
        best_loss, best = losses.min(-1)  # (R,)
        accept = best_loss < self.cur_loss
        self.ids = torch.where(accept[:, None], cand[torch.arange(r, device=self.device), best], ids)
        self.cur_loss = torch.where(accept, best_loss, self.cur_loss)
        return self.ids, self.cur_loss

    def state_dict(self) -> dict:
        return {"ids": self.ids, "cur_loss": self.cur_loss}

    def load_state_dict(self, state: dict) -> None:
        self.ids = state["ids"].to(self.device)
        self.cur_loss = None if state["cur_loss"] is None else state["cur_loss"].to(self.device)
