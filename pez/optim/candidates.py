"""What the discrete methods share (HotFlip, AutoPrompt, GCG, random search; docs/algorithms.md#baselines).

- :func:`swap_scores`: the first-order score of every single-token swap.
- :func:`survives_retokenization`: whether a candidate's text tokenises back to its ids.
- :class:`CandidateSearch`: a current hard prompt per restart with its eval loss, candidates scored exactly in
  batched forwards (chunked, the chunk halved on CUDA out-of-memory), filtered for re-tokenisation on request,
  and the move to the best candidate.
"""

from __future__ import annotations

import logging
import math

import torch

from pez.optim.loop import PromptOptimizer

log = logging.getLogger(__name__)


def swap_scores(grad: torch.Tensor, E: torch.Tensor, ids: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """First-order estimate of how much each single-token swap lowers the loss (HotFlip): -(E[v] - E[x_i]) . g_i.

    Args:
        grad: dLoss/dE[ids] at the current prompt, shape (R, L, D).
        E: the embedding matrix, shape (V, D).
        ids: the current prompt, shape (R, L).
        allowed: tokens each position may use, shape (L, V) (or (R, L, V), or (V,) for every position).

    Returns:
        scores, shape (R, L, V), higher is better; -inf for tokens not allowed and for the current token.
    """
    g = grad.float()
    scores = -(g @ E.float().T)  # (R, L, V)
    scores += (g * E[ids].float()).sum(-1, keepdim=True)  # + E[x_i] . g_i: the swap's baseline
    scores.masked_fill_(~allowed, -math.inf)
    return scores.scatter_(-1, ids[..., None], -math.inf)


def survives_retokenization(vocab, ids: torch.Tensor) -> torch.Tensor:
    """Whether each prompt's decoded text tokenises back to the same ids where it sits, shape (N,) bool (one host
    sync).

    Args:
        vocab: a :class:`pez.text.vocab.Vocabulary`.
        ids: prompts, shape (N, L).
    """
    same = [vocab.encode(vocab.decode(row)) == row for row in ids.tolist()]
    return torch.tensor(same, dtype=torch.bool, device=ids.device)


class CandidateSearch(PromptOptimizer):
    """A method whose state is the current hard prompt ``ids`` (R, L) and its eval loss ``cur_loss`` (R,)."""

    def init(self, ids: torch.Tensor) -> None:
        self.ids = ids.clone()  # (R, L), the current prompt
        self.cur_loss: torch.Tensor | None = None  # (R,), its eval loss, computed on the first step
        self._chunk_cap = math.inf  # candidates per forward, lowered on CUDA out-of-memory

    def current_loss(self) -> torch.Tensor:
        """The current prompts' eval loss (R,), computed once on the first step."""
        if self.cur_loss is None:
            self.cur_loss = self.candidate_losses(self.ids, self.group)
        return self.cur_loss

    def gradient(self, accum_steps: int = 1) -> torch.Tensor:
        """dLoss/dE[ids] at the current prompts, summed over ``accum_steps`` sampled batches, shape (R, L, D)."""
        hard = self.E[self.ids].float().requires_grad_(True)  # (R, L, D)
        grad = torch.zeros_like(hard)
        for _ in range(accum_steps):
            with self.autocast():
                loss, _ = self.obj.loss(hard, self.group, self.cfg.batch_size, self.gen, self.ids)
            grad += torch.autograd.grad(loss.sum(), hard)[0]
        return grad

    @torch.no_grad()
    def candidate_losses(self, ids: torch.Tensor, group: torch.Tensor, index=None) -> torch.Tensor:
        """Eval loss of candidate prompts, in batched forwards of at most ``eval_chunk`` prompts.

        On CUDA out-of-memory the chunk is halved for the rest of the run (the failed forward stays counted).

        Args:
            ids: candidate prompts, shape (N, L).
            group: the group of each candidate, shape (N,).
            index: an LM objective's dev examples to score on (a screening pass), or None: all of them.

        Returns:
            their loss on all evaluation targets, shape (N,).
        """
        out, start = [], 0
        while start < len(ids):
            part = ids[start : start + min(self.cfg.eval_chunk, self._chunk_cap)]  # (n, L)
            try:
                with self.autocast():
                    subset = {} if index is None else {"index": index}
                    loss = self.obj.eval_loss(self.E[part], group[start : start + len(part)], part, **subset)
                    out.append(loss.float())
            except torch.OutOfMemoryError:
                if len(part) == 1:
                    raise
                self._chunk_cap = len(part) // 2
                torch.cuda.empty_cache()
                log.warning("out of memory scoring candidates: %d per forward from now on", self._chunk_cap)
                continue
            start += len(part)
        return torch.cat(out) if out else torch.zeros(0, device=self.device)

    def score_candidates(self, cand: torch.Tensor, filtered: bool, index=None) -> torch.Tensor:
        """Eval loss of candidates (R, W, L) -> (R, W) (on dev examples ``index`` only, when given); with
        ``filtered``, inf for those whose text does not tokenise back to their ids (they are never scored)."""
        r, w, length = cand.shape
        flat = cand.reshape(-1, length)  # (R * W, L)
        group = self.group.repeat_interleave(w)
        if not filtered:
            return self.candidate_losses(flat, group, index).view(r, w)
        ok = survives_retokenization(self.obj.vocab, flat)
        losses = torch.full((len(flat),), torch.inf, device=self.device)
        losses[ok] = self.candidate_losses(flat[ok], group[ok], index)
        return losses.view(r, w)

    def confirm(self, cand: torch.Tensor, screened: torch.Tensor, k: int) -> torch.Tensor:
        """The ``k`` best screened candidates of each prompt scored on all of dev, shape (R, W); inf for the rest
        (and for those the screen refused)."""
        r, w, length = cand.shape
        top = screened.topk(min(k, w), dim=1, largest=False).indices  # (R, k)
        ok = screened.gather(1, top).isfinite()  # (R, k)
        picked = cand.gather(1, top[..., None].expand(-1, -1, length))  # (R, k, L)
        full = torch.full(top.shape, torch.inf, device=self.device)
        full[ok] = self.candidate_losses(picked[ok], self.group[:, None].expand_as(top)[ok])
        return torch.full_like(screened, torch.inf).scatter_(1, top, full)

    def move(self, cand: torch.Tensor, losses: torch.Tensor, only_if_better: bool) -> None:
        """Move each prompt to its best candidate: always (when it has a finite loss), or only if it beats the
        current prompt.

        Args:
            cand: candidates, shape (R, W, L).
            losses: their eval loss, shape (R, W).
        """
        best_loss, best = losses.min(-1)  # (R,)
        accept = best_loss < self.current_loss() if only_if_better else best_loss.isfinite()
        picked = cand[torch.arange(len(cand), device=self.device), best]  # (R, L)
        self.ids = torch.where(accept[:, None], picked, self.ids)
        before = self.cur_loss if self.cur_loss is not None else best_loss
        self.cur_loss = torch.where(accept, best_loss, before)

    def state_dict(self) -> dict:
        return {"ids": self.ids, "cur_loss": self.cur_loss}

    def load_state_dict(self, state: dict) -> None:
        self.ids = state["ids"].to(self.device)
        self.cur_loss = None if state["cur_loss"] is None else state["cur_loss"].to(self.device)
