"""Soft prompt: the PEZ loop without projection (prompt tuning, Lester et al., "The Power of Scale for
Parameter-Efficient Prompt Tuning", EMNLP 2021, arXiv 2104.08691).

The continuous prompt P (R, L, D) itself is optimised with AdamW, its loss taken at P: an upper bound that only
the model it was tuned on can use. What the shared loop tracks (and returns as ``ids``/``text``/``score``) is
the nearest-token projection of P, scored exactly every step; the best score of P itself goes to the result's
``extras["continuous_score"]``, and the best P to :attr:`SoftPrompt.best_soft`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pez.optim.config import OptimizerConfig, check_adamw, config_field
from pez.optim.loop import PromptOptimizer


@dataclass
class SoftConfig(OptimizerConfig):
    """Soft prompt tuning with AdamW (lr 0.01: the continuous prompt is scored as it is, so the step size
    matters relative to the embedding scale, unlike for PEZ)."""

    lr: float = config_field(0.01, "AdamW learning rate on the continuous prompt")
    weight_decay: float = config_field(0.0, "AdamW weight decay")

    def __post_init__(self):
        super().__post_init__()
        check_adamw(self)


class SoftPrompt(PromptOptimizer):
    name = "soft"
    config_class = SoftConfig

    def init(self, ids: torch.Tensor) -> None:
        self.soft = self.E[ids].float().clone().requires_grad_(True)  # (R, L, D), fp32 on any device
        self.opt = torch.optim.AdamW([self.soft], lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        self.best_soft = self.soft.detach().clone()  # (R, L, D), the best continuous prompt seen
        self.best_cont = torch.full((len(ids),), torch.inf, device=self.device)  # (R,), its eval loss

    def step(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        r = self.n_prompts
        ids = self.projector(self.soft)  # (R, L)
        with self.autocast():
            loss, cont = self.obj.loss(self.soft, self.group, self.cfg.batch_size, self.gen, ids)
        with torch.no_grad(), self.autocast():
            if cont is None:  # the gradient saw a sample: score P and its projection in one forward
                both = torch.cat([self.soft.detach(), self.E[ids].float()])  # (2R, L, D)
                cont, hard = self.obj.eval_loss(both, self.group.repeat(2), ids.repeat(2, 1)).float().split(r)
            else:
                hard = self.obj.eval_loss(self.E[ids], self.group, ids).float()
        improved = cont.float() < self.best_cont
        self.best_cont = torch.where(improved, cont.float(), self.best_cont)
        self.best_soft = torch.where(improved[:, None, None], self.soft.detach(), self.best_soft)
        (self.soft.grad,) = torch.autograd.grad(loss.sum(), self.soft)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return ids, hard

    def result_extras(self, group: int) -> dict:
        mine = [c for c, g in zip(self.best_cont.tolist(), self.group.tolist()) if g == group]
        return {"continuous_score": -min(mine)}

    def state_dict(self) -> dict:
        return {
            "soft": self.soft.detach(),
            "adamw": self.opt.state_dict(),
            "best_soft": self.best_soft,
            "best_cont": self.best_cont,
        }

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.soft.copy_(state["soft"])
        self.opt.load_state_dict(state["adamw"])
        self.best_soft = state["best_soft"].to(self.device)
        self.best_cont = state["best_cont"].to(self.device)
