"""Score a text prompt on an OpenAI-compatible HTTP API, so a prompt found on an open LM can be checked on other
models, API-only ones included.

Two ways to score, the first as in the paper's protocol (Wen et al. 2023):

- ``logprob``: the label with the highest log-probability wins. Each (example, label) pair is one legacy
  ``/completions`` request that echoes the filled template plus the label's continuation with ``max_tokens=0``;
  the label's score is the sum of the log-probabilities of the echoed tokens that cover the continuation.
- ``parse``: for chat-only APIs without prompt log-probabilities. One ``/chat/completions`` request per example
  asks for one of the label words (greedy, a few tokens); the earliest label word in the reply, as a whole word
  and in any case, is the prediction (none: no prediction, counted wrong).

``auto`` tries ``logprob`` on the first request and falls back to ``parse`` for the whole run when the server
refuses it (HTTP 400, 404 or 422) or answers without log-probabilities.

Base URL: the API root as the OpenAI SDK's ``base_url`` takes it, version path included
(``https://api.openai.com/v1``, ``http://127.0.0.1:8000/v1``); pez appends ``/completions`` and
``/chat/completions``. Every successful answer is stored at once in a SQLite cache keyed by the base URL, endpoint
and payload, so a rerun (or a run resumed after a failure) pays only for the requests not answered yet.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable, Sequence

from pez.errors import PezError
from pez.evaluation.client import CHAT, COMPLETIONS, ApiClient, ResponseCache, Unscorable, api_root
from pez.records import EvalResult, accuracy_of
from pez.text.templates import Task

log = logging.getLogger(__name__)

MODES = ("auto", "logprob", "parse")
PARSE_MAX_TOKENS = 8  # enough for "Positive." from a chat model; the reply is read for a label word only


class ApiFailure(PezError):
    """The API failed mid-run: ``partial`` is the :class:`EvalResult` of the examples answered so far
    (``complete=False``; ``partial.n`` may be 0). Answered requests are cached, so a rerun resumes."""

    def __init__(self, message: str, partial: EvalResult):
        super().__init__(message)
        self.partial = partial


def parse_api_model(spec) -> str | None:
    """``"openai:gpt-4o-mini"`` -> ``"gpt-4o-mini"``; None for any other spec (a local model)."""
    if not isinstance(spec, str) or not spec.startswith("openai:"):
        return None
    name = spec[len("openai:") :].strip()
    if not name:
        raise PezError("openai: needs a model name after the colon, e.g. openai:gpt-4o-mini")
    return name


def evaluate_remote(
    prompt: str,
    examples: Sequence,
    task: Task,
    model: str,
    base_url: str,
    api_key_env: str = "OPENAI_API_KEY",
    cache: str | os.PathLike | None = None,
    mode: str = "auto",
    timeout: float = 60.0,
    max_retries: int = 6,
    concurrency: int = 1,
    callback: Callable[[int, int], None] | None = None,
    data_name: str = "",
    backoff: float = 1.0,
) -> EvalResult:
    """Accuracy of ``prompt`` on labelled ``examples`` under a model behind an OpenAI-compatible API.

    Args:
        prompt: the prompt text ("" for the empty template).
        examples: objects with ``.text`` and ``.label``.
        task: template + verbaliser; the text sent is ``task.template.fill(prompt, text)``.
        model: the API's model name (``parse_api_model("openai:NAME")``).
        base_url: the API root with its version path, e.g. ``http://127.0.0.1:8000/v1``.
        api_key_env: the environment variable holding the key, sent as ``Authorization: Bearer KEY``.
        cache: the SQLite response cache (default ``pez.cache.cache_dir("api") / "responses.sqlite"``).
        mode: ``logprob``, ``parse`` or ``auto`` (see the module docstring).
        timeout: seconds per HTTP request.
        max_retries: retries per request after connection errors, timeouts, 429 and 5xx answers.
        concurrency: requests in flight at once.
        callback: called with (done, total) after each example.
        data_name: recorded in the result.
        backoff: seconds before the first retry (doubled each time, with jitter) when no Retry-After is given.

    Returns:
        An :class:`EvalResult` whose ``scoring`` says how it was scored; per-label ``scores`` (logprob) or the raw
        ``answer`` (parse) in each prediction; ``extras`` holds the base URL and the counts of requests sent and
        answers read from the cache.

    Raises:
        PezError: bad input (uncovered label, mode, base URL, unset key variable), before any request.
        ApiFailure: the API failed or refused mid-run; it carries the partial result.
    """
    v = task.verbalizer
    gold = [v.index(e.label) for e in examples]  # every label must be covered before any request
    if mode not in MODES:
        raise PezError(f"unknown scoring mode {mode!r}: use {', '.join(MODES)}")
    if not model or not model.strip():
        raise PezError("no API model name given: use openai:MODEL, e.g. openai:gpt-4o-mini")
    if not timeout > 0:
        raise PezError(f"timeout must be positive seconds, got {timeout}")
    if max_retries < 0:
        raise PezError(f"max_retries must be 0 or more, got {max_retries}")
    if concurrency < 1:
        raise PezError(f"concurrency must be 1 or more, got {concurrency}")
    root = api_root(base_url)
    key = os.environ.get(api_key_env, "").strip()
    if not key:
        raise PezError(
            f"the API key variable {api_key_env} is not set: export {api_key_env}=KEY (any value will do for a "
            "local server without auth), or name another variable with --api-key-env"
        )
    if cache is None:
        from pez.cache import cache_dir

        cache = cache_dir("api") / "responses.sqlite"
    words = [w.strip() for w in v.words]
    conts = [task.continuation(c) for c in range(len(v.labels))]
    instruction = _instruction(words)

    def record(i: int, best: int | None, **extra) -> dict:
        return {
            "index": i,
            "text": examples[i].text,
            "label": v.labels[gold[i]],
            "predicted": None if best is None else v.labels[best],
            "correct": best == gold[i],
            **extra,
        }

    def by_logprob(i: int) -> dict:
        filled = task.template.fill(prompt, examples[i].text)
        scores = []
        for cont in conts:
            text = filled + cont
            payload = {"model": model, "prompt": text, "max_tokens": 0, "echo": True, "logprobs": 1, "temperature": 0}
            scores.append(
                api.post(COMPLETIONS, payload, functools.partial(span_logprob, start=len(filled), end=len(text)))
            )
        best = max(range(len(scores)), key=scores.__getitem__)
        return record(i, best, scores=dict(zip(v.labels, scores)))

    def by_parsing(i: int) -> dict:
        content = task.template.fill(prompt, examples[i].text) + "\n" + instruction
        payload = {
            "model": model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": PARSE_MAX_TOKENS,
            "temperature": 0,
        }
        answer = api.post(CHAT, payload, _chat_answer)
        return record(i, parse_answer(answer, words), answer=answer)

    predictions: list[dict] = []
    scoring = "parse" if mode == "parse" else "logprob"

    def result(complete: bool) -> EvalResult:
        predictions.sort(key=lambda p: p["index"])
        return EvalResult(
            prompt=prompt,
            model=f"openai:{model}",
            accuracy=accuracy_of(predictions),
            n=len(predictions),
            predictions=list(predictions),
            task={"template": task.template.text, "labels": list(v.labels), "words": list(v.words)},
            data=data_name,
            scoring=scoring,
            complete=complete,
            extras={"base_url": root, "requests": api.sent, "cached": api.hits}
            | ({"instruction": instruction} if scoring == "parse" else {}),
        )

    def done(p: dict) -> None:
        predictions.append(p)
        if callback is not None:
            callback(len(predictions), len(examples))

    api = ApiClient(root, key, api_key_env, ResponseCache(cache), timeout, max_retries, backoff)
    try:
        todo = list(range(len(examples)))
        if mode == "auto" and todo:
            first = todo.pop(0)
            try:
                done(by_logprob(first))
            except Unscorable as e:
                log.info("%s; scoring by parsing answers for this run", e)
                scoring = "parse"
                done(by_parsing(first))
        api.run(by_parsing if scoring == "parse" else by_logprob, todo, concurrency, done)
    except PezError as e:
        raise ApiFailure(str(e), result(False)) from e
    finally:
        api.close()
    return result(True)


def parse_answer(answer: str, words: Sequence[str]) -> int | None:
    """Index of the label word that appears first in ``answer`` as a whole word (any case); None if none does.

    At one position the longer word wins ("very good" over "very").
    """
    best = None
    for c, word in enumerate(words):
        m = re.search(rf"(?<!\w){re.escape(word.strip())}(?!\w)", answer, flags=re.IGNORECASE)
        if m and (best is None or (m.start(), -len(m.group())) < best[:2]):
            best = (m.start(), -len(m.group()), c)
    return None if best is None else best[2]


def _instruction(words: list[str]) -> str:
    listed = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
    what = "one word" if all(len(w.split()) == 1 for w in words) else "one of"
    return f"Answer with {what}: {listed}."


def span_logprob(response: dict, start: int, end: int) -> float:
    """Sum of the log-probabilities of the echoed tokens that cover characters [start, end) of the prompt.

    A token counts when it ends after ``start`` and begins before ``end``: a token that straddles the start
    (" positive" after a template ending in a space) is the label's. Tokens after ``end`` (generated by a server
    that ignores ``max_tokens=0``) do not count.
    """
    try:
        lp = response["choices"][0]["logprobs"]
        tokens, values, offsets = lp["tokens"], lp["token_logprobs"], lp["text_offset"]
    except (KeyError, IndexError, TypeError):
        raise Unscorable("the API answered the logprob request without token log-probabilities") from None
    if not (isinstance(tokens, list) and isinstance(values, list) and isinstance(offsets, list)):
        raise Unscorable("the API answered the logprob request without token log-probabilities")
    if not len(tokens) == len(values) == len(offsets):
        raise Unscorable("the API's echoed tokens, log-probabilities and offsets differ in length")
    total, found = 0.0, False
    for i, (token, value, begin) in enumerate(zip(tokens, values, offsets)):
        stop = offsets[i + 1] if i + 1 < len(offsets) else begin + len(token)
        if begin < end and stop > start:
            if not isinstance(value, (int, float)):
                raise Unscorable("the API gave no log-probability for a label token")
            total += value
            found = True
    if not found:
        raise Unscorable("the API did not echo the prompt's tokens (echo=true is not supported)")
    return total


def _chat_answer(response: dict) -> str:
    try:
        content = response["choices"][0]["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise PezError("the API's chat answer has no choices[0].message: is it an OpenAI-compatible API?") from None
    return content if isinstance(content, str) else ""
