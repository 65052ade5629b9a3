"""Readable: a prompt search that reads like text, for any objective (docs/algorithms.md#readable).

PEZ's prompts are real words in no order: the gradient knows what the encoder wants, not what a reader can read.
This method keeps both. It is AutoPrompt's exact, accept-if-better coordinate search with two changes:

- **Candidates from two proposers.** At the step's position (left to right, one position per step, cycling) the
  candidates are the ``top_k`` allowed tokens by the gradient's first-order score (as AutoPrompt's) and the
  ``lm_k`` words a causal LM proposes after the prompt's text so far (its most likely next tokens that are
  whole words of the encoder's allowed vocabulary). The LM reads the decoded text with its own tokenizer, so it
  proposes for CLIP, sentence encoders, SDXL's towers and LM tasks alike.
- **Scored with the prior.** Every candidate is scored exactly by the objective plus ``prior_weight`` times its
  text's mean NLL per token under the same LM (:class:`pez.objectives.prior.PriorObjective`); the result's score
  is the objective's alone, on the returned text.

With ``prior_weight`` 0 the LM still proposes but does not score: the search is then AutoPrompt with LM
candidates added. Start from a fluent text with ``init_text`` (e.g. a VGD result) to refine it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pez.optim.candidates import CandidateSearch, swap_scores
from pez.optim.config import CandidateConfig, check_nonnegative, check_positive, config_field


@dataclass
class ReadableConfig(CandidateConfig):
    """Gradient and LM proposals at one position per step, scored with the LM prior."""

    top_k: int = config_field(8, "tokens proposed by the gradient's first-order score at the step's position")
    lm_k: int = config_field(8, "whole words the prior LM proposes after the text so far at the step's position")
    prior_weight: float = config_field(0.05, "weight of the prior's mean NLL per token beside the loss (0: none)")
    max_nll_rise: float | None = config_field(
        None, "refuse swaps whose text's mean NLL per token under the LM exceeds the first text's by more (None: any)"
    )
    screen: int | None = config_field(
        None, "LM tasks: dev examples that rank the candidates first, the best --confirm then on all (None: all)"
    )
    confirm: int = config_field(2, "with --screen: the screened candidates per step scored on all dev examples")

    def __post_init__(self):
        super().__post_init__()
        check_positive(self, "top_k", "lm_k", "confirm", "screen")
        check_nonnegative(self, "max_nll_rise", allow_none=True)
        if self.top_k + self.lm_k > 4096:
            from pez.errors import PezError

            raise PezError(f"top-k + lm-k is {self.top_k + self.lm_k}: at most 4096 candidates per step")


def check_no_screen(cfg, job: str) -> None:
    """``--screen`` ranks candidates on an LM task's dev examples: refused (before any load) by the jobs that
    have none."""
    if getattr(cfg, "screen", None) is not None:
        from pez.errors import PezError

        raise PezError(f"--screen ranks candidates on an LM task's dev examples: {job} has none (leave it out)")


class Readable(CandidateSearch):
    name = "readable"
    writes_text = True
    config_class = ReadableConfig

    def init(self, ids: torch.Tensor) -> None:
        super().init(ids)
        from pez.models.lm import load_text_lm

        prior = getattr(self.obj, "prior", None)
        self.proposer = prior if prior is not None else load_text_lm(self.cfg.prior, self.device)
        self._words: dict[int, list[tuple[int, str]]] = {}  # LM token id -> [(encoder id, word)] (cached)
        self._nll: dict[str, float] = {}  # text -> mean NLL per LM token, when the objective has no prior
        self.start_nll: torch.Tensor | None = None  # (R,), the first texts' NLL (the bound of max_nll_rise)
        self.screen: list[int] | None = None  # the dev examples that rank candidates first (None: all of dev)
        if self.cfg.screen is not None:
            if not hasattr(self.obj, "screen_index"):
                check_no_screen(self.cfg, f"a {type(self.obj).__name__}")
            index, every = self.obj.screen_index(self.cfg.screen), self.obj.screen_index(10**9)
            self.screen = index if len(index) < len(every) else None  # a screen of all of dev is no screen

    def initial_ids(self) -> torch.Tensor:
        """As every method's, except that the init text's own tokens are kept as they are (a refinement starts
        from the text it refines: the word pieces of a long word, which the allowed vocabulary leaves out and a
        projection would replace, stay; a swap that breaks such a word does not tokenise back and is refused)."""
        ids = super().initial_ids()
        start = self.obj.vocab.encode(self.cfg.init_text)[: ids.shape[1]] if self.cfg.init_text else []
        if start:
            ids[:, : len(start)] = torch.tensor(start, device=ids.device)
        return ids

    def text_nll(self, ids: torch.Tensor) -> torch.Tensor:
        """Mean NLL per LM token of each prompt's text as the user gets it (:meth:`decode`), shape (N,): the
        prior's memo when the objective has one (the same texts were just scored), else this method's."""
        from pez.objectives.prior import mean_nll

        texts = [self.decode(row) for row in ids.tolist()]
        values = self.obj.nll(texts) if hasattr(self.obj, "nll") else mean_nll(self.proposer, texts, self._nll)
        return torch.tensor(values, device=self.device)

    def _as_word(self, lm_token: int) -> int | None:
        """The encoder's single whole-word token for an LM token that is a whole word, or None."""
        if lm_token not in self._words:
            self._words[lm_token] = self.obj.vocab.word_id(self.proposer.tokenizer.decode([lm_token]), True)
        return self._words[lm_token]

    @torch.no_grad()
    def lm_proposals(self, pos: int) -> torch.Tensor:
        """Up to ``lm_k`` encoder tokens per prompt that the LM proposes after the text of positions < ``pos``,
        shape (R, lm_k), -1 where there are fewer; one batched LM pass."""
        lm, k = self.proposer, self.cfg.lm_k
        prefixes = [self.decode(row[:pos]) for row in self.ids.tolist()]
        last = lm.next_logits([" " + p if p else "" for p in prefixes])  # (R, V_lm)
        out = torch.full((len(prefixes), k), -1, dtype=torch.long)
        allowed = self.allowed[pos].cpu()
        for b, order in enumerate(last.topk(min(last.shape[-1], 8 * k), dim=-1).indices.tolist()):
            found: list[int] = []
            for t in order:
                enc = self._as_word(t)
                if enc is not None and allowed[enc] and enc not in found:
                    found.append(enc)
                    if len(found) == k:
                        break
            out[b, : len(found)] = torch.tensor(found, dtype=torch.long)
        return out.to(self.device)

    def step(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        ids, cfg = self.ids, self.cfg
        r, length = ids.shape
        pos = step % length
        self.current_loss()
        grad = self.gradient()  # (R, L, D)
        scores = swap_scores(grad[:, pos : pos + 1], self.E, ids[:, pos : pos + 1], self.allowed[pos : pos + 1])
        k = max(1, min(cfg.top_k, self.projector.min_allowed - 1))
        tokens = torch.cat([scores[:, 0].topk(k, dim=-1).indices, self.lm_proposals(pos)], dim=1)  # (R, k + lm_k)
        tokens = torch.where(tokens < 0, ids[:, pos : pos + 1], tokens)  # no proposal: the current token
        cand = ids[:, None, :].repeat(1, tokens.shape[1], 1)  # (R, W, L)
        cand[:, :, pos] = tokens
        losses = self.score_candidates(cand, filtered=True, index=self.screen)  # (R, W)
        if cfg.max_nll_rise is not None:
            if self.start_nll is None:
                self.start_nll = self.text_nll(ids)
            scored = losses.isfinite()  # a refused text is not read
            nll = torch.full_like(losses, torch.inf)
            nll[scored] = self.text_nll(cand[scored]).to(nll)
            losses = torch.where(nll > self.start_nll[:, None] + cfg.max_nll_rise, torch.inf, losses)
        if self.screen is not None:  # the move compares losses on all of dev
            losses = self.confirm(cand, losses, cfg.confirm)
        self.move(cand, losses, only_if_better=True)
        return self.ids, self.cur_loss

    def state_dict(self) -> dict:
        return {**super().state_dict(), "start_nll": self.start_nll}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        start = state.get("start_nll")
        self.start_nll = None if start is None else start.to(self.device)
