"""PEZ: hard prompts made easy (Wen et al., "Hard Prompts Made Easy: Gradient-Based Discrete Optimization for
Prompt Tuning and Discovery", NeurIPS 2023, arXiv 2302.03668).

Keep a continuous prompt P (R, L, D). Each step: project P to its nearest allowed vocabulary rows (cosine), take
the gradient of the loss at the projected hard prompt H = E[ids], and apply it to P with AdamW.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pez.optim.config import OptimizerConfig, check_adamw, config_field
from pez.optim.loop import PromptOptimizer


@dataclass
class PEZConfig(OptimizerConfig):
    """PEZ with the official defaults (16 tokens, 3000 steps, AdamW lr 0.1, weight decay 0.1)."""

    lr: float = config_field(0.1, "AdamW learning rate on the continuous prompt")
    weight_decay: float = config_field(0.1, "AdamW weight decay")

    def __post_init__(self):
        super().__post_init__()
        check_adamw(self)


class PEZ(PromptOptimizer):
    name = "pez"
    config_class = PEZConfig

    def init(self, ids: torch.Tensor) -> None:
        self.soft = self.E[ids].float().clone().requires_grad_(True)  # (R, L, D), fp32 on any device
        self.opt = torch.optim.AdamW([self.soft], lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)

    def step(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        ids = self.projector(self.soft)  # (R, L)
        hard = self.E[ids].float().requires_grad_(True)  # (R, L, D)
        with self.autocast():
            loss, eval_loss = self.obj.loss(hard, self.group, self.cfg.batch_size, self.gen, ids)
        # straight-through: the gradient at the projected point is applied to the continuous prompt
        (self.soft.grad,) = torch.autograd.grad(loss.sum(), hard)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return ids, eval_loss

    def state_dict(self) -> dict:
        return {"soft": self.soft.detach(), "adamw": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.soft.copy_(state["soft"])
        self.opt.load_state_dict(state["adamw"])
