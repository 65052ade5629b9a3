"""AutoPrompt (Shin et al., "AutoPrompt: Eliciting Knowledge from Language Models with Automatically Generated
Prompts", EMNLP 2020, arXiv 2010.15980).

Each step sums the gradient of the loss at the current hard prompt over ``accum_steps`` batches, picks one
position per prompt at random (as the official code does), takes the ``candidates`` allowed tokens with the best
first-order score -E[v] . g_i there, scores them exactly in batched forwards, and accepts the best only if it beats
the current prompt's eval loss, so the current prompt never gets worse. Candidates whose text does not tokenise
back to the same ids are dropped.

Defaults: 100 candidates (the paper's larger setting; its code defaults to 10) and one batch per gradient, since
pez's ``batch_size`` already sets how many targets a gradient sees; the paper accumulated up to 30 batches of 24
examples on LM tasks, which ``accum_steps`` and ``batch_size`` reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pez.errors import PezError
from pez.optim.base import CandidateConfig, PromptOptimizer, config_field, survives_retokenization, swap_scores


@dataclass
class AutoPromptConfig(CandidateConfig):
    """AutoPrompt: exact scoring of the top-k first-order candidates at one position per step."""

    candidates: int = config_field(100, "top-k tokens by first-order score tried at the chosen position per step")
    accum_steps: int = config_field(1, "batches whose gradients are summed before choosing candidates")

    def __post_init__(self):
        super().__post_init__()
        for name in ("candidates", "accum_steps"):
            if getattr(self, name) <= 0:
                raise PezError(f"{name.replace('_', '-')} must be positive, got {getattr(self, name)}")


class AutoPrompt(PromptOptimizer):
    name = "autoprompt"
    config_class = AutoPromptConfig

    def init(self, ids: torch.Tensor) -> None:
        self.ids = ids.clone()  # (R, L), the current prompt
        self.cur_loss: torch.Tensor | None = None  # (R,), its eval loss, computed on the first step

    def step(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        ids, cfg = self.ids, self.cfg
        r, length = ids.shape
        if self.cur_loss is None:
            self.cur_loss = self.candidate_losses(ids, self.group)
        hard = self.E[ids].float().requires_grad_(True)  # (R, L, D)
        grad = torch.zeros_like(hard)
        for _ in range(cfg.accum_steps):
            with self.autocast():
                loss, _ = self.obj.loss(hard, self.group, cfg.batch_size, self.gen)
            grad += torch.autograd.grad(loss.sum(), hard)[0]
        rows = torch.arange(r, device=self.device)
        pos = torch.randint(length, (r,), generator=self.gen, device=self.device)  # (R,)
        scores = swap_scores(grad[rows, pos, None], self.E, ids[rows, pos, None], self.allowed)[:, 0]  # (R, V)
        k = max(1, min(cfg.candidates, len(self.projector.allowed_ids) - 1))
        cand = ids[:, None, :].repeat(1, k, 1)  # (R, k, L)
        cand[rows[:, None], torch.arange(k, device=self.device), pos[:, None]] = scores.topk(k, dim=-1).indices
        flat = cand.reshape(-1, length)  # (R * k, L)
        ok = survives_retokenization(self.obj.vocab, flat)
        losses = torch.full((len(flat),), torch.inf, device=self.device)
        losses[ok] = self.candidate_losses(flat[ok], self.group.repeat_interleave(k)[ok])
        best_loss, best = losses.view(r, k).min(-1)  # (R,)
        accept = best_loss < self.cur_loss
        self.ids = torch.where(accept[:, None], cand[rows, best], ids)
        self.cur_loss = torch.where(accept, best_loss, self.cur_loss)
        return self.ids, self.cur_loss

    def state_dict(self) -> dict:
        return {"ids": self.ids, "cur_loss": self.cur_loss}

    def load_state_dict(self, state: dict) -> None:
        self.ids = state["ids"].to(self.device)
        self.cur_loss = None if state["cur_loss"] is None else state["cur_loss"].to(self.device)
