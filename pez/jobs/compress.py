"""``pez compress``: a long instruction -> a few hard tokens with the same effect on the model's next tokens (the
gist idea done with hard tokens; docs/objectives.md)."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence

import torch

from pez.errors import PezError
from pez.jobs.discover import READABLE_TASK, check_readable, readable_task_search, split_readable
from pez.jobs.lm import (
    DEFAULT_LM,
    LM_DEFAULTS,
    SPLIT_NAMES,
    LMTask,
    check_fluency,
    evaluate_unless_interrupted,
    lm_config,
    task_report,
)
from pez.models import LoadedModel
from pez.objectives.base import check_init_fits
from pez.optim import Budget, make_config, optimize_each
from pez.optim.budget import budget_steps, check_budget, remaining
from pez.optim.config import check_whole
from pez.optim.tracking import Progress
from pez.records import EvalResult, TaskReport
from pez.text.templates import Template

log = logging.getLogger(__name__)

MAX_INPUTS = 10_000  # inputs sampled from the model: more would take hours on any machine


def compress(
    instruction: str,
    model: str | LoadedModel = DEFAULT_LM,
    data: str | None = None,
    template: str = "{prompt}\n{text}",
    labels: str | Sequence[str] | None = None,
    *,
    n_inputs: int = 48,
    input_tokens: int = 24,
    fluency: float = 0.0,
    method: str = "pez",
    test_size: int | None = 200,
    device: str | None = "auto",
    callback: Callable[[Progress], None] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    judge: str | None = "smollm2",
    **config,
) -> TaskReport:
    """Compress a long instruction into a short hard prompt with the same effect on the model's next tokens.

    Minimises KL(p(. | instruction, input) || p(. | prompt, input)) over inputs: the texts of ``data`` when given,
    otherwise ``n_inputs`` texts sampled from the model. Inputs are split into train / dev / test; the KL is
    reported on the test inputs without a prompt (before) and with the prompt's text (after). With ``data`` and
    ``labels``, the accuracies of the instruction, the prompt and the empty template are reported too. ``judge``
    is the causal LM whose perplexity of the prompt's text goes in ``readability`` (None: none). ``readable=True``
    (a keyword among ``config``): a short readable paraphrase instead (:func:`pez.jobs.discover.readable_task_search`:
    APE's paraphrases of the instruction, or ``init_text``, refined under the LM prior; ``method`` left at ``pez``);
    the start's held-out KL goes in ``search["extras"]["readable"]``. ``budget=pez.Budget(seconds=60)`` (a keyword):
    the search returns its best prompt when the time is spent, the seconds counting the model load and the input
    sampling before it (``search["timings"]["before_search_s"]``); without ``steps`` of the user's, the budget ends
    the search, not the step count.
    """
    from pez.evaluation.local import evaluate_local
    from pez.objectives.lm import CompressionObjective, LMPath, perplexity, sample_inputs

    t0 = time.perf_counter()
    budget: Budget | None = config.pop("budget", None)  # a keyword among ``config`` (the parameter count's floor)
    check_budget(budget)
    if not instruction or not instruction.strip():
        raise PezError("the instruction to compress is empty: pass --instruction TEXT")
    check_whole("inputs", n_inputs, allow_none=False, most=MAX_INPUTS)
    check_fluency(fluency)
    readable = bool(config.pop("readable", False))
    config = config if readable else budget_steps(config, budget)
    check_readable(method, readable, config)
    if readable:
        ape, refine = split_readable(config)
        make_config("ape", {**READABLE_TASK["ape"], **ape}, LM_DEFAULTS)
        cfg = lm_config("readable", refine)
    else:
        cfg = lm_config(method, config)
    lmtask = LMTask(model, data, template, labels, dev_size=16, test_size=test_size, train_size=n_inputs,
                    device=device)  # fmt: skip
    task = lmtask.task
    found = lmtask.load() if data else None
    lm = lmtask.lm()
    n_tokens = len(lm.tokenizer(instruction, add_special_tokens=False)["input_ids"])
    context = getattr(lm.model.config, "max_position_embeddings", None)
    if context is not None and n_tokens + input_tokens >= context:
        raise PezError(f"the instruction is {n_tokens:,} tokens and {lm.spec} reads at most {context:,} (inputs "
                       f"included): shorten it")  # fmt: skip
    if found:
        pools = [[e.text for e in part] for part in (found.train, found.dev, found.test[:16])]
    else:
        texts = sample_inputs(lm.model, lm.tokenizer, n_inputs + 32, input_tokens, seed=cfg.seed)
        pools = [texts[:n_inputs], texts[n_inputs : n_inputs + 16], texts[n_inputs + 16 :]]
    tmpl = Template(template)
    obj = CompressionObjective(
        lm.model, lm.tokenizer, instruction, pools[0], tmpl, pools[1], fluency=fluency, model_name=lm.spec
    )
    before = time.perf_counter() - t0
    left = remaining(budget, before)  # the user's seconds count the loads
    if readable:
        res = readable_task_search(obj, callback=callback, checkpoint=checkpoint, resume=resume, judge=judge,
                                   budget=left, **config)  # fmt: skip
    else:
        check_init_fits(obj, cfg.init_text, cfg.prompt_len)
        (res,) = optimize_each(obj, cfg, callback=callback, checkpoint=checkpoint, resume=resume, judge=judge,
                               budget=left)  # fmt: skip
    res.timings["before_search_s"] = before
    held_out_obj = CompressionObjective(lm.model, lm.tokenizer, instruction, pools[2], tmpl, model_name=lm.spec)
    described = data or f"{len(pools[0]) + 32} inputs sampled from the model"
    split_sizes = found.described if found else {k: len(p) for k, p in zip(SPLIT_NAMES, pools)}
    report = task_report(TaskReport, res, lm.spec, described, split_sizes)
    path = LMPath(lm.model, lm.tokenizer)

    def held_out() -> None:
        group = torch.zeros(2, dtype=torch.long)
        report.kl_before, report.kl_after = held_out_obj.eval_loss_ids([[], res.text_ids], group).tolist()
        info = report.search.get("extras", {}).get("readable")
        if info is not None:  # readable mode: the start's held-out KL beside the result's
            start_ids = obj.vocab.encode(info["start"])
            info["kl_start"] = float(held_out_obj.eval_loss_ids([start_ids], group[:1])[0])
        if not math.isfinite(report.kl_after):
            log.warning("the held-out KL came out non-finite: the model's distributions overflowed (try --no-amp)")
        report.perplexity = perplexity(obj.path, res.text_ids) if len(res.text_ids) > 1 else None
        if found and task:

            def acc(prompt: str) -> EvalResult:
                return evaluate_local(prompt, found.test, task, lm.model, lm.tokenizer, lm.spec, data, path=path)

            result = acc(res.text)
            report.accuracy, report.n_test, report.predictions = result.accuracy, result.n, result.predictions
            report.baseline_accuracy = acc("").accuracy
            report.instruction_accuracy = acc(instruction).accuracy

    evaluate_unless_interrupted(report, held_out)
    return report
