"""The HTTP side of API scoring: an OpenAI-compatible client with timeouts, retries with backoff (Retry-After
honoured), request and token budgets, a SQLite response cache (which also keeps each server's check, see
:mod:`pez.evaluation.probe`), and a thread pool (docs/evaluation.md#api-scoring).

``--timeout`` bounds each request as a whole, from connecting to the last byte of the answer: httpx's own timeouts
are per network operation, so a server that trickles a byte a second would never time out. Requests therefore run
as httpx ``AsyncClient`` calls under ``asyncio.timeout`` on one event loop in a background thread (one connection
pool, keep-alive, the environment's proxies), which cancels a request, and closes its connection, at its deadline.

A key is sent as ``Authorization: Bearer KEY`` and never stored or shown: cache keys hold the base URL, the
endpoint and the payload only, and server messages quoted in errors have the key cut out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import hashlib
import json
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from pez.errors import PezError

log = logging.getLogger(__name__)

COMPLETIONS = "/completions"
CHAT = "/chat/completions"
MAX_BACKOFF = 60.0  # seconds: the longest wait between retries without a Retry-After header
WAIT_NOTICE = 10.0  # seconds without an answer before pez says it is waiting (at most half the timeout)
MAX_RETRY_AFTER = 600.0  # seconds: a longer Retry-After is cut to this
RETRY_STATUS = (408, 409, 425, 429)  # and every 5xx
FALLBACK_STATUS = (400, 404, 422)  # a logprob request refused with these makes auto mode parse answers instead


class Unscorable(PezError):
    """A logprob request the server refused, or answered without log-probabilities (auto mode parses instead)."""


class KeyRefused(PezError):
    """The server refused the key (HTTP 401 or 403): nothing more is sent."""


class BudgetSpent(PezError):
    """The client's request or token budget is used up: nothing more is sent."""


def api_root(base_url: str) -> str:
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


def retry_after(headers: httpx.Headers) -> float | None:
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


def error_message(r: httpx.Response, key: str = "") -> str:
    """The server's error message (OpenAI's ``{"error": {"message": ...}}`` or the body), one short line, with
    every word that holds a piece of ``key`` replaced (servers quote the key they refuse, masked or not)."""
    try:
        body = r.json()
        error = body.get("error", body) if isinstance(body, dict) else body
        message = error.get("message", error) if isinstance(error, dict) else error
    except ValueError:
        message = r.text
    line = " ".join(redact(word, key) for word in str(message).split())
    return line[:200] + ("..." if len(line) > 200 else "")


def redact(word: str, key: str, piece: int = 4) -> str:
    """``word``, or ``[key redacted]`` when it contains ``key`` or any ``piece`` characters of it in a row."""
    n = min(piece, len(key))
    if key and any(key[i : i + n] in word for i in range(len(key) - n + 1)):
        return "[key redacted]"
    return word


def usage_tokens(answer: dict) -> int | None:
    """Tokens an answer says it cost (``usage.total_tokens``, or prompt + completion); None when not given."""
    usage = answer.get("usage") if isinstance(answer, dict) else None
    if not isinstance(usage, dict):
        return None
    total = usage.get("total_tokens")
    if isinstance(total, int):
        return total
    parts = [usage.get("prompt_tokens"), usage.get("completion_tokens")]
    return sum(parts) if all(isinstance(p, int) for p in parts) else None


class ResponseCache:
    """API answers in a SQLite file, keyed by sha256 of (base URL, endpoint, canonical JSON payload).

    Each answer is committed as it is stored, so an interrupted run keeps everything it was answered. Safe to
    share between threads (one lock) and processes (SQLite's own locking, in WAL mode so that a reader never holds
    up a writer). An answer that cannot be stored (another writer holding the file past the 30 s wait) is used
    all the same and not kept (one warning): the cache saves requests, it never stops a run.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")  # readers and the writer do not wait on each other
            self._warned = False
            with self._db:
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS responses "
                    "(key TEXT PRIMARY KEY, endpoint TEXT NOT NULL, response TEXT NOT NULL, created REAL NOT NULL)"
                )
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS server_checks "
                    "(base_url TEXT NOT NULL, model TEXT NOT NULL, verdict TEXT NOT NULL, created REAL NOT NULL, "
                    "PRIMARY KEY (base_url, model))"
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
        try:
            with self._lock, self._db:
                self._db.execute(
                    "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                    (key, endpoint, json.dumps(response, ensure_ascii=False), time.time()),
                )
        except sqlite3.OperationalError as e:  # locked past the wait, disk full: the answer is still good
            if not self._warned:
                self._warned = True
                log.warning("an API answer was not kept in the cache %s (%s): it is used, and a rerun asks again; "
                            "said once", self.path, e)  # fmt: skip

    def get_check(self, base_url: str, model: str) -> dict | None:
        """The stored verdict of a server check for (base URL, model), or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT verdict FROM server_checks WHERE base_url = ? AND model = ?", (base_url, model)
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def put_check(self, base_url: str, model: str, verdict: dict) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO server_checks VALUES (?, ?, ?, ?)",
                (base_url, model, json.dumps(verdict, ensure_ascii=False), time.time()),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


class ApiClient:
    """POSTs to an OpenAI-compatible API through the cache, with retries.

    Counts requests sent (``sent``, retries included), answers read from the cache (``hits``) and tokens spent
    (``tokens``: each fresh answer's ``usage``, or ``count_tokens(payload)`` when a server gives none). With
    ``max_requests`` / ``max_tokens`` set, a request past either raises :class:`BudgetSpent` before it is sent.
    """

    def __init__(self, root, key, key_env, cache, timeout, max_retries, backoff, count_tokens=None):
        self.root, self.key_env, self.cache = root, key_env, cache
        self.max_retries, self.backoff, self.timeout = max_retries, backoff, timeout
        self._key = key  # only ever in the Authorization header, and cut out of quoted server messages
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), headers={"Authorization": f"Bearer {key}", "User-Agent": "pez"}
        )
        self._loop = asyncio.new_event_loop()  # every request runs here, under its deadline (module docstring)
        self._io = threading.Thread(target=self._loop.run_forever, name="pez-api-io", daemon=True)
        self._io.start()
        self._inflight: set[concurrent.futures.Future] = set()
        self.sent = self.hits = self.tokens = 0
        self.max_requests: int | None = None
        self.max_tokens: int | None = None
        self.count_tokens = count_tokens
        self._count = threading.Lock()
        self._stop = threading.Event()  # set when the run stops: workers waiting to retry give up
        self._rng = random.Random()
        self._told_wait = False  # the waiting notice is said once

    def post(self, endpoint: str, payload: dict, read: Callable[[dict], Any], fresh: bool = False,
             keep: Callable[[Any], bool] | None = None) -> Any:  # fmt: skip
        """``read(answer)`` for the cached answer (unless ``fresh``) or a new one; only answers that ``read``
        accepts, and whose value ``keep`` approves when given, are cached (an unusable answer is asked again on a
        rerun, e.g. after the server is fixed)."""
        key = self.cache.key(self.root, endpoint, payload)
        answer = None if fresh else self.cache.get(key)
        if answer is not None:
            with self._count:
                self.hits += 1
            return read(answer)
        answer = self._send(endpoint, payload)
        spent = usage_tokens(answer)
        if spent is None and self.count_tokens is not None:
            spent = self.count_tokens(payload)
        with self._count:
            self.tokens += spent or 0
        value = read(answer)
        if keep is None or keep(value):
            self.cache.put(key, endpoint, answer)
        return value

    def run(self, score: Callable[[int], dict], todo: list[int], concurrency: int, done: Callable[[dict], None]):
        """``done(score(i))`` for each i, ``concurrency`` at a time; on failure, keeps what finished and re-raises."""
        self._stop.clear()
        pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="pez-api")
        futures = [pool.submit(score, i) for i in todo]
        reported = set()
        try:
            for f in as_completed(futures):
                reported.add(f)
                done(f.result())
        except BaseException:
            self._stop.set()
            with self._count:  # the run has failed (or Ctrl-C): requests in flight are cancelled, not waited for
                for future in self._inflight:
                    future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            for f in futures:  # requests in flight when the run failed may still have been answered
                if f not in reported and f.done() and not f.cancelled() and f.exception() is None:
                    done(f.result())
            raise
        finally:
            pool.shutdown(wait=True)

    async def _exchange(self, url: str, payload: dict) -> httpx.Response:
        """One POST, its answer read whole, within ``timeout`` seconds in all (TimeoutError past it)."""
        async with asyncio.timeout(self.timeout):
            return await self.client.post(url, json=payload)

    def _request(self, url: str, payload: dict) -> httpx.Response:
        """:meth:`_exchange` on the client's event loop, waited for by the calling thread."""
        future = asyncio.run_coroutine_threadsafe(self._exchange(url, payload), self._loop)
        with self._count:
            self._inflight.add(future)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise PezError("the evaluation stopped") from None
        except BaseException:
            future.cancel()  # Ctrl-C in this thread: the request stops too
            raise
        finally:
            with self._count:
                self._inflight.discard(future)

    def _send(self, endpoint: str, payload: dict) -> dict:
        url = self.root + endpoint
        started = time.monotonic()
        for attempt in range(self.max_retries + 1):
            if self._stop.is_set():
                raise PezError("the evaluation stopped")
            wait = None
            with self._count:
                if self.max_requests is not None and self.sent >= self.max_requests:
                    raise BudgetSpent(f"the budget of {self.max_requests} API requests is spent")
                if self.max_tokens is not None and self.tokens >= self.max_tokens:
                    raise BudgetSpent(f"the budget of {self.max_tokens} API tokens is spent")
                self.sent += 1
            # a server that accepts and never answers: say so while it is waited for, not only when it times out
            notice = threading.Timer(min(WAIT_NOTICE, self.timeout / 2), self._waiting, (url,))
            notice.daemon = True
            notice.start()
            try:
                r = self._request(url, payload)
            except (TimeoutError, httpx.TimeoutException):
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
                message = f"HTTP {r.status_code}: {error_message(r, self._key)}"
                if r.status_code in (401, 403):
                    raise KeyRefused(
                        f"the API refused the key in ${self.key_env} ({message}): set {self.key_env} to a key "
                        f"valid for {self.root}"
                    )
                if r.status_code not in RETRY_STATUS and r.status_code < 500:
                    if endpoint == COMPLETIONS and r.status_code in FALLBACK_STATUS:
                        raise Unscorable(
                            f"{url} refused the logprob request ({message}): score by parsing answers instead "
                            "(mode 'parse', --scoring parse)"
                        )
                    raise PezError(f"{url} refused the request ({message}): check the model name and base URL")
                problem = message
                wait = retry_after(r.headers)
            finally:
                notice.cancel()
            if attempt == self.max_retries:
                break
            if wait is None:
                wait = min(MAX_BACKOFF, self.backoff * 2**attempt) * (0.5 + self._rng.random())
            log.warning("%s: %s; retry %d of %d in %.1f s", url, problem, attempt + 1, self.max_retries, wait)
            if self.sleep(wait):
                raise PezError("the evaluation stopped")
        raise PezError(
            f"{url} failed {self.max_retries + 1} times in a row ({problem}; {time.monotonic() - started:.1f} s in "
            "all): try again later or raise --max-retries; answered requests are cached, so a rerun resumes where "
            "this one stopped"
        )

    def worst_wait(self) -> float:
        """The longest one request can take, retries and backoff included (without a server's Retry-After)."""
        waits = sum(min(MAX_BACKOFF, self.backoff * 2**a) * 1.5 for a in range(self.max_retries))
        return (self.max_retries + 1) * self.timeout + waits

    def _waiting(self, url: str) -> None:
        """Said once per client, while a request has gone unanswered for a while."""
        with self._count:
            if self._told_wait:
                return
            self._told_wait = True
        log.warning("%s: no answer yet after %.0f s; pez waits up to %g s a request (--timeout) and tries %d times "
                    "(--max-retries): at most %.0f s in all with the waits between tries (more only if the server "
                    "asks for a longer Retry-After)", url, min(WAIT_NOTICE, self.timeout / 2), self.timeout,
                    self.max_retries + 1, self.worst_wait())  # fmt: skip

    def sleep(self, seconds: float) -> bool:
        """Wait before a retry; True when the evaluation was stopped meanwhile."""
        return self._stop.wait(seconds)

    def close(self) -> None:
        """Close the connections, stop the event loop's thread, close the cache (a second call does nothing)."""
        if not self._loop.is_closed():
            try:
                asyncio.run_coroutine_threadsafe(self.client.aclose(), self._loop).result(timeout=10)
            except (concurrent.futures.TimeoutError, RuntimeError):
                pass  # a connection that will not close is dropped with the loop
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._io.join(timeout=10)
            if not self._io.is_alive():
                self._loop.close()
            self.cache.close()
