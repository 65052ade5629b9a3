"""``pez discover``: a hard prompt for a classification task on a causal LM, with its held-out accuracy; with an
API target, the local search's prompts are chosen among on the API model (:mod:`pez.jobs.discover_api`).

Readable mode (``readable=True``, :func:`readable_task_search`) writes a task prompt that reads as an instruction:
APE (:class:`pez.optim.ape.APE`) proposes instructions from labelled examples (and variations of a person's
``init_text`` when one is given, which stays in its pool), and the readable method
(:class:`pez.optim.readable.Readable`) refines the best with gradient and LM swaps scored with the LM prior
(docs/algorithms.md#readable-task-prompts)."""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence

from pez.errors import PezError
from pez.evaluation.options import ApiSearchOptions
from pez.jobs.lm import (
    DEFAULT_LM,
    LM_DEFAULTS,
    LMTask,
    check_fluency,
    evaluate_unless_interrupted,
    lm_config,
    task_report,
)
from pez.models import LoadedModel
from pez.models.lm import load_judge
from pez.objectives.base import check_init_fits
from pez.optim import Budget, make_config, optimize, optimize_each
from pez.optim.ape import PERSON
from pez.optim.budget import budget_steps, check_budget, remaining
from pez.optim.tracking import Progress
from pez.records import EvalResult, PromptResult, TaskReport
from pez.text.readability import judge_results
from pez.text.templates import DEFAULT_TEMPLATE

# Readable mode of the LM jobs (``--readable``): APE proposes instructions (``ape``: its steps and candidates per
# step), from examples and as variations of ``init_text`` when one is given (which competes with them on dev);
# under a seconds budget APE stops at its steps or at ``ape_share`` of the seconds, whichever comes first (on 2 CPU
# cores a step of 8 instructions takes about 70 s: a share of 0.4 or 0.75 of 200 s cut APE to one step). The
# readable method then refines the start's own tokens for ``sweeps`` passes over its positions, with the LM prior
# and a bound on how much less likely than the start its text may become: ln 2 nats per token, twice the start's
# perplexity (from a person's instruction, the bound holds against it for APE's variations and the refinement
# together: variations at 199 against the person's 80 were chosen on dev with 1.0 and no bound on APE;
# benchmarks/bench_readable_tasks.py).
READABLE_TASK = {
    "ape": {"steps": 2, "instructions": 8},
    "ape_share": 0.85,
    "refine": {"prior_weight": 0.05, "max_nll_rise": round(math.log(2), 3), "screen": 16},
    "sweeps": 2,
}


def check_readable(method: str, readable: bool, options: dict) -> None:
    """Readable mode picks its own methods; an init text must fit the prompt length (counted in words here, before
    any load: every word is one token at least; in tokens once the tokenizer is there). Raises a one-line
    PezError."""
    if readable and method != "pez":
        raise PezError(f"--readable picks its own methods (APE, then the readable method): leave out --method {method}")
    text, n = options.get("init_text"), options.get("prompt_len", LM_DEFAULTS["prompt_len"])
    if isinstance(text, str) and isinstance(n, int) and len(text.split()) > n:
        raise PezError(f"--init-text has {len(text.split())} words, more than --prompt-len {n} tokens: "
                       f"raise --prompt-len or shorten the text")  # fmt: skip


def split_readable(options: dict) -> tuple[dict, dict]:
    """Readable mode's options as (APE's, the refinement's): the fields only APE has go to APE; the refinement's
    own fields, ``steps`` and ``init_text`` to the refinement; the fields both have (vocabulary, prompt length,
    seed, batch size, ...) to both."""
    from pez.optim.ape import APEConfig
    from pez.optim.readable import ReadableConfig

    ape_only = set(APEConfig.__dataclass_fields__) - set(ReadableConfig.__dataclass_fields__)
    shared = set(APEConfig.__dataclass_fields__) - {"steps", "init_text"}
    ape = {k: v for k, v in options.items() if k in shared}
    refine = {k: v for k, v in options.items() if k not in ape_only}
    return ape, refine


def readable_task_search(
    objective,
    *,
    callback: Callable[[Progress], None] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    judge: str | None = None,
    budget: Budget | None = None,
    **config,
) -> PromptResult:
    """Readable mode for an LM objective (a task, or a compression): the start is APE's best instruction
    (:data:`READABLE_TASK` ``["ape"]``), its pool seeded with ``init_text`` (a person's instruction: APE writes
    variations of it, and it is the start when none scores better on dev); the readable method refines it
    from its own tokens for ``READABLE_TASK["sweeps"]`` passes (or ``steps``), scored with the LM prior, never
    moving to a text whose mean NLL per token exceeds the start's by more than ``max_nll_rise`` (with a person's
    instruction, the bound is its NLL plus the rise for APE's pool and the refinement together). ``config``: fields
    of the refinement (``prompt_len`` (the most tokens; the start's own length is kept), ``seed``, ``init_text``,
    ``prior_weight``, ``top_k``, ``lm_k``, ``max_nll_rise``, ``steps``, ``batch_size``, ...). A ``budget`` of seconds
    covers both stages (APE gets ``ape_share`` of it). ``callback`` sees both stages' syncs (so an API target races
    APE's instructions too). ``extras["readable"]``: where it started (``start``: the person's instruction, else
    APE's best; ``start_from``; the start's dev score ``start_score``; ``refined_from``: the text the refinement
    began at), APE's candidates and time."""
    ape_given, config = split_readable(config)
    config = {**READABLE_TASK["refine"], **LM_DEFAULTS, **config}
    prompt_len, seed, given = config["prompt_len"], config.get("seed", 0), config.pop("init_text", None)
    check_init_fits(objective, given, prompt_len)
    rise = config["max_nll_rise"]  # a person's text bounds APE's pool and, with what APE used of it, the refinement
    ape = {**READABLE_TASK["ape"], **ape_given, "prompt_len": prompt_len, "seed": seed, "init_text": given,
           "max_nll_rise": rise}  # fmt: skip
    ape_budget = None
    if budget is not None and budget.seconds is not None:  # APE's steps, or its share of the seconds if sooner
        ape_budget = Budget(budget.seconds * READABLE_TASK["ape_share"])
    first = optimize(objective, make_config("ape", ape), callback=callback, budget=ape_budget)
    start, spent = first.text, first.timings["total_s"]
    n = max(1, min(prompt_len, len(objective.vocab.encode(start))))
    steps = config.pop("steps", None)
    settings = {**config, "prompt_len": n, "init_text": start, "steps": steps or READABLE_TASK["sweeps"] * n}
    rows = first.extras.get("candidates", [])
    person = next((c for c in rows if c["origin"] == PERSON), None) if given else None  # as APE scored it
    if person is not None and rise is not None:  # the rise APE's start left: the result reads within rise of it
        nll = {c["text"]: c["nll"] for c in rows}
        settings["max_nll_rise"] = max(0.0, rise - (nll.get(start, person["nll"]) - person["nll"]))
    cfg = make_config("readable", settings, LM_DEFAULTS)
    skipped = "interrupted during APE (Ctrl-C): its best so far" if first.interrupted else None
    if budget is not None and budget.seconds is not None:
        budget = Budget(max(1e-3, budget.seconds - spent), budget.passes)
        step_s = first.timings.get("s_per_step", math.nan)
        if not skipped and budget.seconds < step_s:  # a refinement step scores about as much of dev as APE's
            skipped = f"{budget.seconds:.0f} s of the budget left, and a step takes about {step_s:.0f} s"
    if skipped:  # APE's best is readable mode's result (its config APE's), judged as a search's result is
        res = dataclasses.replace(first, method="readable")
        judge_results([res], load_judge(judge, objective.vocab.embeddings.device))
    else:
        res = optimize(objective, cfg, callback=callback, checkpoint=checkpoint, resume=resume, judge=judge,
                       budget=budget)  # fmt: skip
    ape_rows = sorted(rows, key=lambda c: -c["score"])
    own = person["text"] if person else start  # what the search added is measured against this text
    pooled = (c["text"] for c in ape_rows if c.get("pooled", True))  # not those reading worse than the bound
    texts = [res.text, *(e["text"] for e in reversed(res.best_history)), start, *pooled]
    res.extras["readable"] = {
        "candidates": [t for t in dict.fromkeys(texts) if t][:8],  # readable texts, best first (an API races them)
        "start": own,
        "start_from": "init-text" if given else "ape",
        "start_score": next(c["score"] for c in ape_rows if c["text"] == own),  # APE scored it exactly on dev
        "refined_from": start,  # APE's best instruction (the person's own when no variation beat it on dev)
        "refinement_skipped": skipped,  # why the refinement did not run (None: it ran)
        "ape_s": spent,
        "ape_candidates": ape_rows,
    }
    if not skipped:
        res.timings["total_s"] += spent
    return res


def discover(
    model: str | LoadedModel = DEFAULT_LM,
    data: str = "movie-reviews",
    template: str = DEFAULT_TEMPLATE,
    labels: str | Sequence[str] = "negative,positive",
    *,
    method: str = "pez",
    fluency: float = 0.0,
    baseline_prompts: Sequence[str] = (),
    api: ApiSearchOptions | None = None,
    callback: Callable[[Progress], None] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    judge: str | None = "smollm2",
    readable: bool = False,
    budget: Budget | None = None,
    **options,
) -> TaskReport:
    """Discover a hard prompt for a classification task on a causal LM, and report its held-out accuracy.

    Args:
        model, data, template, labels: the task (:class:`pez.jobs.lm.LMTask`).
        method: optimiser name.
        fluency: weight of the prompt's own NLL (the paper uses 0.003).
        baseline_prompts: hand-written prompts to report next to the discovered one.
        api: an API model that chooses among the local search's prompts (:class:`ApiSearchOptions`:
            ``target="openai:MODEL"``, ``base_url``, ``api_budget``, ...); the report's accuracies are then the API
            model's (:func:`pez.jobs.discover_api.discover_with_api`). Its fields may also be given as keywords.
        callback, checkpoint, resume: as in :func:`pez.optimize`.
        judge: the causal LM whose perplexity of the prompt's text goes in ``readability`` (None: none).
        budget: e.g. ``pez.Budget(seconds=60)``: the search returns its best prompt when the time is spent
            (``search["timings"]["stopped_by"]``), the seconds counting the data and model loads before it
            (``before_search_s``); without ``steps`` of the user's, the budget ends the search, not the step count.
        readable: readable mode (:func:`readable_task_search`): a prompt that reads as an instruction, from APE's
            proposals or from ``init_text`` (a person's instruction, whose held-out accuracy is then reported
            beside the result's); ``method`` must be left at ``pez``.
        **options: the other fields of the task (``eval_data``, ``test_data``, ``dev_size`` (64), ``test_size``,
            ``train_size``, ``device``), of the API options, and of the method's config (``prompt_len``,
            ``steps``, ``lr``, ...; the paper's LM setting by default: 10 tokens, 16 examples per step).

    Returns:
        a :class:`TaskReport` (an :class:`ApiSearchReport` with an API target; an :class:`ApiPlan` with
        ``dry_run``).
    """
    t0 = time.perf_counter()
    check_budget(budget)
    options = dict(options)
    check_fluency(fluency)
    check_readable(method, readable, options)
    api = api or ApiSearchOptions.take(options)
    if not readable and api is None:  # an API target paces its requests by the steps: they stay
        options = budget_steps(options, budget)
    task = LMTask.take(options, model=model, data=data, template=template, labels=labels)
    if readable:  # every option checked before any load: APE's on its config, the rest on the refinement's
        ape, refine = split_readable(options)
        make_config("ape", {**READABLE_TASK["ape"], **ape}, LM_DEFAULTS)
        cfg = lm_config("readable", refine)
        if "steps" not in refine:  # what readable mode will run, for an API target's pacing and --dry-run's plan
            steps = READABLE_TASK["ape"]["steps"] + READABLE_TASK["sweeps"] * cfg.prompt_len
            cfg = dataclasses.replace(cfg, steps=steps)
    else:
        cfg = lm_config(method, options)
    search = _searcher(cfg, options, readable, checkpoint, resume, judge, budget, t0)
    if readable and cfg.init_text:  # the person's instruction, reported beside the result
        baseline_prompts = list(dict.fromkeys([*baseline_prompts, cfg.init_text]))
    if api is not None:
        from pez.jobs.discover_api import discover_with_api

        return discover_with_api(task, api, cfg, baseline_prompts=baseline_prompts, fluency=fluency,
                                 callback=callback, checkpoint=checkpoint, resume=resume, judge=judge,
                                 search=search, readable=readable)  # fmt: skip
    return _discover_locally(task, search, baseline_prompts, fluency, callback)


def _searcher(cfg, options: dict, readable: bool, checkpoint, resume, judge, budget=None, t0=0.0) -> Callable:
    """The search of a discover run, as ``search(objective, callback) -> PromptResult``: the method's, or readable
    mode's two stages (``options``: the fields the user gave, which readable mode sizes around). A ``budget`` of
    seconds counts from ``t0`` (the job's start): the search gets what the loads before it left."""

    def plain(obj, callback) -> PromptResult:
        if cfg.init_text:
            check_init_fits(obj, cfg.init_text, cfg.prompt_len)
        left = remaining(budget, time.perf_counter() - t0)
        (res,) = optimize_each(obj, cfg, callback=callback, checkpoint=checkpoint, resume=resume, judge=judge,
                               budget=left)  # fmt: skip
        return res

    def readable_mode(obj, callback) -> PromptResult:
        left = remaining(budget, time.perf_counter() - t0)
        return readable_task_search(obj, callback=callback, checkpoint=checkpoint, resume=resume, judge=judge,
                                    budget=left, **options)  # fmt: skip

    def timed(obj, callback) -> PromptResult:
        before = time.perf_counter() - t0
        res = (readable_mode if readable else plain)(obj, callback)
        res.timings["before_search_s"] = before  # data, model, objective: counted against a budget of seconds
        return res

    return timed


def _discover_locally(task: LMTask, search, baseline_prompts, fluency, callback):
    from pez.evaluation.local import evaluate_local
    from pez.objectives.lm import ClassificationObjective, LMPath, perplexity

    data = task.load()
    task.check_classes(data)
    if not data.test:
        raise PezError(f"{task.data} leaves no held-out examples: give --test-data or more data")
    lm = task.lm()
    obj = ClassificationObjective(lm.model, lm.tokenizer, task.task, data.train, data.dev, fluency=fluency,
                                  model_name=lm.spec)  # fmt: skip
    res = search(obj, callback)
    report = task_report(TaskReport, res, lm.spec, task.data, data.described)
    path = LMPath(lm.model, lm.tokenizer)

    def acc(prompt: str) -> EvalResult:
        return evaluate_local(prompt, data.test, task.task, lm.model, lm.tokenizer, lm.spec, task.data, path=path)

    def held_out() -> None:
        found = acc(res.text)
        report.accuracy, report.n_test, report.predictions = found.accuracy, found.n, found.predictions
        report.baseline_accuracy = acc("").accuracy
        report.baseline_prompts = {p: acc(p).accuracy for p in baseline_prompts}
        report.dev_accuracy = obj.accuracy(res.text_ids, "dev")
        report.perplexity = perplexity(obj.path, res.text_ids) if len(res.text_ids) > 1 else None
        readable_gain(report, lambda t: report.baseline_prompts[t] if t in report.baseline_prompts else acc(t).accuracy)

    evaluate_unless_interrupted(report, held_out)
    return report


def readable_gain(report: TaskReport, accuracy: Callable[[str], float | None]) -> None:
    """Readable mode's record of where it started (``search["extras"]["readable"]``) gets the start's held-out
    accuracy (``accuracy(text)``, on the same examples as the report's) and what the search added over it."""
    info = report.search.get("extras", {}).get("readable")
    if info is None or report.accuracy is None:
        return
    start = accuracy(info["start"])
    info.update(start_accuracy=start, gain=None if start is None else report.accuracy - start)
