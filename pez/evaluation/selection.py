"""Choosing among prompts on an API model within a request budget (docs/evaluation.md#the-api-inside-the-search).

A round takes candidate prompts (best first) and races them on the API's dev examples by successive halving:
every candidate is scored on the first few examples, the better half goes on to twice as many, and so on up to
all of them; the survivor replaces the incumbent only if it beats it on all the dev examples (accuracy, then the
mean margin of the gold label's log-probability over the best other label where the scoring gives one). The dev
examples come in a label-balanced order, so every prefix is a fair sample. A round is cut to the candidates
whose expected cost (successive halving's worst case, at the requests per example measured so far) fits the
requests it is allowed; the client never sends past them. Scores already known (in memory or in the response
cache) cost nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from pez.evaluation.client import BudgetSpent

log = logging.getLogger(__name__)


class ApiSelector:
    """Scores prompts on dev examples through a :class:`pez.evaluation.remote.RemoteScorer`; keeps the best.

    Args:
        scorer: scores one (prompt, input) through the API.
        examples: dev examples (``.text``), in a label-balanced order.
        gold: the label index of each example.
        first_rung: examples a new candidate is first scored on (doubled for the better half, up to all).
        per_example: requests one example is expected to cost before any is measured (then the measured mean).
    """

    def __init__(self, scorer, examples: Sequence, gold: Sequence[int], first_rung: int = 4, per_example=None):
        self.scorer, self.examples, self.gold = scorer, list(examples), list(gold)
        self.rungs = _rungs(len(self.examples), first_rung)
        self.per_example = per_example or scorer.per_example
        self.outcomes: dict[str, list[tuple[bool, float]]] = {}  # prompt -> (correct, margin) per example so far
        self.incumbent: str | None = None
        self.rounds: list[dict] = []
        self.stopped_by: str | None = None  # why the selection ended early: the budget, or an API failure
        self.sent = self.scored = 0  # requests sent and examples scored so far, for a measured per-example cost
        self.unreadable = 0  # answers that could not be read as a label (wrong, with no margin)

    @property
    def n(self) -> int:
        return len(self.examples)

    def key(self, prompt: str, m: int | None = None) -> tuple[float, float]:
        """(accuracy, mean margin) on the first ``m`` examples (default all)."""
        got = self.outcomes.get(prompt, [])[: m or self.n]
        if not got:
            return (-math.inf, -math.inf)
        return (sum(c for c, _ in got) / len(got), sum(g for _, g in got) / len(got))

    def accuracy(self, prompt: str) -> float | None:
        """Accuracy on all dev examples, or None if not scored on all of them."""
        got = self.outcomes.get(prompt, [])
        return sum(c for c, _ in got) / self.n if len(got) >= self.n else None

    def estimate(self) -> float:
        """Requests one uncached example costs: measured over the examples that sent requests so far (cached
        answers are not counted: they say nothing of what the next one costs), else the initial guess."""
        return self.sent / self.scored if self.scored >= 4 else self.per_example

    def _score(self, prompt: str, m: int) -> None:
        got = self.outcomes.setdefault(prompt, [])
        api = self.scorer.api
        for k in range(len(got), m):
            sent0 = api.sent
            out = self.scorer.score(prompt, self.examples[k].text)
            if api.sent > sent0:  # an answer from the cache costs nothing: the estimate counts requests sent
                self.sent, self.scored = self.sent + api.sent - sent0, self.scored + 1
            g, best = self.gold[k], out["best"]
            scores = out.get("scores")
            self.unreadable += best is None
            margin = scores[g] - max(s for c, s in enumerate(scores) if c != g) if scores and best is not None else 0.0
            got.append((best == g, margin))

    def cost(self, prompts: Sequence[str]) -> int:
        """Requests a round over ``prompts`` is expected to send at most (what is known already is free)."""
        have = {p: len(self.outcomes.get(p, [])) for p in prompts}
        total, alive = 0, list(have)
        for m in self.rungs:
            for p in alive:
                total += max(0, m - have[p])
                have[p] = max(have[p], m)
            alive = sorted(alive, key=have.__getitem__)[: math.ceil(len(alive) / 2)]  # worst case: least known
        return math.ceil(total * self.estimate())

    def round(self, candidates: Sequence[str], allowance: int, step: int | None = None) -> dict:
        """Race ``candidates`` (best first) within ``allowance`` requests; returns the round's record."""
        api = self.scorer.api
        pool = list(dict.fromkeys(c for c in candidates if c != self.incumbent))
        if self.incumbent is not None and len(self.outcomes.get(self.incumbent, [])) < self.n:
            pool.insert(0, self.incumbent)  # an incumbent cut short by the budget is finished first
        while pool and self.cost(pool) > allowance:
            pool.pop()
        record = {"step": step, "candidates": len(pool), "requests": 0, "changed": False, "incumbent": None}
        if not pool:
            record["skipped"] = "budget"
            return self._close(record)
        sent0, limit0 = api.sent, api.max_requests
        api.max_requests = min(x for x in (limit0, api.sent + allowance) if x is not None)
        alive = pool
        try:
            for m in self.rungs:
                for p in alive:
                    self._score(p, m)
                if m < self.n:
                    alive = sorted(alive, key=lambda p: self.key(p, m), reverse=True)[: math.ceil(len(alive) / 2)]
            best = max(alive, key=self.key)
            if self.incumbent is None or self.key(best) > self.key(self.incumbent):
                self.incumbent, record["changed"] = best, True
        except BudgetSpent as e:
            spent = limit0 is not None and api.sent >= limit0
            if spent or (api.max_tokens is not None and api.tokens >= api.max_tokens):
                self.stopped_by = str(e)  # the whole budget, not only this round's share
            record["cut"] = str(e)
        finally:
            record["requests"] = api.sent - sent0
            api.max_requests = limit0
        return self._close(record)

    def _close(self, record: dict) -> dict:
        if self.incumbent is not None:
            acc, margin = self.key(self.incumbent)
            record |= {"incumbent": self.incumbent, "dev_accuracy": acc, "dev_margin": margin}
        self.rounds.append(record)
        log.info("API round: %s", record)
        return record


def _rungs(n: int, first: int) -> list[int]:
    """Examples per rung: ``first``, doubled, up to ``n``."""
    out, m = [], max(1, min(first, n))
    while m < n:
        out.append(m)
        m *= 2
    return out + [n]
