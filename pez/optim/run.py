"""The one way to run a method on an objective: :func:`optimize_each` (one result per target group) and
:func:`optimize` (an objective with one group). Every job calls these; the method's own loop is
:meth:`pez.optim.loop.PromptOptimizer.run`."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import nullcontext

from pez.files import writer_lock
from pez.models.lm import load_judge
from pez.objectives.base import Objective
from pez.optim.budget import Budget
from pez.optim.config import OptimizerConfig
from pez.optim.registry import method_for
from pez.optim.tracking import Progress
from pez.records import PromptResult
from pez.text.readability import judge_results


def optimize_each(
    objective: Objective,
    config: OptimizerConfig | None = None,
    *,
    callback: Callable[[Progress], None] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    budget: Budget | None = None,
    judge: str | None = None,
) -> list[PromptResult]:
    """Run the method that ``config`` belongs to (PEZ by default) on ``objective``; one result per target group.

    Args:
        objective: e.g. :class:`pez.CLIPObjective` or :class:`pez.SentenceObjective`.
        config: a method config, e.g. ``pez.PEZConfig(prompt_len=8, steps=300, restarts=4, seed=0)``.
        callback: called with a :class:`Progress` at every sync point; its ``ids`` are the prompts every restart
            evaluated at the latest step (R, L); raising KeyboardInterrupt from it stops the run (kept).
        checkpoint: file to save the state to every ``config.checkpoint_every`` steps and at the end.
        resume: continue from ``checkpoint``.
        budget: seconds of loop time and forward-equivalent passes the run may use, besides ``config.steps``.
        judge: a causal LM (``smollm2``, a folder, a hub name) that gives each result's text a perplexity in its
            ``readability``; the word statistics are there without it.

    Returns:
        the best prompt of each group, scored on its own re-tokenised text.
    """
    if config is None:
        from pez.optim.pez import PEZConfig

        config = PEZConfig()
    budget = budget or Budget()
    with writer_lock(checkpoint, "--checkpoint") if checkpoint is not None else nullcontext():  # one writer
        method = method_for(config)(objective, config)
        results = method.run(callback, checkpoint, resume, budget_seconds=budget.seconds, budget_passes=budget.passes)
    try:
        judge_results(results, load_judge(judge, objective.vocab.embeddings.device))
    except KeyboardInterrupt:  # the search's results are kept: without the judge's perplexity
        judge_results(results, None)
    return results


def optimize(
    objective: Objective,
    config: OptimizerConfig | None = None,
    *,
    callback: Callable[[Progress], None] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    budget: Budget | None = None,
    judge: str | None = None,
) -> PromptResult:
    """:func:`optimize_each` for an objective with one target group: the best prompt over all restarts."""
    results = optimize_each(objective, config, callback=callback, checkpoint=checkpoint, resume=resume, budget=budget,
                            judge=judge)  # fmt: skip
    if len(results) != 1:
        raise ValueError(f"this objective has {len(results)} target groups: use optimize_each")
    return results[0]
