"""How ``pez invert-dataset`` searches the images of a folder (:func:`pez.jobs.invert_dataset.invert_dataset`):
batch by batch, or, with the early stop on a method that can restart a group (PEZ), in slots that refill: an image
whose prompt stopped improving leaves its slot to the next image, so the batch stays full
(:mod:`pez.optim.slots`). Either way each image's result is the one it gets alone with the same seed and stop rule.

Budgets: ``budget`` is each image's (its batch's objective and setup counted), ``run_budget`` the whole run's
(the model load counted), shared out among the images still to do; when it is spent, the images not started are
left for a rerun and the ones under way keep their best prompt so far. A batch is not started when what is left
of the run's budget cannot pay for its least (its images and objective, its method's setup and one step, as the
last batch's recorded timings give them): it would overrun the budget.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from pez.errors import PezError
from pez.images.sources import ImageItem
from pez.jobs.invert import make_objective
from pez.models import LoadedModel
from pez.models.lm import load_judge
from pez.optim import Budget, optimize_each
from pez.optim.budget import remaining
from pez.optim.config import OptimizerConfig
from pez.optim.registry import method_for
from pez.optim.slots import Slots, can_refill
from pez.records import DatasetRun, PromptResult
from pez.text.readability import judge_results

log = logging.getLogger(__name__)


@dataclass
class FolderSearch:
    """The search of a folder's images, writing each result as soon as it is done.

    Args:
        loaded: the CLIP model.
        cfg: the method's config (``patience``: the early stop, which turns the slots on).
        batch: images searched together.
        write: appends rows to the results file (flushed and synced).
        run: the :class:`DatasetRun` it counts into (``done``, ``skipped``, ``mean_score``, ``budget_spent``).
        judge: the causal LM of the rows' ``readability`` (None: none).
        budget, run_budget: each image's and the whole run's :class:`Budget` (None: none).
        progress: ``progress(done, to_do, text)`` after every image (``text``: images per hour, mean score).
        t0: when the job started (the whole run's seconds count from here).
    """

    loaded: LoadedModel
    cfg: OptimizerConfig
    batch: int
    write: Callable[[Sequence[dict]], None]
    run: DatasetRun
    judge: str | None = None
    budget: Budget | None = None
    run_budget: Budget | None = None
    progress: Callable[[int, int, str], None] | None = None
    t0: float = field(default_factory=time.perf_counter)
    scores: list[float] = field(default_factory=list)
    to_do: int = 0
    least_s: float = 0.0  # the least a batch costs (loads, setup, one step), as the last batch's timings say

    def search(self, todo: Sequence[ImageItem]) -> None:
        """Search every image of ``todo``; raises KeyboardInterrupt when stopped (what is done stays written)."""
        self.to_do = len(todo)
        self._judge = None  # loaded with the first result, on its model's device
        refill = self.cfg.patience is not None and self.batch > 1 and len(todo) > 1
        if refill and hasattr(method_for(self.cfg), "restart_group") and self.cfg.prior_weight == 0:
            self._slots(iter(todo))
        else:
            for start in range(0, len(todo), self.batch):
                left = self._left()
                if left is not None and (left <= 0 or left < self.least_s):
                    self.run.budget_spent = True
                    log.warning("the run's budget is spent (%.3g s left, a batch takes at least %.3g s): %d images "
                                "are left for a rerun", max(left, 0.0), self.least_s, len(todo) - start)  # fmt: skip
                    return
                self._batch(todo[start : start + self.batch], len(todo) - start)

    # -- budgets ---------------------------------------------------------------------------------------------
    def _left(self) -> float | None:
        """Seconds left of the whole run's budget (None: no such budget)."""
        if self.run_budget is None or self.run_budget.seconds is None:
            return None
        return self.run_budget.seconds - (time.perf_counter() - self.t0)

    def _image_seconds(self, share: float) -> float | None:
        """Each image's seconds: its own budget, or ``share`` of what is left of the run's (at least the least a
        batch costs, when that is left), whichever is less."""
        own = self.budget.seconds if self.budget is not None else None
        left = self._left()
        if left is not None:
            left = max(min(max(left * share, self.least_s), left), 1e-3)
        return min((s for s in (own, left) if s is not None), default=None)

    # -- rows ------------------------------------------------------------------------------------------------
    def _load(self, items: Iterator[ImageItem]) -> tuple[str, object] | None:
        """The next readable image of ``items`` as (key, image); unreadable ones are recorded as skipped."""
        for it in items:
            try:
                return it.key, it.load()
            except PezError as e:
                row = {"image": it.key, "skipped": str(e)}
                self.write([row])
                self.run.skipped += 1
                self.run.failures.append(row)
        return None

    def _record(self, pairs: Sequence[tuple[str, PromptResult]], device: torch.device) -> None:
        if self.judge and self._judge is None:
            self._judge = load_judge(self.judge, device)
        judge_results([res for _, res in pairs], self._judge)
        rows = []
        for key, res in pairs:
            res.objective = {**res.objective, "targets": [f"image:{key}"]}
            res.target_scores = [{**t, "target": f"image:{key}"} for t in res.target_scores]
            rows.append({"image": key, **res.to_dict()})
            self.scores.append(res.score)
        self.write(rows)
        self.run.done += len(rows)
        self.run.mean_score = sum(self.scores) / len(self.scores)
        if self.progress is not None:
            seconds = time.perf_counter() - self.t0
            rate = 3600 * self.run.done / seconds if seconds > 0 else 0.0
            name = pairs[0][1].score_name
            self.progress(self.run.done + self.run.skipped, self.to_do,
                          f"{rate:.0f} images/h, mean {name} {self.run.mean_score:.4f}")  # fmt: skip

    # -- batch by batch --------------------------------------------------------------------------------------
    def _batch(self, items: Sequence[ImageItem], still: int) -> None:
        t_batch = time.perf_counter()
        loaded, it = [], iter(items)
        while (nxt := self._load(it)) is not None:
            loaded.append(nxt)
        if not loaded:
            return
        obj = make_objective(self.loaded, images=[im for _, im in loaded])
        obj.set_groups(torch.eye(len(loaded)))  # one prompt group per image
        seconds = self._image_seconds(len(items) / still)
        budget = remaining(Budget(seconds), time.perf_counter() - t_batch) if seconds is not None else None
        before = time.perf_counter() - t_batch
        results = optimize_each(obj, self.cfg, budget=budget, judge=None)
        if any(r.interrupted for r in results):  # a stopped batch is not finished: a rerun redoes it
            raise KeyboardInterrupt
        t = results[0].timings
        step_s = t["loop_s"] / t["steps_run"] if t.get("steps_run") else 0.0
        self.least_s = before + t["setup_s"] + step_s
        self._record([(key, res) for (key, _), res in zip(loaded, results)], obj.vocab.embeddings.device)

    # -- slots that refill -----------------------------------------------------------------------------------
    def _slots(self, items: Iterator[ImageItem]) -> None:
        t_first = time.perf_counter()
        first = []
        while len(first) < self.batch and (nxt := self._load(items)) is not None:
            first.append(nxt)
        if not first:
            return
        keys = [k for k, _ in first]
        obj = make_objective(self.loaded, images=[im for _, im in first])
        obj.set_groups(torch.eye(len(first)))
        opt = method_for(self.cfg)(obj, self.cfg)
        device = obj.vocab.embeddings.device
        seconds = self._image_seconds(len(first) / max(self.to_do, 1))
        if not can_refill(opt):  # one image (or a method that cannot restart a group): a plain batch
            spent = time.perf_counter() - t_first
            results = opt.run(budget_seconds=None if seconds is None else max(seconds - spent, 1e-3))
            if any(r.interrupted for r in results):
                raise KeyboardInterrupt
            self._record(list(zip(keys, results)), device)
            return

        def refill(g: int) -> bool:
            nxt = self._load(items)
            if nxt is None:
                return False
            keys[g] = nxt[0]
            new = make_objective(self.loaded, images=[nxt[1]])
            with torch.no_grad():
                obj.targets[g].copy_(new.targets[0])  # in place: a captured CUDA graph reads the same memory
            obj.info["targets"][g] = new.info["targets"][0]
            return True

        def finish(g: int, res: PromptResult) -> None:
            self._record([(keys[g], res)], device)

        slots = Slots(opt, refill, finish, seconds=seconds, total_seconds=self._left())
        results = opt.run()
        if results and results[0].interrupted:  # the images under way are redone by a rerun
            raise KeyboardInterrupt
        self.run.budget_spent = slots.out_of_time
