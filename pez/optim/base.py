"""What every prompt optimiser shares: the config fields, the step loop, best-prompt tracking, checkpoints.

A method subclasses :class:`PromptOptimizer` and writes three things: how to start from initial ids
(:meth:`~PromptOptimizer.init`), one step (:meth:`~PromptOptimizer.step`, returning the hard ids it evaluated and
their loss), and its state for checkpoints. The loop here tracks the best prompt of every restart on the device
without a host round trip; at sync points (every ``sync_every`` steps) the prompts that improved are decoded,
re-tokenised and, where the ids changed, scored again, so the best prompt is chosen by the score of its text.

A run can also stop on a budget of wall-clock seconds or of forward-equivalent passes (forward + 2 x backward
sequences, counted by the objective), so that methods with very different steps can be compared fairly. The
helpers at the end (first-order swap scores, batched candidate evaluation, the re-tokenisation filter) are shared
by the discrete methods (HotFlip, AutoPrompt, GCG, random search).
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
from dataclasses import asdict, dataclass, field, fields

import torch

from pez.errors import PezError
from pez.objectives.base import Objective
from pez.result import PromptResult, versions
from pez.vocab import Projector, VocabOptions

log = logging.getLogger(__name__)


def config_field(default, text: str):
    return field(default=default, metadata={"help": text})


@dataclass
class OptimizerConfig:
    """Fields shared by all methods. Invalid values raise :class:`PezError` on creation."""

    prompt_len: int = config_field(16, "number of tokens in the prompt")
    steps: int = config_field(3000, "optimisation steps")
    restarts: int = config_field(1, "independent prompts optimised together in one batch; the best is returned")
    seed: int = config_field(0, "seed of the run's torch.Generator (initial prompt, target sampling)")
    batch_size: int | None = config_field(1, "targets drawn per prompt per step for the gradient (None: all)")
    init_text: str | None = config_field(None, "start from this text instead of random tokens")
    ascii_only: bool = config_field(True, "allow only tokens whose text is printable ASCII")
    whole_words: bool = config_field(True, "allow only tokens that are whole words, so the text re-tokenises the same")
    blocklist: tuple[str, ...] = config_field((), "never use tokens containing any of these (case-insensitive)")
    sync_every: int = config_field(10, "steps between host syncs: progress, honest re-scoring of improved prompts")
    eval_every: int = config_field(50, "steps between full evaluations when a step sees only a sample of the targets")
    checkpoint_every: int = config_field(100, "steps between checkpoints (a multiple of sync_every)")
    amp: bool = config_field(True, "bf16 autocast on CUDA (the prompt itself stays in fp32)")

    def __post_init__(self):
        self.blocklist = tuple(self.blocklist)
        positive = ("prompt_len", "steps", "restarts", "sync_every", "eval_every", "checkpoint_every")
        for name in positive:
            if getattr(self, name) <= 0:
                raise PezError(f"{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.batch_size is not None and self.batch_size <= 0:
            raise PezError(f"batch-size must be positive, got {self.batch_size}")
        if self.checkpoint_every % self.sync_every:
            raise PezError(
                f"checkpoint-every ({self.checkpoint_every}) must be a multiple of sync-every ({self.sync_every})"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["blocklist"] = list(self.blocklist)
        return d

    @classmethod
    def from_dict(cls, d: dict):
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class CandidateConfig(OptimizerConfig):
    """Fields shared by the methods that score candidate prompts exactly (AutoPrompt, GCG, HotFlip, random)."""

    eval_chunk: int = config_field(512, "candidate prompts per forward when scoring them (halved on CUDA OOM)")

    def __post_init__(self):
        super().__post_init__()
        if self.eval_chunk <= 0:
            raise PezError(f"eval-chunk must be positive, got {self.eval_chunk}")


@dataclass
class Progress:
    """Passed to callbacks at every sync point."""

    step: int
    steps: int
    best_score: float
    best_text: str
    elapsed: float


@contextlib.contextmanager
def _deferred_sigint():
    """While optimising, the first Ctrl-C asks the loop to stop between steps (so the state stays consistent
    and resumable); a second one interrupts at once. Yields a function telling whether a stop was asked."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    asked = []

    def handler(signum, frame):
        if asked:
            raise KeyboardInterrupt
        asked.append(signum)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(asked)
    finally:
        signal.signal(signal.SIGINT, previous)


# Changing these between a checkpoint and its resume would change the run, so they must match.
_RESUME_FREE = {"steps", "checkpoint_every"}


def _passes(counts: dict[str, int]) -> int:
    """Forward-equivalent passes: a backward costs about two forwards."""
    return counts["forward"] + 2 * counts["backward"]


class _Budget:
    """Wall-clock seconds and forward-equivalent passes a run may use (None: no limit).

    After each step, :meth:`spent` says whether another step of the same cost would overrun a budget.
    """

    def __init__(self, seconds: float | None, passes: int | None, seconds0: float, passes0: int):
        self.limits = {"budget_seconds": seconds, "budget_passes": passes}
        self.prev = (seconds0, passes0)

    def fraction(self, seconds: float, passes: int) -> float:
        """The share of the budgets used, 0 to 1 (0 without budgets)."""
        used = {"budget_seconds": seconds, "budget_passes": passes}
        return min(1.0, max((used[k] / v for k, v in self.limits.items() if v is not None), default=0.0))

    def spent(self, seconds: float, passes: int) -> str | None:
        """The name of the budget that the next step would overrun, or None."""
        now = (seconds, passes)
        cost = [n - p for n, p in zip(now, self.prev)]
        self.prev = now
        for (name, limit), n, c in zip(self.limits.items(), now, cost):
            if limit is not None and n + c > limit:
                return name
        return None


class PromptOptimizer(ABC):
    """The shared loop. Subclasses set ``name`` and ``config_class`` and implement the abstract methods.

    Args:
        objective: the task (see :class:`pez.objectives.base.Objective`).
        config: the method's config.
    """

    name: str = ""
    config_class: type[OptimizerConfig] = OptimizerConfig

    def __init__(self, objective: Objective, config: OptimizerConfig):
        self._t_created = time.perf_counter()
        self.obj = objective
        self.cfg = config
        vocab = objective.vocab
        if config.prompt_len > vocab.max_len:
            raise PezError(f"prompt-len {config.prompt_len} is longer than this model allows ({vocab.max_len})")
        self.E = vocab.embeddings.detach()  # (V, D)
        self.device = self.E.device
        options = VocabOptions(config.ascii_only, config.whole_words, config.blocklist)
        self.allowed = vocab.allowed_mask(options).to(self.device)  # (V,)
        self.projector = Projector(self.E, self.allowed)
        self.gen = torch.Generator(device=self.device).manual_seed(config.seed)
        g = objective.n_groups
        self.group = torch.arange(g, device=self.device).repeat_interleave(config.restarts)  # (R,)
        self.progress = 0.0  # share of the run done before the current step, for schedules (set by run)
        self._chunk_cap = math.inf  # candidates per forward, lowered on CUDA out-of-memory
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

    # -- shared helpers ------------------------------------------------------------------------------------
    @property
    def n_prompts(self) -> int:
        return len(self.group)

    def autocast(self):
        """bf16 autocast on CUDA when ``amp`` is on; nothing elsewhere."""
        if self.device.type == "cuda" and self.cfg.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def initial_ids(self) -> torch.Tensor:
        """Random allowed tokens, or the init text projected onto allowed tokens and padded at random (R, L)."""
        r, length = self.n_prompts, self.cfg.prompt_len
        allowed_ids = self.projector.allowed_ids
        pick = torch.randint(len(allowed_ids), (r, length), generator=self.gen, device=self.device)
        ids = allowed_ids[pick]
        if self.cfg.init_text:
            start = self.obj.vocab.encode(self.cfg.init_text)[:length]
            if start:
                start_ids = self.projector(self.E[torch.tensor(start, device=self.device)])
                ids[:, : len(start)] = start_ids
        return ids

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
        not fit in ``budget_seconds`` of loop time or in ``budget_passes`` forward-equivalent passes (forward +
        2 x backward sequences counted by the objective since the run started, before a resume included). The
        time is checked on the host after every step.
        """
        cfg, obj = self.cfg, self.obj
        for name, value in (("budget-seconds", budget_seconds), ("budget-passes", budget_passes)):
            if value is not None and value <= 0:
                raise PezError(f"{name} must be positive, got {value}")
        t_start = time.perf_counter()
        setup_s = t_start - self._t_created  # vocabulary masks, projection matrix, initial prompt
        tracker = Tracker(obj, self.group, cfg.restarts, exact=self.device.type != "cuda" or not cfg.amp)
        start, elapsed0, used0 = 0, 0.0, {"forward": 0, "backward": 0}
        if resume:
            if checkpoint is None or not os.path.exists(checkpoint):
                raise PezError(f"nothing to resume: checkpoint {checkpoint} does not exist")
            start, elapsed0, used0 = self._load_checkpoint(checkpoint, tracker)
        counts0 = dict(obj.counts)
        interrupted, stopped_by = False, "steps"
        done = reported = start
        t_loop = time.perf_counter()

        def elapsed() -> float:
            return elapsed0 + time.perf_counter() - t_loop

        def used() -> dict[str, int]:
            return {k: used0[k] + obj.counts[k] - counts0[k] for k in used0}

        budget = _Budget(budget_seconds, budget_passes, elapsed0, _passes(used0))
        with _deferred_sigint() as stop_requested:
            try:
                for step in range(start, cfg.steps):
                    if stop_requested():
                        raise KeyboardInterrupt
                    self.progress = max(step / cfg.steps, budget.fraction(elapsed(), _passes(used())))
                    ids, loss = self.step(step)
                    spent = budget.spent(elapsed(), _passes(used()))
                    last = step + 1 == cfg.steps or spent is not None
                    if loss is None and ((step + 1) % cfg.eval_every == 0 or last):
                        with torch.no_grad(), self.autocast():
                            loss = obj.eval_loss(self.E[ids], self.group)
                    if loss is not None:
                        tracker.update(step, ids, loss)
                    done = step + 1
                    if (step + 1) % cfg.sync_every == 0:
                        tracker.sync(step + 1, elapsed())
                        if callback is not None:
                            reported = step + 1
                            callback(tracker.progress(step + 1, cfg.steps, elapsed()))
                        if checkpoint is not None and (step + 1) % cfg.checkpoint_every == 0 and not last:
                            self._save_checkpoint(checkpoint, step + 1, elapsed(), tracker, used())
                    if spent is not None:
                        stopped_by = spent
                        break
            except KeyboardInterrupt:
                interrupted, stopped_by = True, "interrupted"
                log.warning("interrupted after step %d: keeping the best prompt so far", done)
        if checkpoint is not None:
            self._save_checkpoint(checkpoint, done, elapsed(), tracker, used())
        tracker.sync(done, elapsed())
        if callback is not None and reported != done:
            callback(tracker.progress(done, cfg.steps, elapsed()))
        loop_s = time.perf_counter() - t_loop
        steps_run = done - start
        counts = used()
        timings = {
            "setup_s": setup_s,
            "total_s": time.perf_counter() - t_start + setup_s,
            "loop_s": loop_s,
            "steps_run": steps_run,
            "steps_per_s": steps_run / loop_s if loop_s > 0 else math.nan,
            "s_per_step": loop_s / steps_run if steps_run else math.nan,
            "elapsed_s": elapsed(),
            "forward": counts["forward"],
            "backward": counts["backward"],
            "passes": _passes(counts),
            "stopped_by": stopped_by,
        }
        return tracker.results(self, done, interrupted, timings)

    @torch.no_grad()
    def candidate_losses(self, ids: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        """Eval loss of candidate prompts, in batched forwards of at most ``eval_chunk`` prompts.

        On CUDA out-of-memory the chunk is halved for the rest of the run (the failed forward stays counted).

        Args:
            ids: candidate prompts, shape (N, L).
            group: the group of each candidate, shape (N,).

        Returns:
            their loss on all evaluation targets, shape (N,).
        """
        out, start = [], 0
        while start < len(ids):
            part = ids[start : start + min(self.cfg.eval_chunk, self._chunk_cap)]  # (n, L)
            try:
                with self.autocast():
                    out.append(self.obj.eval_loss(self.E[part], group[start : start + len(part)]).float())
            except torch.OutOfMemoryError:
                if len(part) == 1:
                    raise
                self._chunk_cap = len(part) // 2
                torch.cuda.empty_cache()
                log.warning("out of memory scoring candidates: %d per forward from now on", self._chunk_cap)
                continue
            start += len(part)
        return torch.cat(out) if out else torch.zeros(0, device=self.device)

    def result_extras(self, group: int) -> dict:
        """What a method adds to the result of ``group`` (:attr:`PromptResult.extras`); nothing by default."""
        return {}

    # -- checkpoints -----------------------------------------------------------------------------------------
    def _save_checkpoint(self, path, step: int, elapsed: float, tracker: Tracker, counts: dict) -> None:
        state = {
            "method": self.name,
            "config": self.cfg.to_dict(),
            "objective": self.obj.describe(),
            "step": step,
            "elapsed": elapsed,
            "counts": counts,
            "generator": self.gen.get_state(),
            "method_state": self.state_dict(),
            "tracker": tracker.state_dict(),
        }
        path = os.fspath(path)
        tmp = f"{path}.tmp"
        torch.save(state, tmp)
        os.replace(tmp, path)

    def _load_checkpoint(self, path, tracker: Tracker) -> tuple[int, float, dict]:
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as e:  # a truncated or foreign file: say which, do not guess
            raise PezError(f"cannot read checkpoint {path}: {e}") from None
        if state.get("method") != self.name:
            raise PezError(f"checkpoint {path} was made by method {state.get('method')!r}, not {self.name!r}")
        mine = self.cfg.to_dict()
        for k, v in state["config"].items():
            if k not in _RESUME_FREE and mine.get(k) != v:
                raise PezError(f"checkpoint {path} was made with {k}={v!r}, not {mine.get(k)!r}: use the same options")
        if state["objective"] != self.obj.describe():
            raise PezError(f"checkpoint {path} was made for other targets or another model")
        self.gen.set_state(state["generator"].cpu() if self.device.type != "cpu" else state["generator"])
        self.load_state_dict(state["method_state"])
        tracker.load_state_dict(state["tracker"])
        return state["step"], state["elapsed"], state.get("counts", {"forward": 0, "backward": 0})


class Tracker:
    """Best prompt per restart: on the device every step, honestly re-scored at sync points.

    Args:
        obj: the objective.
        group: group of each prompt, shape (R,).
        restarts: prompts per group.
        exact: whether the step's own losses are exact (fp32); if not, improved prompts are always re-scored.
    """

    def __init__(self, obj: Objective, group: torch.Tensor, restarts: int, exact: bool):
        self.obj, self.group, self.restarts, self.exact = obj, group, restarts, exact
        self.group_of = group.tolist()  # the same on the host, for bookkeeping at sync points
        r = len(group)
        self.best_loss = torch.full((r,), math.inf, device=group.device)
        self.best_ids: torch.Tensor | None = None  # (R, L)
        self.changed = torch.zeros(r, dtype=torch.bool, device=group.device)
        self.pending: list[tuple[int, torch.Tensor]] = []  # (step, loss (R,)) not yet copied to the host
        self.honest: list[dict | None] = [None] * r  # per restart: loss, internal_loss, ids, text, text_ids
        self.history: list[list[dict]] = [[] for _ in range(obj.n_groups)]
        self.best_history: list[list[dict]] = [[] for _ in range(obj.n_groups)]

    def update(self, step: int, ids: torch.Tensor, loss: torch.Tensor) -> None:
        """Record a step's evaluated ids (R, L) and loss (R,); no host synchronisation."""
        loss = loss.detach().float()
        if self.best_ids is None:
            self.best_ids = ids.clone()
        improved = loss < self.best_loss  # (R,)
        self.best_loss = torch.where(improved, loss, self.best_loss)
        self.best_ids = torch.where(improved[:, None], ids, self.best_ids)
        self.changed |= improved
        self.pending.append((step, loss))

    def sync(self, step: int, elapsed: float) -> None:
        """Copy history to the host and honestly re-score the prompts that improved since the last sync."""
        if self.pending:
            losses = torch.stack([l for _, l in self.pending]).cpu()  # (S, R)
            for (s, _), row in zip(self.pending, losses.tolist()):
                for g in range(len(self.history)):
                    mine = [-x for x, gg in zip(row, self.group_of) if gg == g]
                    self.history[g].append({"step": s + 1, "score": max(mine), "mean_score": sum(mine) / len(mine)})
            self.pending = []
        idx = self.changed.nonzero().squeeze(1).tolist()
        if not idx:
            return
        self.changed.zero_()
        vocab = self.obj.vocab
        ids = self.best_ids[idx].tolist()
        internal = self.best_loss[idx].tolist()
        texts = [vocab.decode(i) for i in ids]
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
                entry = {"step": step, "time_s": elapsed, "score": -new["loss"], "text": new["text"]}
                self.best_history[g].append(entry)

    def _group_best(self, g: int) -> dict | None:
        mine = [h for h, gg in zip(self.honest, self.group_of) if gg == g and h is not None]
        return min(mine, key=lambda h: h["loss"]) if mine else None

    def progress(self, step: int, steps: int, elapsed: float) -> Progress:
        best = self._group_best(0)
        score, text = (-best["loss"], best["text"]) if best else (math.nan, "")
        return Progress(step, steps, score, text, elapsed)

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
        }

    def load_state_dict(self, state: dict) -> None:
        self.best_loss = state["best_loss"]
        self.best_ids = state["best_ids"]
        self.changed = state["changed"]
        self.pending = list(zip(state["pending_steps"], state["pending_loss"]))
        self.honest = state["honest"]
        self.history = state["history"]
        self.best_history = state["best_history"]

    def results(self, opt: PromptOptimizer, steps_done: int, interrupted: bool, timings: dict) -> list[PromptResult]:
        """One :class:`PromptResult` per group."""
        obj, cfg = opt.obj, opt.cfg
        out = []
        for g in range(obj.n_groups):
            best = self._group_best(g)
            if best is None:  # no step ran: report the initial prompt honestly
                raise PezError("the run stopped before its first step: nothing to report")
            restarts = [
                {"text": h["text"], "score": -h["loss"]} for h, gg in zip(self.honest, self.group_of) if gg == g and h
            ]
            target_scores = obj.target_cosines(best["text_ids"], g) if hasattr(obj, "target_cosines") else []
            info = obj.describe()
            out.append(
                PromptResult(
                    text=best["text"],
                    ids=best["ids"],
                    score=-best["loss"],
                    internal_score=-best["internal_loss"],
                    text_ids=best["text_ids"],
                    retokenized=best["text_ids"] != best["ids"],
                    method=opt.name,
                    score_name=getattr(obj, "score_name", "score"),
                    model=info.get("model", ""),
                    seed=cfg.seed,
                    config=cfg.to_dict(),
                    objective=info,
                    restarts=restarts,
                    target_scores=target_scores,
                    history=self.history[g],
                    best_history=self.best_history[g],
                    timings=timings,
                    versions=versions(),
                    steps_done=steps_done,
                    interrupted=interrupted,
                    extras=opt.result_extras(g),
                )
            )
        return out


# -- shared by the discrete methods ----------------------------------------------------------------------------
def swap_scores(grad: torch.Tensor, E: torch.Tensor, ids: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """First-order estimate of how much each single-token swap lowers the loss (HotFlip): -(E[v] - E[x_i]) . g_i.

    Args:
        grad: dLoss/dE[ids] at the current prompt, shape (R, L, D).
        E: the embedding matrix, shape (V, D).
        ids: the current prompt, shape (R, L).
        allowed: tokens a prompt may use, shape (V,).

    Returns:
        scores, shape (R, L, V), higher is better; -inf for tokens not allowed and for the current token.
    """
    g = grad.float()
    scores = -(g @ E.float().T)  # (R, L, V)
    scores += (g * E[ids].float()).sum(-1, keepdim=True)  # + E[x_i] . g_i: the swap's baseline
    scores.masked_fill_(~allowed, -math.inf)
    return scores.scatter_(-1, ids[..., None], -math.inf)


def survives_retokenization(vocab, ids: torch.Tensor) -> torch.Tensor:
    """Whether each prompt's decoded text tokenises back to the same ids, shape (N,) bool (one host sync).

    The first token may come back without its word-start marker (byte-level BPE's "Ġ", SentencePiece's "▁"):
    a prompt's text has no space before its first word, so under those tokenizers no prompt would survive otherwise.

    Args:
        vocab: a :class:`pez.vocab.Vocabulary`.
        ids: prompts, shape (N, L).
    """

    def same(row: list[int]) -> bool:
        back = vocab.encode(vocab.decode(row))
        if len(back) != len(row) or back[1:] != row[1:]:
            return False
        return back[:1] == row[:1] or vocab.decode(back[:1]) == vocab.decode(row[:1])

    return torch.tensor([same(r) for r in ids.tolist()], dtype=torch.bool, device=ids.device)
