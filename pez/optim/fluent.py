"""FluentPrompt: projected Langevin dynamics (Shi et al., "Toward Human Readable Prompt Tuning: Kubrick's The
Shining is a good movie, and a good prompt too?", 2022, arXiv 2212.10539).

The PEZ step (gradient at the projected hard prompt applied to the continuous prompt) followed by Langevin noise:
after each update the continuous prompt gets ``sqrt(2 * lr * beta_t) * z``, z ~ N(0, 1), with the temperature
beta_t decaying geometrically from ``beta_start`` to ``beta_end`` as the run goes (by steps, or by the share of a
seconds or passes budget used, whichever is further). The paper's fluency term (the prompt's own NLL) belongs to
the objective: LM objectives take a ``fluency`` weight; embedding objectives have none. Since the schedule follows
the run's ``steps``, resuming a checkpoint with another ``steps`` changes the temperatures from there on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pez.errors import PezError
from pez.optim.config import config_field
from pez.optim.pez import PEZ, PEZConfig


@dataclass
class FluentConfig(PEZConfig):
    """FluentPrompt: PEZ's AdamW update (lr 0.1, weight decay 0.1) plus noise with beta from 1 down to 1e-4."""

    beta_start: float = config_field(1.0, "Langevin temperature at the start of the run")
    beta_end: float = config_field(1e-4, "Langevin temperature at the end of the run (geometric decay)")

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.beta_end <= self.beta_start:
            raise PezError(f"need 0 < beta-end <= beta-start, got {self.beta_end} and {self.beta_start}")


class FluentPrompt(PEZ):
    name = "fluent"
    config_class = FluentConfig

    def beta(self, progress: float) -> float:
        """Temperature after a share ``progress`` (0 to 1) of the run: beta_start * (beta_end / beta_start)^progress."""
        cfg = self.cfg
        return cfg.beta_start * (cfg.beta_end / cfg.beta_start) ** progress

    def noise(self, progress: float) -> torch.Tensor:
        """Langevin noise sqrt(2 * lr * beta) * z for the continuous prompt, shape (R, L, D)."""
        z = torch.randn(self.soft.shape, generator=self.gen, device=self.device)
        return math.sqrt(2 * self.cfg.lr * self.beta(progress)) * z

    def step(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        ids, eval_loss = super().step(step)
        with torch.no_grad():
            self.soft.add_(self.noise(self.run_fraction))
        return ids, eval_loss
