"""The loop every prompt optimiser shares (docs/algorithms.md#the-loop).

A method subclasses :class:`PromptOptimizer` and writes four things: how to start from initial ids
(:meth:`~PromptOptimizer.init`), one step (:meth:`~PromptOptimizer.step`, returning the hard ids it evaluated and
their loss), and its state for checkpoints. The loop runs the steps, tracks the best prompt
(:mod:`pez.optim.tracking`), stops on a budget (:mod:`pez.optim.budget`), saves checkpoints
(:mod:`pez.optim.checkpoint`) and turns Ctrl-C into a clean stop between steps.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

import torch

from pez.errors import PezError
from pez.interrupts import note
from pez.objectives.base import Objective
from pez.optim.budget import Budget, BudgetMeter, passes
from pez.optim.checkpoint import load_checkpoint, save_checkpoint
from pez.optim.config import OptimizerConfig
from pez.optim.tracking import Progress, Tracker
from pez.records import PromptResult
from pez.text.projection import Projector
from pez.text.vocab import VocabOptions

log = logging.getLogger(__name__)


@contextlib.contextmanager
def deferred_sigint():
    """While optimising, the first Ctrl-C (or SIGTERM) asks the loop to stop between steps (so the state stays
    consistent and resumable); a second one interrupts at once. Yields a function telling whether a stop was asked."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    asked = []

    def handler(signum, frame):
        note(signum)  # taken from the caller: a public call passes it on after the search (pez.interrupts)
        if asked:
            raise KeyboardInterrupt
        asked.append(signum)

    previous = signal.signal(signal.SIGINT, handler)
    previous_term = signal.signal(signal.SIGTERM, handler)  # kill, docker stop, schedulers: the same clean stop
    try:
        yield lambda: bool(asked)
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)


class StopRequested(KeyboardInterrupt):
    """A Ctrl-C taken between steps: the state is consistent (a plain KeyboardInterrupt may come mid-step)."""


class PromptOptimizer(ABC):
    """The shared loop. Subclasses set ``name`` and ``config_class`` and implement the abstract methods.

    Args:
        objective: the task (see :class:`pez.objectives.base.Objective`).
        config: the method's config.
    """

    name: str = ""
    config_class: type[OptimizerConfig] = OptimizerConfig
    finished: bool = False  # set by a method whose search is over before ``steps``: the run ends ("finished")
    writes_text: bool = False  # a method that writes readable text: its prompts are decoded in sentence case
    slots = None  # pez.optim.slots.Slots: groups that refill with new targets as they finish (a folder run)

    def __init__(self, objective: Objective, config: OptimizerConfig):
        self._t_created = time.perf_counter()
        if config.prior_weight > 0:  # the prior steers every exact score of the search (pez.objectives.prior)
            from pez.models.lm import load_text_lm
            from pez.objectives.prior import PriorObjective

            prior = load_text_lm(config.prior, objective.vocab.embeddings.device)
            objective = PriorObjective(objective, prior, config.prior_weight, getattr(config, "prior_end", ""))
        self.obj = objective
        self.cfg = config
        vocab = objective.vocab
        if config.prompt_len > vocab.max_len:
            raise PezError(f"prompt-len {config.prompt_len} is longer than this model allows ({vocab.max_len})")
        self.E = vocab.embeddings.detach()  # (V, D)
        self.device = self.E.device
        options = VocabOptions(config.ascii_only, config.whole_words, config.blocklist)
        self.allowed = vocab.allowed_masks(options, config.prompt_len).to(self.device)  # (L, V), per position
        self.projector = Projector(self.E, self.allowed)
        self.gen = torch.Generator(device=self.device).manual_seed(config.seed)
        g = objective.n_groups
        self.group = torch.arange(g, device=self.device).repeat_interleave(config.restarts)  # (R,)
        self.run_fraction = 0.0  # share of the run done before the current step, for schedules (set by run)
        self.init(self.initial_ids())

    # -- what a method provides ---------------------------------------------------------------------------
    @abstractmethod
    def init(self, ids: torch.Tensor) -> None:
        """Set up the method's state from initial ids, shape (R, L)."""

    @abstractmethod
    def step(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One optimisation step: the hard ids evaluated (R, L) and their eval loss (R,) if the step has it."""

    @abstractmethod
    def state_dict(self) -> dict:
        """The method's state (tensors and plain data only)."""

    @abstractmethod
    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""

    def decode(self, ids: list[int]) -> str:
        """The text of a prompt's ids as :meth:`step` returns them (padding, negative ids, already removed): the
        objective's vocabulary by default; a method whose prompts come from another text (VGD: the proposer's
        words, cased and spaced as it wrote them) returns that text here. Tracking re-encodes and re-scores it.
        A search for readable text (:attr:`writes_text`, or a prior on the objective) gets it in sentence case
        where the model ignores case (:meth:`pez.text.vocab.Vocabulary.sentence_case`: the same ids)."""
        text = self.obj.vocab.decode(ids)
        if self.writes_text or getattr(self.obj, "prior", None) is not None:
            return self.obj.vocab.sentence_case(text)
        return text

    def result_extras(self, group: int) -> dict:
        """What a method adds to the result of ``group`` (:attr:`PromptResult.extras`); nothing by default."""
        return {}

    # -- shared helpers ------------------------------------------------------------------------------------
    @property
    def n_prompts(self) -> int:
        return len(self.group)

    def amp_dtype(self) -> torch.dtype | None:
        """The autocast dtype of the model's forwards: bf16 on CUDA when ``amp`` is on; None (fp32) elsewhere."""
        return torch.bfloat16 if self.device.type == "cuda" and self.cfg.amp else None

    def autocast(self, cache: bool = True):
        """Autocast at :meth:`amp_dtype` (the prompt itself stays in fp32); nothing without it. ``cache=False``
        recasts the weights at every use (what a captured CUDA graph needs)."""
        dtype = self.amp_dtype()
        return torch.autocast(self.device.type, dtype=dtype, cache_enabled=cache) if dtype else contextlib.nullcontext()

    def initial_ids(self) -> torch.Tensor:
        """Random allowed tokens, or the init text projected onto allowed tokens and padded at random (R, L)."""
        r, length = self.n_prompts, self.cfg.prompt_len
        if self.obj.n_groups == 1:
            ids = self.projector.sample((r, length), None, self.gen)
        else:  # each group starts where a run on that group alone would: its result does not depend on the batch
            seeded = torch.Generator(device=self.device).manual_seed(self.cfg.seed)
            first = self.projector.sample((self.cfg.restarts, length), None, seeded)
            ids = first.repeat(self.obj.n_groups, 1)
        if self.cfg.init_text:
            start = self.obj.vocab.encode(self.cfg.init_text)[:length]
            if start:
                start_ids = self.projector(self.E[torch.tensor([start], device=self.device)])  # (1, n)
                ids[:, : len(start)] = start_ids
        return ids

    def eval_loss(self, ids: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        """Eval loss of hard prompts ``ids`` (N, L) on all evaluation targets, shape (N,)."""
        with torch.no_grad(), self.autocast():
            return self.obj.eval_loss(self.E[ids], group, ids)

    # -- the loop ------------------------------------------------------------------------------------------
    def run(
        self,
        callback: Callable[[Progress], None] | None = None,
        checkpoint: str | os.PathLike | None = None,
        resume: bool = False,
        budget_seconds: float | None = None,
        budget_passes: int | None = None,
    ) -> list[PromptResult]:
        """Optimise; return the best prompt of each group (one result per group).

        Ctrl-C stops the loop at the end of the step under way and returns the best prompts so far (marked
        ``interrupted``); a second Ctrl-C stops at once. With ``checkpoint``, the state is saved every
        ``checkpoint_every`` steps and at the end (Ctrl-C included); ``resume`` continues from it exactly.

        Budgets end the run like its last step: after the step past which another step of the same cost would
        not fit in ``budget_seconds`` (the method's setup and its loop) or in ``budget_passes`` forward-equivalent
        passes (forward + 2 x backward sequences counted by the objective since the run started, before a resume
        included). The time is checked on the host after every step.
        """
        if checkpoint is not None and not os.path.isdir(os.path.dirname(os.path.abspath(checkpoint))):
            raise PezError(f"checkpoint {checkpoint}: its folder does not exist (create it first)")
        t_start = time.perf_counter()
        setup_s = t_start - self._t_created  # vocabulary masks, projection matrix, initial prompt
        budget = BudgetMeter(Budget(budget_seconds, budget_passes), setup_s=setup_s)  # the seconds count the setup
        exact = self.amp_dtype() is None  # a bf16 step's losses are re-scored in fp32 before they are reported
        tracker = Tracker(self.obj, self.group, self.cfg.restarts, exact=exact, decode=self.decode,
                          patience=self.cfg.patience, min_delta=self.cfg.min_delta)  # fmt: skip
        run = _RunState(self.obj)
        if resume:
            state = load_checkpoint(checkpoint, self.device, self.name, self.cfg.to_dict(), self.obj.describe())
            self._restore(state, tracker)
            run.resume_from(state)
        budget.prev = (run.elapsed0 + setup_s, passes(run.used0))
        with deferred_sigint() as stop_requested:
            try:
                self._loop(tracker, run, budget, stop_requested, callback, checkpoint)
            except StopRequested:
                run.interrupted, run.stopped_by = True, "interrupted"
                log.warning("interrupted after step %d: keeping the best prompt so far", run.done)
            except KeyboardInterrupt:  # a second Ctrl-C, or one from a callback between steps
                run.interrupted, run.stopped_by, run.consistent = True, "interrupted", not run.in_step
                if run.in_step:  # the method's state may hold half a step: keep the last checkpoint
                    log.warning("stopped mid-step %d: keeping the best prompt so far and the last checkpoint",
                                run.done + 1)  # fmt: skip
                else:
                    log.warning("interrupted after step %d: keeping the best prompt so far", run.done)
        if checkpoint is not None and run.consistent:
            self._save(checkpoint, run, tracker)
        if tracker.best_ids is None and run.last_ids is not None:  # stopped before the first full evaluation
            tracker.update(run.done - 1, run.last_ids, self.eval_loss(run.last_ids, self.group))
        tracker.sync(run.done, run.elapsed())
        if callback is not None and run.reported != run.done:
            try:  # the run is over: a stop asked for now only marks it interrupted
                callback(tracker.progress(run.done, self.cfg.steps, run.elapsed(), run.last_ids))
            except KeyboardInterrupt:
                run.interrupted = True
        results = tracker.results(self, run.done, run.interrupted, run.timings(setup_s, t_start))
        honest = getattr(self.obj, "honest", None)  # a prior's results are scored by the objective alone
        return honest(results) if honest is not None else results

    def _loop(
        self, tracker: Tracker, run: _RunState, budget: BudgetMeter, stop_requested, callback, checkpoint
    ) -> None:
        cfg = self.cfg
        for step in range(run.start, cfg.steps):
            if stop_requested():
                raise StopRequested
            if self.finished:
                run.stopped_by = "finished"
                return
            self.run_fraction = max(step / cfg.steps, budget.fraction(run.elapsed(), passes(run.used())))
            run.in_step = True  # from here to `done`, an interrupt leaves half a step behind
            ids, loss = self.step(step)
            run.last_ids = ids
            spent = budget.spent(run.elapsed(), passes(run.used()))
            last = step + 1 == cfg.steps or spent is not None or self.finished
            if loss is None and ((step + 1) % cfg.eval_every == 0 or last):
                loss = self.eval_loss(ids, self.group)
            if loss is not None:
                tracker.update(step, ids, loss)
            run.done = step + 1
            run.in_step = False
            if run.done % cfg.sync_every == 0:
                tracker.sync(run.done, run.elapsed())
                if tracker.non_finite_step is not None:
                    run.stopped_by = "non-finite"
                    log.warning(
                        "the loss went non-finite at step %d: stopping with the best prompt so far "
                        "(try a lower --lr, or --no-amp)",
                        tracker.non_finite_step,
                    )
                    return
                if callback is not None:
                    run.reported = run.done
                    callback(tracker.progress(run.done, cfg.steps, run.elapsed(), run.last_ids))
                if checkpoint is not None and run.done % cfg.checkpoint_every == 0 and not last:
                    self._save(checkpoint, run, tracker)
                if self.slots is not None:  # a folder run: groups that are done leave their slots to new targets
                    if self.slots.sync(tracker, run.done, run.elapsed()):
                        run.stopped_by = "finished"
                        return
                elif tracker.all_stopped:  # every group's best stopped rising (the early stop: cfg.patience)
                    run.stopped_by = "early-stop"
                    return
            if spent is not None:
                run.stopped_by, run.next_step_s = spent, budget.last_cost["budget_seconds"]
                return

    # -- checkpoints -----------------------------------------------------------------------------------------
    def _save(self, path, run: _RunState, tracker: Tracker) -> None:
        state = {
            "method": self.name,
            "config": self.cfg.to_dict(),
            "objective": self.obj.describe(),
            "step": run.done,
            "elapsed": run.elapsed(),
            "counts": run.used(),
            "generator": self.gen.get_state(),
            "method_state": self.state_dict(),
            "tracker": tracker.state_dict(),
        }
        try:
            save_checkpoint(path, state)
        except PezError as e:  # the search goes on and its result is kept; said once
            if not getattr(self, "_checkpoint_failed", False):
                log.warning("%s: the search goes on without checkpoints", e)
            self._checkpoint_failed = True

    def _restore(self, state: dict, tracker: Tracker) -> None:
        self.gen.set_state(state["generator"].cpu() if self.device.type != "cpu" else state["generator"])
        self.load_state_dict(state["method_state"])
        tracker.load_state_dict(state["tracker"])


class _RunState:
    """Where a run stands: steps done, time and passes used (a resumed run's earlier part included)."""

    def __init__(self, obj: Objective):
        self.obj = obj
        self.start = self.done = self.reported = 0
        self.elapsed0, self.used0 = 0.0, {"forward": 0, "backward": 0}
        self.counts0 = dict(obj.counts)
        self.t_loop = time.perf_counter()
        self.interrupted, self.stopped_by = False, "steps"
        self.consistent = True  # False after an interrupt mid-step: no checkpoint of a half step
        self.in_step = False
        self.last_ids: torch.Tensor | None = None  # the hard ids of the last step run
        self.next_step_s: float | None = None  # a budget stop: the seconds it forecast for the step it had no room for

    def resume_from(self, state: dict) -> None:
        self.start = self.done = self.reported = state["step"]
        self.elapsed0, self.used0 = state["elapsed"], state["counts"]
        self.t_loop = time.perf_counter()

    def elapsed(self) -> float:
        return self.elapsed0 + time.perf_counter() - self.t_loop

    def used(self) -> dict[str, int]:
        return {k: self.used0[k] + self.obj.counts[k] - self.counts0[k] for k in self.used0}

    def timings(self, setup_s: float, t_start: float) -> dict:
        loop_s = time.perf_counter() - self.t_loop
        steps_run = self.done - self.start
        counts = self.used()
        return {
            "setup_s": setup_s,
            "total_s": time.perf_counter() - t_start + setup_s,
            "loop_s": loop_s,
            "steps_run": steps_run,
            "steps_per_s": steps_run / loop_s if loop_s > 0 else math.nan,
            "s_per_step": loop_s / steps_run if steps_run else math.nan,
            "elapsed_s": self.elapsed(),
            "forward": counts["forward"],
            "backward": counts["backward"],
            "passes": passes(counts),
            "stopped_by": self.stopped_by,
            "next_step_s": self.next_step_s,
        }
