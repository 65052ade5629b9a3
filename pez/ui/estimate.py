"""How long a search will take, said in the page before it starts (what users of CLIP Interrogator's page expect).

Two sources, the better first: the pace (seconds per step) that earlier runs on this server measured with the same
model and settings (:class:`PaceBook`, filled by every finished search), said as soon as Run is pressed; else a
timed probe of :data:`PROBE_STEPS` steps of the method on the loaded model, with the restarts (or examples per
step) asked for, run after the model loads and before the search. Either pace times the steps asked for is the
estimate; it is the search's time, not the model's loading nor a task's held-out scoring.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable

PROBE_STEPS = 2  # steps of the timed probe (the first step's warm-up makes it an upper bound)


def duration(seconds: float) -> str:
    """``seconds`` for a person: "under a second", "12 s", "4 min", "1.5 h"."""
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_line(seconds: float, steps: int | None, source: str) -> str:
    """The line the page shows: an estimate, said to be one, for how many steps, and where its pace comes from."""
    what = f" for {steps} steps" if steps is not None else ""
    return f"Estimate: about {duration(seconds)}{what} at this machine's pace ({source})."


class PaceBook:
    """Seconds per step measured by finished searches on this server, by their settings (a hashable key: the job,
    model, method, prompt length, restarts or examples per step, device); the latest measurement wins."""

    def __init__(self):
        self._paces: dict[Hashable, float] = {}
        self._lock = threading.Lock()

    def __iter__(self):
        """The settings measured so far."""
        with self._lock:
            return iter(list(self._paces))

    def get(self, key: Hashable) -> float | None:
        with self._lock:
            return self._paces.get(key)

    def record(self, key: Hashable, seconds_per_step: float) -> None:
        """Keep a measured pace (ignored when not a positive finite number, e.g. a search stopped at step 0)."""
        if isinstance(seconds_per_step, int | float) and math.isfinite(seconds_per_step) and seconds_per_step > 0:
            with self._lock:
                self._paces[key] = float(seconds_per_step)


def budget_line(seconds: float) -> str:
    """The estimate of a search that its seconds budget ends first."""
    return f"Estimate: at most about {duration(seconds)} (the seconds budget ends the search)."


def tell_estimate(job, paces: PaceBook, key: Hashable, steps: int | None, probe: Callable[[], float] | None,
                  budget_s: float | None = None) -> bool:  # fmt: skip
    """Tell ``job`` how long its ``steps`` steps will take (None: a search that sizes itself, whose pace is
    recorded per run): from the pace of an earlier run with ``key``, else from ``probe()`` (seconds per step of a
    :data:`PROBE_STEPS`-step probe; None: no probe, no estimate). Stop pressed during the probe ends the job
    before the search. With a seconds budget (``budget_s``) the estimate is at most the budget, and no probe is
    run (the budget bounds the search already, and a probe would be time the user waits for). Whether an estimate
    was told."""
    if job is None:
        return False
    known = paces.get(key)
    if known is not None:
        seconds = known * (steps or 1)
        if budget_s is not None and budget_s < seconds:
            job.tell_estimate(budget_line(budget_s), budget_s)
            return True
        job.tell_estimate(estimate_line(seconds, steps, "measured by an earlier run with the same settings"), seconds)
        return True
    if budget_s is not None:
        job.tell_estimate(budget_line(budget_s), budget_s)
        return True
    if probe is None:
        return False
    pace = probe()
    if job.stopping:
        raise KeyboardInterrupt  # Stop during the probe: nothing found yet
    seconds = pace * (steps or 1)
    job.tell_estimate(estimate_line(seconds, steps, f"timed on a {PROBE_STEPS}-step probe"), seconds)
    return True


def invert_estimated(ctx, job, key: Hashable, model: str, readable: bool, search: dict, callback, budget=None, **run):
    """``pez.invert(model=model, budget=budget, **run)`` for a page's ``job``, with its time estimate told first
    (:func:`tell_estimate`; a probe loads the model once for both); the search's pace is recorded under ``key``
    for the next run. ``search``: steps and restarts (readable mode: the refinement's steps when not None, else it
    sizes its own search; no restarts). ``budget``: a :class:`pez.Budget` of seconds (None: none)."""
    import pez

    loaded, extra = model, {}

    def probe() -> float:
        nonlocal loaded
        t0 = time.perf_counter()
        loaded = pez.load_model(model, run.get("device"))
        t1 = time.perf_counter()
        res = pez.invert(**run, model=loaded, judge=None, **{**search, "steps": PROBE_STEPS})
        extra.update(model_load_s=t1 - t0, probe_s=time.perf_counter() - t1)
        return res.timings["s_per_step"]

    budget_s = budget.seconds if budget is not None else None
    tell_estimate(job, ctx.paces, key, None if readable else search["steps"], None if readable else probe, budget_s)
    asked = {"steps": search["steps"]} if search["steps"] is not None else {}  # readable: the refinement's steps
    res = pez.invert(**run, model=loaded, callback=callback, readable=readable, budget=budget,
                     **(asked if readable else search))  # fmt: skip
    res.timings.update(extra)  # the model loaded before the probe: its time, not the search's
    ctx.paces.record(key, res.timings["total_s"] if readable else res.timings["s_per_step"])
    return res
