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

from pez.optim.candidates import CandidateSearch, swap_scores
from pez.optim.config import CandidateConfig, check_positive, config_field


@dataclass
class AutoPromptConfig(CandidateConfig):
    """AutoPrompt: exact scoring of the top-k first-order candidates at one position per step."""

    candidates: int = config_field(100, "top-k tokens by first-order score tried at the chosen position per step")
    accum_steps: int = config_field(1, "batches whose gradients are summed before choosing candidates")

    def __post_init__(self):
        super().__post_init__()
        check_positive(self, "candidates", "accum_steps")


class AutoPrompt(CandidateSearch):
    name = "autoprompt"
    config_class = AutoPromptConfig

    def step(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        ids, cfg = self.ids, self.cfg
        r, length = ids.shape
        self.current_loss()
        grad = self.gradient(cfg.accum_steps)  # (R, L, D)
        rows = torch.arange(r, device=self.device)
        pos = torch.randint(length, (r,), generator=self.gen, device=self.device)  # (R,)
        allowed = self.allowed[pos, None]  # (R, 1, V): the chosen position's tokens
        scores = swap_scores(grad[rows, pos, None], self.E, ids[rows, pos, None], allowed)[:, 0]  # (R, V)
        k = max(1, min(cfg.candidates, self.projector.min_allowed - 1))
        cand = ids[:, None, :].repeat(1, k, 1)  # (R, k, L)
        cand[rows[:, None], torch.arange(k, device=self.device), pos[:, None]] = scores.topk(k, dim=-1).indices
        self.move(cand, self.score_candidates(cand, filtered=True), only_if_better=True)
        return self.ids, self.cur_loss
