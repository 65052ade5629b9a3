"""Best-prompt tracking: on the device every step, honestly re-scored at sync points (docs/algorithms.md#tracking).

The step's own losses are compared on the device without a host round trip. Every ``sync_every`` steps the
prompts that improved are decoded, re-tokenised and, where the ids changed (or the step ran in bf16), scored
again on their text, so the best prompt is chosen by the score of the text the user gets.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from pez.errors import PezError
from pez.objectives.base import Objective
from pez.records import PromptResult, versions


@dataclass
class Progress:
    """Passed to callbacks at every sync point."""

    step: int
    steps: int
    best_score: float
    best_text: str
    elapsed: float
    ids: torch.Tensor | None = None  # the hard ids every prompt evaluated at the latest step, (R, L), on the device
    stage: str | None = None  # the stage of a search run in stages (readable mode: "PEZ", then "compose")


def staged(callback: Callable[[Progress], None] | None, stage: str) -> Callable[[Progress], None] | None:
    """``callback`` with every :class:`Progress` it receives marked as being from ``stage``."""
    if callback is None:
        return None
    return lambda p: callback(replace(p, stage=stage))


class Tracker:
    """Best prompt per restart: on the device every step, honestly re-scored at sync points.

    Args:
        obj: the objective.
        group: group of each prompt, shape (R,).
        restarts: prompts per group.
        exact: whether the step's own losses are exact (fp32); if not, improved prompts are always re-scored.
        decode: the text of a prompt's ids (default: the objective's vocabulary). Negative ids are padding:
            a method whose prompts differ in length pads them on the right with -1, and they are dropped first.
        patience, min_delta: the early stop (:meth:`sync`): a group whose best honest score has not risen by more
            than ``min_delta`` for ``patience`` steps stops; its best prompt is kept as it is from then on
            (None: no early stop).
    """

    def __init__(
        self,
        obj: Objective,
        group: torch.Tensor,
        restarts: int,
        exact: bool,
        decode: Callable[[list[int]], str] | None = None,
        patience: int | None = None,
        min_delta: float = 0.0,
    ):
        self.obj, self.group, self.restarts, self.exact = obj, group, restarts, exact
        self.decode = decode or obj.vocab.decode
        self._shown: tuple[str | None, float] = (None, math.nan)  # the text last shown and its own score
        self.group_of = group.tolist()  # the same on the host, for bookkeeping at sync points
        r = len(group)
        self.best_loss = torch.full((r,), math.inf, device=group.device)
        self.best_ids: torch.Tensor | None = None  # (R, L)
        self.changed = torch.zeros(r, dtype=torch.bool, device=group.device)
        self.pending: list[tuple[int, torch.Tensor]] = []  # (step, loss (R,)) not yet copied to the host
        self.honest: list[dict | None] = [None] * r  # per restart: loss, internal_loss, ids, text, text_ids
        self.history: list[list[dict]] = [[] for _ in range(obj.n_groups)]
        self.best_history: list[list[dict]] = [[] for _ in range(obj.n_groups)]
        self.non_finite_step: int | None = None  # the first step whose loss was NaN or infinite, seen at a sync
        # the early stop, per group: the score of the last gain that counted, its step, the step the group stopped
        self.patience, self.min_delta = patience, min_delta
        g = obj.n_groups
        self.gain = [{"score": -math.inf, "step": 0, "stopped": None} for _ in range(g)]
        self.offset = [(0, 0.0)] * g  # (step, seconds) at which each group's search began (a refilled slot)
        self.active = torch.ones(r, dtype=torch.bool, device=group.device)  # the prompts whose group still searches
        self.frozen = False  # whether a group has stopped (then ``active`` masks the updates)

    def update(self, step: int, ids: torch.Tensor, loss: torch.Tensor) -> None:
        """Record a step's evaluated ids (R, L) and loss (R,); no host synchronisation."""
        loss = loss.detach().float()
        if self.best_ids is None:
            self.best_ids = ids.clone()
        improved = loss < self.best_loss  # (R,)
        if self.frozen:  # a stopped group keeps the best prompt it had when it stopped
            improved &= self.active
        self.best_loss = torch.where(improved, loss, self.best_loss)
        self.best_ids = torch.where(improved[:, None], ids, self.best_ids)
        self.changed |= improved
        self.pending.append((step, loss))

    def sync(self, step: int, elapsed: float) -> None:
        """Copy history to the host and honestly re-score the prompts that improved since the last sync."""
        if self.pending:
            losses = torch.stack([l for _, l in self.pending]).cpu()  # (S, R)
            searching = [g for g, gain in enumerate(self.gain) if gain["stopped"] is None]
            for (s, _), row in zip(self.pending, losses.tolist()):
                if self.non_finite_step is None and not all(math.isfinite(x) for x in row):
                    self.non_finite_step = s + 1
                for g in searching:
                    mine = [-x for x, gg in zip(row, self.group_of) if gg == g]
                    at = s + 1 - self.offset[g][0]
                    self.history[g].append({"step": at, "score": max(mine), "mean_score": sum(mine) / len(mine)})
            self.pending = []
        self._rescore(step, elapsed)
        if self.patience:
            self._early_stop(step)

    def _rescore(self, step: int, elapsed: float) -> None:
        idx = self.changed.nonzero().squeeze(1).tolist()
        if not idx:
            return
        self.changed.zero_()
        vocab = self.obj.vocab
        ids = [[t for t in row if t >= 0] for row in self.best_ids[idx].tolist()]
        internal = self.best_loss[idx].tolist()
        texts = [self.decode(i) for i in ids]
        text_ids = [vocab.encode(t)[: vocab.max_len] for t in texts]
        honest = list(internal)
        redo = [k for k in range(len(idx)) if not (self.exact and text_ids[k] == ids[k])]
        if redo:
            group = self.group[[idx[k] for k in redo]]
            scored = self.obj.eval_loss_ids([text_ids[k] for k in redo], group).float().tolist()
            for k, v in zip(redo, scored):
                honest[k] = v
        before = [self._group_best(g) for g in range(len(self.history))]
        for k, r in enumerate(idx):
            cur = self.honest[r]
            if cur is None or honest[k] < cur["loss"]:
                self.honest[r] = {
                    "loss": honest[k],
                    "internal_loss": internal[k],
                    "ids": ids[k],
                    "text": texts[k],
                    "text_ids": text_ids[k],
                }
        for g, old in enumerate(before):
            new = self._group_best(g)
            if new is not None and (old is None or new["loss"] < old["loss"]):
                at, t0 = self.offset[g]
                entry = {"step": step - at, "time_s": elapsed - t0, "score": -new["loss"], "text": new["text"]}
                self.best_history[g].append(entry)

    def _early_stop(self, step: int) -> None:
        """Stop each group whose best honest score rose by no more than ``min_delta`` in ``patience`` steps. It
        reads the tracked scores only: a run with the early stop is the same as without it up to where it stops."""
        for g, gain in enumerate(self.gain):
            best = self._group_best(g)
            if gain["stopped"] is not None or best is None:
                continue
            if -best["loss"] > gain["score"] + self.min_delta:
                gain.update(score=-best["loss"], step=step)
            elif step - gain["step"] >= self.patience:
                gain["stopped"] = step
                self.active &= self.group != g
                self.frozen = True

    def stopped(self, g: int) -> int | None:
        """The step (of the group's own search) at which group ``g`` stopped early, or None."""
        at = self.gain[g]["stopped"]
        return None if at is None else at - self.offset[g][0]

    @property
    def all_stopped(self) -> bool:
        return all(gain["stopped"] is not None for gain in self.gain)

    def restart_group(self, g: int, step: int, elapsed: float) -> None:
        """Forget group ``g``'s prompts: its search starts again at ``step`` (a slot given to the next target).
        Call at a sync point, after its result was taken."""
        rows = self.group == g
        self.best_loss = torch.where(rows, math.inf, self.best_loss)
        self.changed &= ~rows
        self.active |= rows
        for r, gg in enumerate(self.group_of):
            if gg == g:
                self.honest[r] = None
        self.history[g], self.best_history[g] = [], []
        self.gain[g] = {"score": -math.inf, "step": step, "stopped": None}
        self.offset[g] = (step, elapsed)

    def _group_best(self, g: int) -> dict | None:
        mine = [h for h, gg in zip(self.honest, self.group_of) if gg == g and h is not None]
        return min(mine, key=lambda h: h["loss"]) if mine else None

    def progress(self, step: int, steps: int, elapsed: float, ids: torch.Tensor | None = None) -> Progress:
        """The best prompt so far of the first group and its score. With a prior on the objective the search ranks
        by score + prior, but the score shown is the objective's own on that text, as the result's will be."""
        best = self._group_best(0)
        score, text = (-best["loss"], best["text"]) if best else (math.nan, "")
        base = getattr(self.obj, "base", None)
        if best and base is not None:
            if self._shown[0] != text:
                group = torch.zeros(1, dtype=torch.long, device=self.group.device)
                with torch.no_grad():
                    self._shown = (text, -float(base.eval_loss_ids([best["text_ids"]], group)[0]))
            score = self._shown[1]
        return Progress(step, steps, score, text, elapsed, ids)

    def state_dict(self) -> dict:
        return {
            "best_loss": self.best_loss,
            "best_ids": self.best_ids,
            "changed": self.changed,
            "pending_steps": [s for s, _ in self.pending],
            "pending_loss": [l for _, l in self.pending],
            "honest": self.honest,
            "history": self.history,
            "best_history": self.best_history,
            "gain": self.gain,
            "offset": self.offset,
            "active": self.active,
        }

    def load_state_dict(self, state: dict) -> None:
        self.best_loss = state["best_loss"]
        self.best_ids = state["best_ids"]
        self.changed = state["changed"]
        self.pending = list(zip(state["pending_steps"], state["pending_loss"]))
        self.honest = state["honest"]
        self.history = state["history"]
        self.best_history = state["best_history"]
        if "gain" in state:  # a checkpoint written before the early stop existed has none
            self.gain, self.offset, self.active = state["gain"], state["offset"], state["active"]
            self.frozen = not bool(self.active.all())

    def results(self, opt, steps_done: int, interrupted: bool, timings: dict) -> list[PromptResult]:
        """One :class:`PromptResult` per group, for the optimiser ``opt`` (its name, config and extras)."""
        return [self.result(opt, g, steps_done, interrupted, timings) for g in range(opt.obj.n_groups)]

    def result(self, opt, g: int, steps_done: int, interrupted: bool, timings: dict) -> PromptResult:
        """The :class:`PromptResult` of group ``g``. A group that stopped early says so in its ``timings``
        (``stopped_by`` "early-stop", ``stopped_at``: the step, ``last_gain_at``: the step of its last gain that
        counted) and its ``steps_done`` is the step at which it stopped."""
        obj, cfg = opt.obj, opt.cfg
        best = self._group_best(g)
        if best is None:
            if self.non_finite_step is not None:
                raise PezError(
                    f"the loss was not finite from step {self.non_finite_step} on, so no prompt was ever scored: "
                    "try a lower --lr, or --no-amp"
                )
            raise PezError("the run stopped before its first step: nothing to report")
        stopped = self.stopped(g)
        if stopped is not None:
            last_gain = self.gain[g]["step"] - self.offset[g][0]
            timings = {**timings, "stopped_by": "early-stop", "stopped_at": stopped, "last_gain_at": last_gain}
            steps_done = stopped
        restarts = [
            {"text": h["text"], "score": -h["loss"]} for h, gg in zip(self.honest, self.group_of) if gg == g and h
        ]
        info = obj.describe()
        return PromptResult(
            text=best["text"],
            ids=best["ids"],
            score=-best["loss"],
            internal_score=-best["internal_loss"],
            text_ids=best["text_ids"],
            retokenized=best["text_ids"] != best["ids"],
            method=opt.name,
            score_name=obj.score_name,
            model=info.get("model", ""),
            seed=cfg.seed,
            config=cfg.to_dict(),
            objective=info,
            restarts=restarts,
            target_scores=obj.target_scores(best["text_ids"], g),
            history=self.history[g],
            best_history=self.best_history[g],
            timings=timings,
            versions=versions(),
            steps_done=steps_done,
            interrupted=interrupted,
            extras=opt.result_extras(g),
        )
