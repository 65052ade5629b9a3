"""Slots: a batch of prompt groups that stays full while targets come and go (docs/algorithms.md#slots).

A folder run gives each group one image. When a group is done (its early stop, its steps, or its share of the
seconds), its result goes to the job at once and its slot takes the next target: the group's prompts start again
from the prompt a run on that target alone starts from, with their own fresh AdamW moments and step count
(:meth:`pez.optim.pez.PEZ.restart_group`), and the tracker forgets the group's past. So a target's result does
not depend on the batch it shared, nor on when its slot opened: it is the result it gets alone with the same seed
and stop rule (decided at sync points, as alone).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from pez.optim.budget import UNLIMITED_STEPS
from pez.optim.tracking import Tracker
from pez.records import PromptResult


def can_refill(opt) -> bool:
    """Whether the method can start one group again (PEZ); the others run batch by batch."""
    return hasattr(opt, "restart_group") and getattr(opt.obj, "prior", None) is None and opt.obj.n_groups > 1


class Slots:
    """The groups of ``opt`` as slots that refill (set ``opt.slots`` to this before :meth:`run`; the loop calls
    :meth:`sync` at every sync point and stops when it returns True).

    Args:
        opt: a method with ``split_groups`` / ``restart_group`` (:func:`can_refill`); its config's ``steps`` are each
            target's, and the loop itself runs until the last slot is done.
        refill: ``refill(g)`` puts the next target in group ``g`` (the objective's targets) and returns True, or
            returns False when no target is left (the slot closes).
        finish: ``finish(g, result)`` takes group ``g``'s result as soon as it is done.
        seconds: each target's seconds (None: no limit), counted from its slot's start.
        total_seconds: the whole run's seconds (None: no limit); when the next sync would overrun them, every
            open slot ends with its best prompt so far.
    """

    def __init__(
        self,
        opt,
        refill: Callable[[int], bool],
        finish: Callable[[int, PromptResult], None],
        seconds: float | None = None,
        total_seconds: float | None = None,
    ):
        self.opt, self.refill, self.finish = opt, refill, finish
        self.seconds, self.total_seconds = seconds, total_seconds
        self.steps = opt.cfg.steps
        opt.cfg = replace(opt.cfg, steps=UNLIMITED_STEPS)  # the loop runs until the last slot is done
        self.config = {**opt.cfg.to_dict(), "steps": self.steps}  # what each result says it ran with
        self.start_ids = opt.initial_ids()[: opt.cfg.restarts].clone()  # a group's start, as alone (same seed)
        opt.split_groups()
        self.open = [True] * opt.obj.n_groups
        self.last = (0, 0.0)  # the previous sync: (step, seconds)
        self.out_of_time = False  # the whole run's seconds ended it (the targets not started are left)
        opt.slots = self

    def sync(self, tracker: Tracker, step: int, elapsed: float) -> bool:
        """Hand every group that is done to the job and refill its slot; True when no slot is open."""
        interval = max(elapsed - self.last[1], 0.0)  # the time to the next sync, as the last one took
        self.last = (step, elapsed)
        out_of_time = self.total_seconds is not None and elapsed + interval > self.total_seconds
        self.out_of_time |= out_of_time
        for g, is_open in enumerate(self.open):
            if not is_open:
                continue
            at, t0 = tracker.offset[g]
            why = "budget_seconds" if out_of_time else None
            if tracker.stopped(g) is not None:
                why = "early-stop"
            elif step - at >= self.steps:
                why = "steps"
            elif self.seconds is not None and elapsed - t0 + interval > self.seconds:
                why = "budget_seconds"
            if why is None:
                continue
            loop_s, n = elapsed - t0, step - at
            timings = {"setup_s": 0.0, "total_s": loop_s, "loop_s": loop_s, "steps_run": n, "elapsed_s": loop_s,
                       "steps_per_s": n / loop_s if loop_s > 0 else math.nan, "stopped_by": why,
                       "slots": len(self.open)}  # fmt: skip
            res = tracker.result(self.opt, g, n, False, timings)
            res.config = dict(self.config)
            self.finish(g, res)
            if not out_of_time and self.refill(g):
                self.opt.restart_group(g, self.start_ids)
                tracker.restart_group(g, step, elapsed)
            else:
                self.close(tracker, g, step)
        return not any(self.open)

    def close(self, tracker: Tracker, g: int, step: int) -> None:
        """No target is left for slot ``g``: its prompts run on with the batch, their results no longer kept."""
        self.open[g] = False
        tracker.gain[g]["stopped"] = step
        tracker.active &= tracker.group != g
        tracker.frozen = True
