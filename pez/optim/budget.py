"""Budgets that end a run: wall-clock seconds (the method's setup and its loop), or forward-equivalent passes
(docs/algorithms.md#budgets).

A pass count is forward + 2 x backward sequences, as counted by the objective: a backward costs about two
forwards. A run stops after the step past which another step of the same cost would overrun a budget.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from pez.errors import PezError

log = logging.getLogger(__name__)


def passes(counts: dict[str, int]) -> int:
    """Forward-equivalent passes of ``{"forward": n, "backward": m}``."""
    return counts["forward"] + 2 * counts["backward"]


@dataclass(frozen=True)
class Budget:
    """Wall-clock seconds and forward-equivalent passes a run may use (None: no limit); checked on creation. The
    seconds count the method's setup (vocabulary masks, VGD's first-word ranking, the initial prompt) and its loop:
    what a user waits for. A step budget is the config's ``steps``."""

    seconds: float | None = None
    passes: int | None = None

    def __post_init__(self):
        for name, value in (("budget-seconds", self.seconds), ("budget-passes", self.passes)):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise PezError(f"{name} must be a positive, finite number, got {value} (leave it out for no limit)")


class BudgetMeter:
    """Where a run stands against its :class:`Budget`.

    Args:
        budget: the limits.
        seconds0, passes0: what the run had used before this call (a resumed run).
        setup_s: the method's setup time, counted against the seconds on top of the loop's.
    """

    def __init__(self, budget: Budget, seconds0: float = 0.0, passes0: int = 0, setup_s: float = 0.0):
        seconds, passes = budget.seconds, budget.passes
        self.limits = {"budget_seconds": seconds, "budget_passes": passes}
        self.setup_s = setup_s
        self.prev = (seconds0 + setup_s, passes0)
        self.last_cost: dict[str, float] = {}  # what the last step cost, per budget: the rule's forecast of the next
        self.setup_spent = seconds is not None and seconds0 + setup_s >= seconds
        if self.setup_spent and seconds > SLIVER_S:  # one step all the same (a sliver: remaining() said so)
            log.warning("the method's set-up (its vocabulary masks, initial prompt, VGD's first-word ranking) took "
                        "%.3g s, more than the %.3g s the budget left it: one step is run so that a prompt comes "
                        "back, barely searched; give a larger --budget-seconds", setup_s, seconds)  # fmt: skip

    def fraction(self, seconds: float, passes: int) -> float:
        """The share of the budgets used, 0 to 1 (0 without budgets); ``seconds`` of loop time."""
        used = {"budget_seconds": seconds + self.setup_s, "budget_passes": passes}
        return min(1.0, max((used[k] / v for k, v in self.limits.items() if v is not None), default=0.0))

    def spent(self, seconds: float, passes: int) -> str | None:
        """The name of the budget that the next step would overrun, or None. Call once after every step with the
        loop's ``seconds`` so far."""
        now = (seconds + self.setup_s, passes)
        cost = [n - p for n, p in zip(now, self.prev)]
        self.prev, self.last_cost = now, dict(zip(self.limits, cost))  # the next step's predicted cost
        for (name, limit), n, c in zip(self.limits.items(), now, cost):
            if limit is not None and n + c > limit:
                return name
        return None


UNLIMITED_STEPS = 10**12  # the ``steps`` of a search that only its budget (or the early stop) ends

SLIVER_S = 1e-3  # what a budget spent before its search leaves it: one step, so the user still gets a prompt


def budget_steps(config: dict, budget: Budget | None) -> dict:
    """A job's config under a budget: without a ``steps`` of the user's, a seconds or passes budget (and the
    early stop) ends the search, not the method's default step count."""
    if budget is None or (budget.seconds is None and budget.passes is None) or "steps" in config:
        return config
    return {**config, "steps": UNLIMITED_STEPS}


def remaining(budget: Budget | None, spent_s: float) -> Budget | None:
    """What is left of ``budget`` for the search after ``spent_s`` seconds of loading (the model, the data, the
    targets): the user's seconds count all they wait for. A budget spent before the search leaves it one step, so
    a prompt comes back all the same (said once)."""
    if budget is None or budget.seconds is None:
        return budget
    left = budget.seconds - spent_s
    if left <= SLIVER_S:
        log.warning("the %.3g s budget was spent before the search (loading took %.1f s): one step is run, so the "
                    "prompt is barely searched; give a larger --budget-seconds", budget.seconds, spent_s)  # fmt: skip
        left = SLIVER_S
    return Budget(left, budget.passes)


def check_budget(budget) -> None:
    """A job's ``budget`` is a :class:`Budget` or None (checked before any load)."""
    if budget is not None and not isinstance(budget, Budget):
        raise PezError(f"budget must be a pez.Budget (e.g. pez.Budget(seconds=60)), got {budget!r}")
