"""A language-model prior on the prompt's TEXT, for any objective (docs/objectives.md#readable-prompts).

:class:`PriorObjective` wraps an objective: a prompt's loss becomes ``base loss + weight * mean NLL`` of its
decoded text under a causal LM (:class:`pez.text.lm_text.TextLM`, which reads the text with its own tokenizer,
so CLIP, sentence encoders, SDXL's towers and LM tasks all work although no LM shares their tokenizer). The
prior has no gradient across tokenizers: it steers the search where prompts are scored exactly (every candidate
of the discrete methods, every step's evaluated prompt, the best-prompt tracking), and the gradient stays the
base objective's. :meth:`PriorObjective.honest` then gives back each result's score as the base objective's score
of its text alone: the score a user sees is never the prior's. The LM is loaded by the caller
(:func:`pez.models.lm.load_text_lm`, once per process): objectives sit below the model loaders.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from pez.errors import PezError
from pez.text.lm_text import TextLM


def check_prior_weight(weight) -> None:
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not (math.isfinite(weight) and weight >= 0):
        raise PezError(f"--prior-weight must be a finite number >= 0 (0: no prior), got {weight!r}")


def mean_nll(lm: TextLM, texts: Sequence[str], memo: dict[str, float] | None = None) -> list[float]:
    """Mean NLL per token of each text under ``lm`` (0 for an empty text); the texts not in ``memo`` are read in
    one batched call and kept there."""
    memo = {} if memo is None else memo
    new = list(dict.fromkeys(t for t in texts if t not in memo))
    if new:
        for t, lp in zip(new, lm.token_logprobs(new)):
            memo[t] = float(-lp.mean()) if lp.numel() else 0.0
    return [memo[t] for t in texts]


class PriorObjective:
    """``base`` plus ``weight`` times the prior's mean NLL per token of the prompt's decoded text (lower is better).

    Args:
        base: any objective (:class:`pez.objectives.base.Objective`).
        prior: the LM that reads the text.
        weight: the prior's weight, >= 0 (nats of the prior per unit of the base loss).
    """

    graph_safe = False  # the prior runs on the host's decoded text: a PEZ step is never captured with it

    def __init__(self, base, prior: TextLM, weight: float, end: str = ""):
        check_prior_weight(weight)
        self.base, self.prior, self.weight = base, prior, float(weight)
        self.end = end  # read after each text (a full stop: a text that stops mid-phrase reads worse)
        self.vocab = base.vocab
        self.n_groups = base.n_groups
        self.score_name = base.score_name
        self.counts = base.counts  # the encoder's passes; the prior's are in prior_counts
        self._nll: dict[str, float] = {}  # text -> mean NLL per prior token (texts recur across candidates)

    @property
    def prior_counts(self) -> dict[str, int]:
        return {"forward": self.prior.sequences}

    def nll(self, texts: Sequence[str]) -> list[float]:
        """Mean NLL per prior token of each text (0 for an empty text), memoised."""
        return mean_nll(self.prior, texts, self._nll)

    def prior_term(self, ids) -> torch.Tensor:
        """``weight * nll`` of each prompt's decoded text, shape (N,), on the base objective's device."""
        rows = ids.tolist() if isinstance(ids, torch.Tensor) else [list(r) for r in ids]
        texts = [self.vocab.sentence_case(self.vocab.decode(r)) + self.end for r in rows]
        return self.weight * torch.tensor(self.nll(texts), device=self.vocab.embeddings.device)

    def loss(self, embeds, group, batch_size, generator, ids=None):
        loss, full = self.base.loss(embeds, group, batch_size, generator, ids)
        if full is not None and ids is not None:
            full = full + self.prior_term(ids).to(full)
        return loss, full

    def eval_loss(self, embeds, group, ids=None, **subset):  # subset: an LM objective's screening ``index``
        out = self.base.eval_loss(embeds, group, ids, **subset)
        return out if ids is None else out + self.prior_term(ids).to(out)

    def eval_loss_ids(self, ids, group):
        out = self.base.eval_loss_ids(ids, group)
        return out + self.prior_term(ids).to(out)

    def target_scores(self, ids, group: int = 0) -> list[dict]:
        return self.base.target_scores(ids, group)

    def describe(self) -> dict:
        return {**self.base.describe(), "prior": self.prior.name, "prior_weight": self.weight}

    def __getattr__(self, name):  # the rest of the base objective's surface (accuracy, path, ...)
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    @torch.no_grad()
    def honest(self, results: list) -> list:
        """Each result scored by the base objective alone, on its own text: ``score`` (and ``internal_score``,
        every restart's and every best-history entry's score) become the base objective's; the search's combined
        score and the prior's NLL go to ``extras``."""
        for g, res in enumerate(results):
            group = torch.full((1,), g, dtype=torch.long, device=self.vocab.embeddings.device)
            memo: dict[tuple[int, ...], float] = {}  # the same text recurs (best history, restarts): scored once

            def score(ids, group=group, memo=memo) -> float:
                if tuple(ids) not in memo:
                    memo[tuple(ids)] = -float(self.base.eval_loss_ids([ids], group)[0])
                return memo[tuple(ids)]

            res.extras.update(search_score=res.score, prior=self.prior.name, prior_weight=self.weight,
                              prior_nll=self.nll([res.text + self.end])[0])  # fmt: skip
            res.score = score(res.text_ids)
            res.internal_score = score(res.ids)
            for r in res.restarts:
                r["score"] = score(self.vocab.encode(r["text"])[: self.vocab.max_len])
            for e in res.best_history:
                e["score"] = score(self.vocab.encode(e["text"])[: self.vocab.max_len])
        return results
