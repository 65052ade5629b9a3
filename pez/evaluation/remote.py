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

import email.utils
import functools
import hashlib
import json
import logging
import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from pez.errors import PezError
from pez.evaluation.base import EvalResult, accuracy_of
from pez.tasks import Task

log = logging.getLogger(__name__)

MODES = ("auto", "logprob", "parse")
COMPLETIONS = "/completions"
CHAT = "/chat/completions"
PARSE_MAX_TOKENS = 8  # enough for "Positive." from a chat model; the reply is read for a label word only
MAX_BACKOFF = 60.0  # seconds: the longest wait between retries without a Retry-After header
MAX_RETRY_AFTER = 600.0  # seconds: a longer Retry-After is cut to this
RETRY_STATUS = (408, 409, 425, 429)  # and every 5xx
FALLBACK_STATUS = (400, 404, 422)  # a logprob request refused with these makes auto mode parse answers instead


class ApiFailure(PezError):
    """The API failed mid-run: ``partial`` is the :class:`EvalResult` of the examples answered so far
    (``complete=False``; ``partial.n`` may be 0). Answered requests are cached, so a rerun resumes."""

    def __init__(self, message: str, partial: EvalResult):
        super().__init__(message)
        self.partial = partial


class _Unscorable(PezError):
    """A logprob request the server refused, or answered without log-probabilities (auto mode parses instead)."""


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
    root = _api_root(base_url)
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
                api.post(COMPLETIONS, payload, functools.partial(_span_logprob, start=len(filled), end=len(text)))
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

    api = _Api(root, key, api_key_env, ResponseCache(cache), timeout, max_retries, backoff)
    try:
        todo = list(range(len(examples)))
        if mode == "auto" and todo:
            first = todo.pop(0)
            try:
                done(by_logprob(first))
            except _Unscorable as e:
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


def _api_root(base_url: str) -> str:
    """The base URL without a trailing slash, checked: http(s), a host, and an API path but no endpoint."""
    url = (base_url or "").strip().rstrip("/")
    parts = urlsplit(url)
    example = "e.g. http://127.0.0.1:8000/v1 or https://api.openai.com/v1"
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PezError(f"base URL {base_url!r} is not an http(s) URL: give the API root with its path, {example}")
    if parts.query or parts.fragment:
        raise PezError(f"base URL {base_url!r} has a query or fragment: give the API root only, {example}")
    for endpoint in (CHAT, COMPLETIONS):
        if parts.path.endswith(endpoint):
            raise PezError(
                f"base URL {base_url!r} names an endpoint: give the API root {url[: -len(endpoint)]} "
                f"(pez appends {endpoint} itself)"
            )
    if not parts.path:
        raise PezError(
            f"base URL {base_url!r} has no API path: give the root as the OpenAI SDK takes it, usually {url}/v1"
        )
    return url


def _span_logprob(response: dict, start: int, end: int) -> float:
    """Sum of the log-probabilities of the echoed tokens that cover characters [start, end) of the prompt.

    A token counts when it ends after ``start`` and begins before ``end``: a token that straddles the start
    (" positive" after a template ending in a space) is the label's. Tokens after ``end`` (generated by a server
    that ignores ``max_tokens=0``) do not count.
    """
    try:
        lp = response["choices"][0]["logprobs"]
        tokens, values, offsets = lp["tokens"], lp["token_logprobs"], lp["text_offset"]
    except (KeyError, IndexError, TypeError):
        raise _Unscorable("the API answered the logprob request without token log-probabilities") from None
    if not (isinstance(tokens, list) and isinstance(values, list) and isinstance(offsets, list)):
        raise _Unscorable("the API answered the logprob request without token log-probabilities")
    if not len(tokens) == len(values) == len(offsets):
        raise _Unscorable("the API's echoed tokens, log-probabilities and offsets differ in length")
    total, found = 0.0, False
    for i, (token, value, begin) in enumerate(zip(tokens, values, offsets)):
        stop = offsets[i + 1] if i + 1 < len(offsets) else begin + len(token)
        if begin < end and stop > start:
            if not isinstance(value, (int, float)):
                raise _Unscorable("the API gave no log-probability for a label token")
            total += value
            found = True
    if not found:
        raise _Unscorable("the API did not echo the prompt's tokens (echo=true is not supported)")
    return total


def _chat_answer(response: dict) -> str:
    try:
        content = response["choices"][0]["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise PezError("the API's chat answer has no choices[0].message: is it an OpenAI-compatible API?") from None
    return content if isinstance(content, str) else ""


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); None when absent or unreadable."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _error_message(r: httpx.Response) -> str:
    """The server's error message (OpenAI's ``{"error": {"message": ...}}`` or the body), one short line."""
    try:
        body = r.json()
        error = body.get("error", body) if isinstance(body, dict) else body
        message = error.get("message", error) if isinstance(error, dict) else error
    except ValueError:
        message = r.text
    line = " ".join(str(message).split())
    return line[:200] + ("..." if len(line) > 200 else "")


class ResponseCache:
    """API answers in a SQLite file, keyed by sha256 of (base URL, endpoint, canonical JSON payload).

    Each answer is committed as it is stored, so an interrupted run keeps everything it was answered. Safe to
    share between threads (one lock) and processes (SQLite's own locking).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            with self._db:
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS responses "
                    "(key TEXT PRIMARY KEY, endpoint TEXT NOT NULL, response TEXT NOT NULL, created REAL NOT NULL)"
                )
        except (OSError, sqlite3.Error) as e:
            raise PezError(
                f"cannot use {self.path} as the API response cache ({e}): pass another file with --cache"
            ) from None

    @staticmethod
    def key(base_url: str, endpoint: str, payload: dict) -> str:
        text = json.dumps([base_url, endpoint, payload], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def get(self, key: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, endpoint: str, response: dict) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                (key, endpoint, json.dumps(response, ensure_ascii=False), time.time()),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Api:
    """POSTs to an OpenAI-compatible API through the cache, with retries; counts requests sent and cache hits."""

    def __init__(self, root, key, key_env, cache, timeout, max_retries, backoff):
        self.root, self.key_env, self.cache = root, key_env, cache
        self.max_retries, self.backoff, self.timeout = max_retries, backoff, timeout
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout), headers={"Authorization": f"Bearer {key}", "User-Agent": "pez"}
        )
        self.sent = self.hits = 0
        self._count = threading.Lock()
        self._stop = threading.Event()  # set when the run stops: workers waiting to retry give up
        self._rng = random.Random()

    def post(self, endpoint: str, payload: dict, read: Callable[[dict], Any]) -> Any:
        """``read(answer)`` for the cached or fresh answer; only answers that ``read`` accepts are cached."""
        key = self.cache.key(self.root, endpoint, payload)
        answer = self.cache.get(key)
        if answer is not None:
            with self._count:
                self.hits += 1
            return read(answer)
        answer = self._send(endpoint, payload)
        value = read(answer)
        self.cache.put(key, endpoint, answer)
        return value

    def run(self, score: Callable[[int], dict], todo: list[int], concurrency: int, done: Callable[[dict], None]):
        """``done(score(i))`` for each i, ``concurrency`` at a time; on failure, keeps what finished and re-raises."""
        pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="pez-api")
        futures = [pool.submit(score, i) for i in todo]
        reported = set()
        try:
            for f in as_completed(futures):
                reported.add(f)
                done(f.result())
        except BaseException:
            self._stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            for f in futures:  # requests in flight when the run failed may still have been answered
                if f not in reported and f.done() and not f.cancelled() and f.exception() is None:
                    done(f.result())
            raise
        finally:
            pool.shutdown(wait=True)

    def _send(self, endpoint: str, payload: dict) -> dict:
        url = self.root + endpoint
        for attempt in range(self.max_retries + 1):
            if self._stop.is_set():
                raise PezError("the evaluation stopped")
            wait = None
            with self._count:
                self.sent += 1
            try:
                r = self.client.post(url, json=payload)
            except httpx.TimeoutException:
                problem = f"no answer within {self.timeout:g} s"
            except httpx.TransportError as e:
                problem = f"cannot connect ({type(e).__name__}: {e})"
            else:
                if r.is_success:
                    try:
                        return r.json()
                    except ValueError:
                        raise PezError(
                            f"{url} answered HTTP {r.status_code} with something that is not JSON: check the base "
                            "URL is an OpenAI-compatible API root (e.g. http://127.0.0.1:8000/v1)"
                        ) from None
                message = f"HTTP {r.status_code}: {_error_message(r)}"
                if r.status_code in (401, 403):
                    raise PezError(
                        f"the API refused the key in ${self.key_env} ({message}): set {self.key_env} to a key "
                        f"valid for {self.root}"
                    )
                if r.status_code not in RETRY_STATUS and r.status_code < 500:
                    if endpoint == COMPLETIONS and r.status_code in FALLBACK_STATUS:
                        raise _Unscorable(
                            f"{url} refused the logprob request ({message}): score by parsing answers instead "
                            "(mode 'parse', --scoring parse)"
                        )
                    raise PezError(f"{url} refused the request ({message}): check the model name and base URL")
                problem = message
                wait = _retry_after(r.headers)
            if attempt == self.max_retries:
                break
            if wait is None:
                wait = min(MAX_BACKOFF, self.backoff * 2**attempt) * (0.5 + self._rng.random())
            log.warning("%s: %s; retry %d of %d in %.1f s", url, problem, attempt + 1, self.max_retries, wait)
            if self._stop.wait(wait):
                raise PezError("the evaluation stopped")
        raise PezError(
            f"{url} failed {self.max_retries + 1} times in a row ({problem}): try again later or raise "
            "--max-retries; answered requests are cached, so a rerun resumes where this one stopped"
        )

    def close(self) -> None:
        self.client.close()
        self.cache.close()
