"""``pez invert``: images and/or texts -> a prompt (:func:`invert`); :func:`make_objective` builds the embedding
objective of a model spec and its targets."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

from pez.errors import PezError
from pez.images import load_image
from pez.models import DEFAULT_CLIP, LoadedModel, family_of, family_of_kind, load_model, resolve_device
from pez.objectives.base import Objective, check_init_fits, check_negative_weight
from pez.optim import Budget, make_config, optimize
from pez.optim.budget import SLIVER_S, UNLIMITED_STEPS, budget_steps, check_budget, remaining
from pez.optim.readable import check_no_screen
from pez.optim.tracking import Progress, staged
from pez.records import PromptResult

# One search for one target: 4 prompts searched together reach a better honest score at every wall-clock budget
# than one prompt does (benchmarks/bench_defaults.py, benchmarks/RESULTS.md#defaults-chosen-by-quality-per-second);
# the early stop ends it when its best honest score gained no more than 0.01 in 300 steps: 0.0015 of score lost on
# average for 26-42% of the time saved (benchmarks/bench_stop.py, docs/defaults.md#early-stop).
INVERT_DEFAULTS = {"restarts": 4, "patience": 300, "min_delta": 0.01}
# Readable mode (``--readable``): PEZ finds the words the encoder wants (``pez_share`` of a seconds budget, or
# ``pez_steps`` steps), then the compose method rewrites its prompt into a phrase from the words of every restart's
# prompt, by exact edits under the LM prior, until no edit helps (``compose_steps`` rounds at most) or the budget is
# spent (benchmarks/bench_readable.py, docs/defaults.md#readable-mode).
READABLE = {"pez_steps": 60, "pez_share": 0.2, "compose_steps": 12, "pez": {"restarts": 4}}
# The polish (``--polish SHARE``, docs/algorithms.md#the-polish): PEZ's gradient finds the region, exact swaps end it.
# The last ``share`` of the search's time goes to GCG from PEZ's best prompt (``search_width`` single-token swaps a
# step, drawn from the ``top_k`` tokens of best first-order score per position, each scored exactly); the result is
# the better of the two stages' honest bests. On by default under a seconds budget (the clock is then the user's
# setting, and the polish is how it is best spent: benchmarks/bench_time_quality.py); off without one, so a run
# without a clock is the same as before (``polish=share`` turns it on: the polish then gets share / (1 - share) of
# PEZ's own time).
POLISH = {"share": 0.5, "gcg": {"search_width": 32, "top_k": 16}}
# what the polish keeps of PEZ's settings: the vocabulary it may use
POLISH_KEEPS = ("prompt_len", "seed", "ascii_only", "whole_words", "blocklist", "amp", "eval_every", "batch_size")


def check_targets(model, images: Sequence, texts: Sequence[str], negative_images: Sequence, negative_weight: float):
    """The targets, checked at the boundary before any model loads; image files are read once, here, and the PIL
    images returned (``images``, ``negative_images``)."""
    if not len(images) and not len(texts):
        raise PezError("no targets given: pass image files and/or --text")
    if any(not (isinstance(t, str) and t.strip()) for t in texts):
        raise PezError("a target text is empty: give --text a sentence (or leave it out)")
    check_negative_weight(negative_weight)
    loaded = [load_image(im) for im in images], [load_image(im) for im in negative_images]
    if (len(images) or len(negative_images)) and isinstance(model, str) and not family_of(model).images:
        raise PezError(f"{model} cannot take image targets: give --text targets, or use a CLIP model for images")
    return loaded


def make_objective(
    model: str | LoadedModel,
    images: Sequence = (),
    texts: Sequence[str] = (),
    negative_images: Sequence = (),
    negative_texts: Sequence[str] = (),
    *,
    negative_weight: float = 1.0,
    device: str | None = "auto",
) -> Objective:
    """The embedding objective for a model spec (or a loaded model) and targets: the model's family
    (:mod:`pez.models.registry`) names the objective.

    Targets and image files are checked before the model is loaded, so bad input fails at once.
    """
    images, negative_images = check_targets(model, images, texts, negative_images, negative_weight)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, resolve_device(device))
    return _objective(loaded, images, texts, negative_images, negative_texts, negative_weight)


def _objective(loaded: LoadedModel, images, texts, negative_images, negative_texts, negative_weight) -> Objective:
    family = family_of_kind(loaded.kind)
    if family.objective is None:
        raise PezError(f"{loaded.spec} is a {loaded.kind} model: invert needs a CLIP or sentence encoder")
    targets = dict(images=images, texts=texts, negative_images=negative_images, negative_texts=negative_texts,
                   negative_weight=negative_weight, model_name=loaded.spec)  # fmt: skip
    return family.objective(loaded, targets)


def readable_search(
    objective: Objective,
    prompt_len: int = 16,
    seed: int = 0,
    *,
    callback: Callable[[Progress], None] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    judge: str | None = None,
    budget: Budget | None = None,
    **config,
) -> PromptResult:
    """Readable mode: PEZ (:class:`pez.optim.pez.PEZ`, ``READABLE["pez_steps"]`` steps at 4 restarts) finds the
    words, then the compose method (:class:`pez.optim.compose.Compose`) rewrites its best prompt, with every
    restart's words to draw on, into a phrase: insertions, deletions, replacements and moves of words, each text
    scored exactly with the LM prior. ``config`` sets fields of the compose stage (``prior_weight``, ``beam``,
    ``scored``, ``steps``, ...). A ``budget`` of seconds covers both stages: PEZ gets ``READABLE["pez_share"]`` of
    it, compose the rest. The result is compose's, with PEZ's text and score in ``extras`` and both stages' times
    in ``timings``; a Ctrl-C in either stage ends the run with the best readable text so far (PEZ's, if compose had
    not started). ``checkpoint`` / ``resume`` keep both stages (``CHECKPOINT.pez`` holds the first): a resumed run
    does not search again what it had found."""
    seconds = budget.seconds if budget is not None else None
    first_budget = Budget(seconds * READABLE["pez_share"]) if seconds is not None else None
    stage1 = {**READABLE["pez"], "prompt_len": prompt_len, "seed": seed}
    stage1 = budget_steps(stage1, first_budget) if seconds is not None else {**stage1, "steps": READABLE["pez_steps"]}
    first_ckpt = None if checkpoint is None else f"{checkpoint}.pez"
    again = resume and first_ckpt is not None and os.path.exists(first_ckpt)
    first = optimize(objective, make_config("pez", stage1), callback=staged(callback, "PEZ"), checkpoint=first_ckpt,
                     resume=again, budget=first_budget, judge=judge)  # fmt: skip
    if first.interrupted:  # Ctrl-C in the first stage: the run ends with PEZ's best (judged), nothing lost
        first.extras.update(readable_stage="pez")
        return first
    words = " ".join(r["text"] for r in sorted(first.restarts, key=lambda r: -r["score"]))
    settings = {"steps": READABLE["compose_steps"], **config}
    cfg = make_config("compose", {"prompt_len": prompt_len, "seed": seed, "init_text": first.text,
                                  "words": words, **settings})  # fmt: skip
    rest = None
    if seconds is not None:
        rest = Budget(max(SLIVER_S, seconds - first.timings["total_s"]), budget.passes)
    res = optimize(objective, cfg, callback=staged(callback, "compose"), checkpoint=checkpoint, resume=resume,
                   judge=judge, budget=rest)  # fmt: skip
    res.extras.update(pez_text=first.text, pez_score=first.score, pez_s=first.timings["total_s"],
                      pez_steps=first.steps_done)  # fmt: skip
    res.timings.update(pez_s=first.timings["total_s"], compose_s=res.timings["total_s"], pez_steps=first.steps_done)
    res.timings["total_s"] += first.timings["total_s"]
    return res


def check_polish(polish, method: str, readable: bool, budget: Budget | None) -> float:
    """The polish share a run uses (checked before any load): ``polish`` as given (0 <= share < 1), or the default
    (:data:`POLISH`'s share under a seconds budget for plain PEZ, else 0)."""
    if polish is None:
        timed = budget is not None and budget.seconds is not None
        return POLISH["share"] if timed and method == "pez" and not readable else 0.0
    if isinstance(polish, bool) or not isinstance(polish, int | float) or not 0 <= polish < 1:
        raise PezError(f"--polish is the share of the search's time for the exact-swap polish: a number from 0 "
                       f"(off) to below 1, got {polish!r}")  # fmt: skip
    if polish and readable:
        raise PezError("--polish is plain PEZ's last stage; readable mode has its own (compose): leave out --polish")
    if polish and method != "pez":
        raise PezError(f"--polish finishes PEZ's search with exact swaps; --method {method} has none: leave out "
                       "--polish or use --method pez")  # fmt: skip
    return float(polish)


def polish_search(
    objective: Objective,
    cfg,
    share: float,
    *,
    callback: Callable[[Progress], None] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    judge: str | None = None,
    budget: Budget | None = None,
) -> PromptResult:
    """PEZ (``cfg``), then GCG's exact swaps from its best prompt for the last ``share`` of the time
    (:data:`POLISH`): of a seconds ``budget``, or ``share / (1 - share)`` of PEZ's own seconds without one. The
    result is PEZ's, with the polished prompt where the polish found a better honest score (never a worse one),
    ``extras["polish"]`` saying what it did, both stages' times in ``timings`` (``pez_s``, ``polish_s``) and one
    best-score history over both (the polish's times after PEZ's). A Ctrl-C in PEZ ends the run with PEZ's best;
    ``checkpoint`` / ``resume`` keep PEZ's stage (the polish is short and runs again)."""
    from pez.models.lm import load_judge
    from pez.text.readability import judge_results

    seconds = budget.seconds if budget is not None else None
    first_budget = Budget(seconds * (1 - share), budget.passes) if seconds is not None else budget
    first = optimize(objective, cfg, callback=staged(callback, "PEZ"), checkpoint=checkpoint, resume=resume,
                     budget=first_budget)  # fmt: skip
    res, spent = first, first.timings["total_s"]
    if seconds is not None and seconds - spent <= SLIVER_S:  # nothing left to polish with (loading took it)
        first.extras["polish"] = {"share": share, "skipped": "no time left after PEZ"}
    elif not first.interrupted:
        own = spent * share / (1 - share)  # the polish's share of the search's time, by PEZ's
        bound = seconds is not None and seconds - spent <= own  # the user's clock ends it, not its share
        rest = seconds - spent if bound else own
        passes = None if budget is None or budget.passes is None else max(1, budget.passes - first.timings["passes"])
        kept = {k: getattr(cfg, k) for k in POLISH_KEEPS}
        gcg = make_config("gcg", {**kept, **POLISH["gcg"], "init_text": first.text, "steps": UNLIMITED_STEPS})
        second = optimize(objective, gcg, callback=staged(callback, "polish"), budget=Budget(rest, passes))
        res = _polished(first, second, share, bound)
    judge_results([res], load_judge(judge, objective.vocab.embeddings.device))
    return res


def _polished(first: PromptResult, second: PromptResult, share: float, bound: bool) -> PromptResult:
    """PEZ's result with the polish's prompt where it scores higher, the two histories joined and both times.
    ``bound``: the user's budget, not the polish's share, set the polish's time (then a stop by time is the
    budget's; otherwise the run ended as PEZ did: steps, early stop)."""
    res, t1, t2, before = first, first.timings, second.timings, first.score  # res is first, updated below
    better = second.score > before
    res.extras["polish"] = {"share": share, **POLISH["gcg"], "steps": second.steps_done, "improved": better,
                            "pez_text": first.text, "pez_score": before}  # fmt: skip
    if better:
        for name in ("text", "ids", "score", "internal_score", "text_ids", "retokenized", "target_scores"):
            setattr(res, name, getattr(second, name))
    after = t1["total_s"] + t2["setup_s"] - t1["setup_s"]  # the polish's loop times on PEZ's clock
    res.best_history = [*first.best_history, *({**h, "time_s": h["time_s"] + after, "stage": "polish"}
                                               for h in second.best_history if h["score"] > before)]  # fmt: skip
    by_share = t2["stopped_by"] == "budget_seconds" and not bound  # its own share of the time ran out
    res.timings = {**t1, "pez_s": t1["total_s"], "polish_s": t2["total_s"], "polish_steps": second.steps_done,
                   "polish_loop_s": t2["loop_s"], "total_s": t1["total_s"] + t2["total_s"],
                   "passes": t1["passes"] + t2["passes"], "polish_stopped_by": t2["stopped_by"],
                   "stopped_by": t1["stopped_by"] if by_share else t2["stopped_by"],
                   "next_step_s": t2["next_step_s"] if bound else t1["next_step_s"]}  # fmt: skip
    res.interrupted = second.interrupted
    return res


def invert(
    images: Sequence = (),
    texts: Sequence[str] = (),
    negative_images: Sequence = (),
    negative_texts: Sequence[str] = (),
    *,
    model: str | LoadedModel = DEFAULT_CLIP,
    method: str = "pez",
    device: str | None = "auto",
    negative_weight: float = 1.0,
    callback: Callable[[Progress], None] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    judge: str | None = "smollm2",
    readable: bool = False,
    budget: Budget | None = None,
    polish: float | None = None,
    **config,
) -> PromptResult:
    """Find a readable hard prompt whose features match images and/or texts under a model.

    Args:
        images: target images (paths or PIL images); CLIP models only.
        texts: target texts.
        negative_images, negative_texts: targets to move away from.
        model: a model spec (see :mod:`pez.models`) or a :class:`LoadedModel`.
        method: optimiser name (``pez``).
        device: ``auto`` (CUDA if available), ``cpu``, ``cuda``.
        negative_weight: weight of each negative target relative to a positive one.
        callback, checkpoint, resume: as in :func:`pez.optimize`.
        judge: the causal LM whose perplexity of the prompt's text goes in ``readability`` (None: none).
        readable: readable mode (:func:`readable_search`): a prompt that reads as text; it picks its own methods
            (PEZ, then compose), so ``method`` must be left at ``pez``; ``config`` then sets the compose stage.
        budget: seconds (and passes) the search may use, e.g. ``pez.Budget(seconds=10)``: the best prompt found
            in that time, loading the model and the targets and the method's setup counted
            (``timings["before_search_s"]``, ``timings["setup_s"]``); ``timings["stopped_by"]`` says when the
            budget stopped it.
        polish: the share of the search's time for the exact-swap polish after PEZ (:func:`polish_search`,
            0: none); None: :data:`POLISH`'s share under a seconds budget, none without one.
        **config: fields of the method's config, e.g. ``prompt_len=8, steps=300, seed=0``; ``restarts``
            defaults to 4 here and the early stop is on (:data:`INVERT_DEFAULTS`; ``patience=None``: off).
    """
    if readable and method != "pez":
        raise PezError(f"--readable picks its own methods (PEZ, then compose): leave out --method {method}")
    check_budget(budget)
    polish = check_polish(polish, method, readable, budget)
    if not readable:
        config = budget_steps(config, budget)
    cfg = make_config("compose" if readable else method, config, None if readable else INVERT_DEFAULTS)
    check_no_screen(cfg, "pez invert")
    t0 = time.perf_counter()
    images, negative_images = check_targets(model, images, texts, negative_images, negative_weight)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, resolve_device(device))
    t1 = time.perf_counter()
    obj = _objective(loaded, images, texts, negative_images, negative_texts, negative_weight)
    check_init_fits(obj, cfg.init_text, cfg.prompt_len)
    t2 = time.perf_counter()
    budget = remaining(budget, t2 - t0)  # the user's seconds count the model's and the targets' loading
    if readable:
        res = readable_search(obj, callback=callback, checkpoint=checkpoint, resume=resume, judge=judge,
                              budget=budget, **config)  # fmt: skip
    elif polish:
        res = polish_search(obj, cfg, polish, callback=callback, checkpoint=checkpoint, resume=resume, judge=judge,
                            budget=budget)  # fmt: skip
    else:
        res = optimize(obj, cfg, callback=callback, checkpoint=checkpoint, resume=resume, judge=judge, budget=budget)
    res.timings.update(model_load_s=t1 - t0, targets_s=t2 - t1, before_search_s=t2 - t0)  # where it went
    return res
