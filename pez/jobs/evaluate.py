"""``pez evaluate``: the accuracy of any text prompt on labelled data, on a local causal LM or through an
OpenAI-compatible API (docs/evaluation.md)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from pez.errors import PezError
from pez.evaluation.options import ApiOptions
from pez.jobs.lm import DEFAULT_LM, LMTask
from pez.models import LoadedModel
from pez.records import EvalResult
from pez.text.templates import DEFAULT_TEMPLATE


def evaluate(
    prompt: str,
    model: str | LoadedModel = DEFAULT_LM,
    data: str = "movie-reviews",
    template: str = DEFAULT_TEMPLATE,
    labels: str | Sequence[str] = "negative,positive",
    *,
    split: str | None = "auto",
    limit: int | None = None,
    device: str | None = "auto",
    api: ApiOptions | None = None,
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
        api, **api_options: for API models, an :class:`ApiOptions` or its fields (``base_url``, ``api_key_env``,
            ``cache``, ``scoring``, ``timeout``, ...; see :func:`pez.evaluation.remote.evaluate_remote`).
    """
    from pez.data import load_examples

    api = api or ApiOptions(**api_options)
    remote = isinstance(model, str) and model.startswith("openai:")
    if not remote and api.base_url:
        raise PezError(f"--base-url is for API models: use --model openai:NAME, or leave it out for {model!r}")
    lmtask = LMTask(model if not remote else DEFAULT_LM, data, template, labels,
                    device=device if not remote else "cpu")  # fmt: skip
    if split == "auto":
        split = None if os.path.isfile(data) else "test"
    examples = load_examples(data, split=split, limit=limit)
    if not examples:
        raise PezError(f"{data} has no examples")
    for e in examples:
        lmtask.task.verbalizer.index(e.label)
    if remote:
        from pez.evaluation.options import parse_api_model
        from pez.evaluation.remote import evaluate_remote

        if not api.base_url:
            raise PezError("an API model needs --base-url URL (an OpenAI-compatible endpoint)")
        return evaluate_remote(prompt, examples, lmtask.task, parse_api_model(model), api, callback=callback,
                               data_name=data)  # fmt: skip
    from pez.evaluation.local import evaluate_local

    lm = lmtask.lm()
    return evaluate_local(prompt, examples, lmtask.task, lm.model, lm.tokenizer, lm.spec, data, callback=callback)
