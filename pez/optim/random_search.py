"""Random search: the sanity floor that every gradient method has to beat.

Each step draws ``candidates`` prompts per current prompt, each with ``positions`` random positions set to random
allowed tokens (``positions = prompt_len``: fully random prompts), scores them exactly in batched forwards and
keeps the best if it beats the current prompt. No gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pez.errors import PezError
from pez.optim.candidates import CandidateSearch
from pez.optim.config import CandidateConfig, check_positive, config_field


@dataclass
class RandomConfig(CandidateConfig):
    """Random local search: change one random position per candidate, keep the best."""

    candidates: int = config_field(64, "random candidates per prompt per step")
    positions: int = config_field(1, "positions redrawn in each candidate (prompt-len: fully random prompts)")

    def __post_init__(self):
        super().__post_init__()
        check_positive(self, "candidates")
        if not 0 < self.positions <= self.prompt_len:
            raise PezError(f"positions must be between 1 and prompt-len ({self.prompt_len}), got {self.positions}")


class RandomSearch(CandidateSearch):
    name = "random"
    config_class = RandomConfig

    def step(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        ids, cfg = self.ids, self.cfg
        (r, length), w = ids.shape, cfg.candidates
        self.current_loss()
        pos = torch.rand((r, w, length), generator=self.gen, device=self.device).argsort(-1)[..., : cfg.positions]
        tok = self.projector.sample(pos.shape, pos, self.gen)  # (R, W, m)
        cand = ids[:, None, :].repeat(1, w, 1).scatter_(2, pos, tok)  # (R, W, L)
        self.move(cand, self.score_candidates(cand, filtered=False), only_if_better=True)
        return self.ids, self.cur_loss
