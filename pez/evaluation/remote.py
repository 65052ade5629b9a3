"""Score a text prompt on an OpenAI-compatible HTTP API, so a prompt found on an open LM can be checked on other
models, API-only ones included (docs/evaluation.md#api-scoring).

Three ways to score, the first as in the paper's protocol (Wen et al. 2023):

- ``logprob``: the label with the highest log-probability wins. Each (example, label) pair is one legacy
  ``/completions`` request that echoes the filled template plus the label's continuation (``echo: true``,
  ``max_tokens: 1``: never 0, which some servers read as "no limit"); the label's score is the sum of the
  echoed log-probabilities of the tokens that cover the continuation.
- ``logprob-corrected``: the same on a server whose echoed values are shifted by one position (llama-cpp-python);
  each token's value is read from the previous token's ``top_logprobs``, or, when it is not among them, from the
  ``top_logprobs`` of one token generated after the text before it (generation is scored right by such servers;
  one position only, so asking for many alternatives is cheap) (:mod:`pez.evaluation.probe`).
- ``parse``: one ``/chat/completions`` request per example asks for one of the label words (greedy, a few
  tokens); the earliest label word in the reply, as a whole word and in any case, is the prediction (none: no
  prediction, counted wrong). The prompt goes in the user message with the filled template, or alone in a
  system message (``prompt_role="system"``).

``auto`` checks the server first (once per base URL and model, the verdict cached): ``logprob`` when its echoed
log-probabilities are aligned, ``logprob-corrected`` when they are verifiably shifted by one, ``parse`` for any
other server. The result says which method was used and why (``scoring``, ``extras["scoring_reason"]``,
``extras["server_check"]``).

Base URL: the API root as the OpenAI SDK's ``base_url`` takes it, version path included
(``https://api.openai.com/v1``, ``http://127.0.0.1:8000/v1``); pez appends ``/completions`` and
``/chat/completions``. Every successful answer is stored at once in a SQLite cache keyed by the base URL, endpoint
and payload, so a rerun (or a run resumed after a failure) pays only for the requests not answered yet.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
from collections.abc import Callable, Sequence

from pez.errors import PezError
from pez.evaluation.client import CHAT, COMPLETIONS, ApiClient, ResponseCache, Unscorable, api_root
from pez.evaluation.options import ApiOptions, Scoring
from pez.evaluation.probe import ALIGNED, SHIFTED, check_server, next_token_logprob, shifted_span_parts
from pez.records import EvalResult, accuracy_of
from pez.text.templates import Task

log = logging.getLogger(__name__)

PARSE_MAX_TOKENS = 8  # enough for "Positive." from a chat model; the reply is read for a label word only
ECHO_TOP = 5  # top_logprobs asked for with the echo on a shifted server (for every prompt token: keep it small)
TOP_STEPS = (1000, 300000)  # then for one generated token (one position: cheap), until the label token is in
UNREADABLE_STOP = 8  # the first answers of a run, none readable as a label: the run stops (the server is unusable)


class ApiFailure(PezError):
    """The API failed mid-run: ``partial`` is the :class:`EvalResult` of the examples answered so far
    (``complete=False``; ``partial.n`` may be 0). Answered requests are cached, so a rerun resumes."""

    def __init__(self, message: str, partial: EvalResult):
        super().__init__(message)
        self.partial = partial


def api_key(api_key_env: str) -> str:
    """The key from the environment; a one-line error naming the variable when it is not set."""
    key = os.environ.get(api_key_env, "").strip()
    if not key:
        raise PezError(
            f"the API key variable {api_key_env} is not set: export {api_key_env}=KEY (any value will do for a "
            "local server without auth), or name another variable with --api-key-env"
        )
    return key


def open_client(options: ApiOptions, count_tokens=None) -> ApiClient:
    """An :class:`ApiClient` on the checked ``options.base_url`` with the key from ``options.api_key_env`` and the
    response cache (default ``pez.cache.cache_dir("api") / "responses.sqlite"``)."""
    if not options.base_url:
        raise PezError("an API model needs --base-url URL (an OpenAI-compatible endpoint)")
    root = api_root(options.base_url)
    key = api_key(options.api_key_env)
    cache = options.cache
    if cache is None:
        from pez.cache import cache_dir

        cache = cache_dir("api") / "responses.sqlite"
    o = options
    return ApiClient(root, key, o.api_key_env, ResponseCache(cache), o.timeout, o.max_retries, o.backoff, count_tokens)


def choose_scoring(api: ApiClient, model: str, scoring: Scoring = Scoring.AUTO, recheck: bool = False):
    """How to score ``model`` behind ``api``: (scoring, reason, server check or None).

    Raises:
        Unscorable: ``scoring`` is ``logprob`` and the server's log-probabilities cannot be used.
    """
    if scoring == Scoring.PARSE:
        return "parse", "parsing answers was asked for (scoring mode parse)", None
    check = check_server(api, model, recheck)
    verdict, why = check["verdict"], check["reason"]
    if verdict == ALIGNED:
        return "logprob", f"server check: {why}", check
    if verdict == SHIFTED:
        return "logprob-corrected", f"server check: {why}; each value is read one position back", check
    if scoring == Scoring.LOGPROB:
        raise Unscorable(
            f"cannot score by log-probabilities through this server ({verdict}: {why}): score by parsing answers "
            "instead (mode 'parse', --scoring parse)"
        )
    return "parse", f"server check: {why}; scoring by parsing answers instead", check


class RemoteScorer:
    """Predicts the label of one (prompt, input) through ``api`` by the chosen ``scoring``.

    :meth:`score` returns ``{"best": label index or None, "scores": per-label sums}`` (logprob scorings) or
    ``{"best": ..., "answer": reply}`` (parse); ``per_example`` is the number of requests it sends. ``best`` is
    None when the answer cannot be read as a label: a reply naming none of the label words, or a log-probability
    that is not a number (NaN, infinite) for some label.
    """

    def __init__(self, api: ApiClient, model: str, task: Task, scoring: str, prompt_role: str = "user"):
        self.api, self.model, self.task, self.scoring, self.prompt_role = api, model, task, scoring, prompt_role
        v = task.verbalizer
        self.words = [w.strip() for w in v.words]
        self.conts = [task.continuation(c) for c in range(len(v.labels))]
        self.instruction = instruction_for(self.words)
        self.per_example = 1 if scoring == "parse" else len(v.labels)

    def score(self, prompt: str, text: str) -> dict:
        if self.scoring == "parse":
            return self._parse(prompt, text)
        filled = self.task.template.fill(prompt, text)
        scores = [self._label(filled, cont) for cont in self.conts]
        if not all(math.isfinite(x) for x in scores):  # NaN would make max() pick whichever label comes first
            return {"best": None, "scores": scores}
        return {"best": max(range(len(scores)), key=scores.__getitem__), "scores": scores}

    def _label(self, filled: str, cont: str) -> float:
        text = filled + cont
        base = {"model": self.model, "prompt": text, "max_tokens": 1, "echo": True, "temperature": 0}
        if self.scoring == "logprob":
            read = functools.partial(span_logprob, start=len(filled), end=len(text))
            return self.api.post(COMPLETIONS, base | {"logprobs": 1}, read, keep=math.isfinite)
        read = functools.partial(shifted_span_parts, start=len(filled), end=len(text))
        total = 0.0
        for begin, token, value in self.api.post(COMPLETIONS, base | {"logprobs": ECHO_TOP}, read):
            total += value if value is not None else self._next(text[:begin], token)
        return total

    def _next(self, before: str, token: str) -> float:
        """log p(token | before) from the top_logprobs of one token generated after ``before``."""
        base = {"model": self.model, "prompt": before, "max_tokens": 1, "temperature": 0}
        read = functools.partial(next_token_logprob, token=token)
        for top in TOP_STEPS:
            value = self.api.post(COMPLETIONS, base | {"logprobs": top}, read)
            if value is not None:
                return value
        raise Unscorable(f"the server never gave {token!r} a log-probability, even among its top {TOP_STEPS[-1]}")

    def messages(self, prompt: str, text: str) -> list[dict]:
        """The chat messages of one example: the prompt where ``prompt_role`` puts it, then the instruction."""
        if self.prompt_role == "system" and prompt:
            user = self.task.template.fill("", text) + "\n" + self.instruction
            return [{"role": "system", "content": prompt}, {"role": "user", "content": user}]
        return [{"role": "user", "content": self.task.template.fill(prompt, text) + "\n" + self.instruction}]

    def _parse(self, prompt: str, text: str) -> dict:
        payload = {
            "model": self.model,
            "messages": self.messages(prompt, text),
            "max_tokens": PARSE_MAX_TOKENS,
            "temperature": 0,
        }
        readable = functools.partial(_names_a_label, words=self.words)
        answer = self.api.post(CHAT, payload, _chat_answer, keep=readable)
        return {"best": parse_answer(answer, self.words), "answer": answer}


def evaluate_remote(
    prompt: str,
    examples: Sequence,
    task: Task,
    model: str,
    options: ApiOptions,
    *,
    callback: Callable[[int, int], None] | None = None,
    data_name: str = "",
) -> EvalResult:
    """Accuracy of ``prompt`` on labelled ``examples`` under a model behind an OpenAI-compatible API.

    Args:
        prompt: the prompt text ("" for the empty template).
        examples: objects with ``.text`` and ``.label``.
        task: template + verbaliser; the text sent is ``task.template.fill(prompt, text)``.
        model: the API's model name (``parse_api_model("openai:NAME")``).
        options: the endpoint (``base_url``: the API root with its version path, e.g.
            ``http://127.0.0.1:8000/v1``), the key's environment variable, the response cache, the scoring
            (``logprob``, ``parse`` or ``auto``: see the module docstring), timeouts, retries and backoff,
            concurrency, the chat prompt role and whether to check the server again (:class:`ApiOptions`).
        callback: called with (done, total) after each example.
        data_name: recorded in the result.

    Returns:
        An :class:`EvalResult` whose ``scoring`` says how it was scored (``logprob``, ``logprob-corrected`` or
        ``parse``); per-label ``scores`` (logprob) or the raw ``answer`` (parse) in each prediction; ``unreadable``
        counts the answers that could not be read as a label (``predicted`` None, counted wrong, and said in a
        warning); ``extras`` holds the base URL, why this scoring (``scoring_reason``), the server check, the
        requests sent, answers read from the cache and tokens spent.

    Raises:
        PezError: bad input (uncovered label, mode, base URL, unset key variable), before any request.
        ApiFailure: the API failed or refused mid-run, or none of the first answers (up to
            :data:`UNREADABLE_STOP`) could be read as a label; it carries the partial result.
    """
    v = task.verbalizer
    gold = [v.index(e.label) for e in examples]  # every label must be covered before any request
    if not model or not model.strip():
        raise PezError("no API model name given: use openai:MODEL, e.g. openai:gpt-4o-mini")
    api = open_client(options)
    predictions: list[dict] = []
    chosen = {"scoring": "parse" if options.scoring == Scoring.PARSE else "logprob", "reason": "", "check": None}
    scorer: RemoteScorer | None = None

    def predict(i: int) -> dict:
        out = scorer.score(prompt, examples[i].text)
        best = out.pop("best")
        if "scores" in out:
            out["scores"] = dict(zip(v.labels, out["scores"]))
        return {
            "index": i,
            "text": examples[i].text,
            "label": v.labels[gold[i]],
            "predicted": None if best is None else v.labels[best],
            "correct": best == gold[i],
            **out,
        }

    def result(complete: bool) -> EvalResult:
        predictions.sort(key=lambda p: p["index"])
        extras = {
            "base_url": api.root,
            "requests": api.sent,
            "cached": api.hits,
            "tokens": api.tokens,
            "scoring_reason": chosen["reason"],
            "server_check": chosen["check"],
        }
        if chosen["scoring"] == "parse":
            extras |= {
                "instruction": instruction_for([w.strip() for w in v.words]),
                "prompt_role": str(options.prompt_role),
            }
        return EvalResult(
            prompt=prompt,
            model=f"openai:{model}",
            accuracy=accuracy_of(predictions),
            n=len(predictions),
            unreadable=sum(p["predicted"] is None for p in predictions),
            predictions=list(predictions),
            task={"template": task.template.text, "labels": list(v.labels), "words": list(v.words)},
            data=data_name,
            scoring=chosen["scoring"],
            complete=complete,
            extras=extras,
        )

    def done(p: dict) -> None:
        predictions.append(p)
        if callback is not None:
            callback(len(predictions), len(examples))
        first = min(UNREADABLE_STOP, len(examples))
        if len(predictions) == first and all(q["predicted"] is None for q in predictions):
            raise PezError(
                f"none of the first {first} answers could be read as a label ({', '.join(v.labels)}): the server "
                f"sent {server_said(predictions)} ({chosen['scoring']} scoring; {chosen['reason']}): check that "
                "--base-url serves a working model, or try --scoring parse / logprob"
            )

    try:
        scoring, reason, check = choose_scoring(api, model, options.scoring, options.recheck_server)
        chosen.update(scoring=scoring, reason=reason, check=check)
        log.info("scoring %s by %s: %s", model, scoring, reason)
        scorer = RemoteScorer(api, model, task, scoring, options.prompt_role)
        api.run(predict, list(range(len(examples))), options.concurrency, done)
    except PezError as e:
        raise ApiFailure(str(e), result(False)) from e
    finally:
        api.close()
    out = result(True)
    if out.unreadable:
        unread = [p for p in out.predictions if p["predicted"] is None]
        log.warning("%d of %d answers could not be read as a label and count as wrong (the server sent %s)",
                    out.unreadable, out.n, server_said(unread))  # fmt: skip
    return out


def server_said(predictions: Sequence[dict], show: int = 3) -> str:
    """What the server answered for some predictions (or :meth:`RemoteScorer.score` outputs), in a few words: the
    replies (parse scoring) or the log-probabilities (logprob scorings) of the first ``show`` distinct ones."""
    seen = []
    for p in predictions:
        if "answer" in p:
            what = repr(p["answer"][:40] + ("..." if len(p["answer"]) > 40 else ""))
        else:
            scores = p.get("scores") or []
            values = scores.values() if isinstance(scores, dict) else scores
            what = "log-probabilities " + "/".join(f"{x:.3g}" for x in values)
        if what not in seen:
            seen.append(what)
    more = f" and {len(seen) - show} other answers" if len(seen) > show else ""
    return ", ".join(seen[:show]) + more


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


def _names_a_label(answer: str, words: Sequence[str]) -> bool:
    return parse_answer(answer, words) is not None


def instruction_for(words: list[str]) -> str:
    """The line a parse request ends with: "Answer with one word: W1 or W2." ("one of" for multi-word labels)."""
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
