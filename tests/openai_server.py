"""A small OpenAI-compatible server over a real local causal LM, for testing :mod:`pez.evaluation.remote`.

Serves ``POST /v1/completions`` (greedy generation of ``max_tokens`` tokens; ``echo``; ``logprobs: K`` gives the
token log-probabilities and the top K alternatives) and ``POST /v1/chat/completions`` (greedy generation with the
model's chat template), both with ``usage``. It can behave like the real servers pez meets. Switches, at start
(flags) or at any time (``POST /control`` with a JSON object of the same names):

- ``echo_logprobs``: what echoed prompt tokens carry: ``aligned`` (OpenAI: each token's log-probability under
  the distribution before it, null for the first), ``shifted`` (llama-cpp-python without a BOS token: under the
  distribution AFTER it, ``top_logprobs`` of that distribution plus the token itself, the generated token
  dropped, null for the first), or ``none`` (llama.cpp's llama-server: null for every prompt token).
- ``max_tokens_zero``: ``echo-only`` (OpenAI's legacy meaning: echo the prompt, generate nothing) or
  ``unlimited`` (llama-cpp-python: no limit; then ``unlimited_tokens`` tokens are generated).
- ``key``: the API key to require (401 otherwise, quoting the key sent, as some servers do); null for none.
- ``logprobs``: false to refuse echo/logprobs requests with 400, like a chat-only API.
- ``fail_first`` / ``fail_from`` / ``fail_between``: fail request numbers 1..N, N+1 and later, or A..B (a burst),
  with ``fail_status`` (429 or 5xx), adding a ``Retry-After: <retry_after>`` header when ``retry_after`` is set.
- ``delay``: seconds to sleep before answering.
- ``wrong_shape``: true answers every API POST with ``{"hello": 1}`` (valid JSON, status 200, not an answer).
- ``unusable``: true answers in the right shape with nothing usable in it: every log-probability ``NaN`` (as
  Python's JSON writes it) and every chat answer ``"NaN"``; a number N makes only requests N and later so.
- ``reset``: true sets every switch back to its start value and zeroes the counts.

``GET /stats`` gives the counts since the last reset: ``requests`` (every API POST), ``completions`` and ``chat``
(answered), ``failed``, ``max_tokens_zero`` (requests that asked for ``max_tokens: 0``), ``generated`` (tokens
generated), ``tokens`` (``usage`` given), ``largest_top`` (the most ``top_logprobs`` asked for),
``last_messages`` (of the last chat request).
Run: ``python tests/openai_server.py --port-file FILE [--api-key KEY]``; the server listens on a free loopback
port and writes it to FILE when ready. Tests start it with :func:`loopback`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import threading
import time

import httpx
import torch
from flask import Flask, g, jsonify, request
from werkzeug.serving import make_server

MODEL_NAME = "smollm2"
ECHO_STYLES = ("aligned", "shifted", "none")


class Server:
    """A running loopback server: ``url`` (the API root), ``control(**switches)``, ``stats()``."""

    def __init__(self, root: str):
        self.root = root
        self.url = root + "/v1"

    def control(self, **switches) -> None:
        httpx.post(self.root + "/control", json=switches, timeout=10).raise_for_status()

    def stats(self) -> dict:
        return httpx.get(self.root + "/stats", timeout=10).json()


_RUNNING: dict[str, Server] = {}  # key -> the server this test session started, shared by the test modules


@contextlib.contextmanager
def loopback(tmp_path_factory, key: str):
    """The server requiring ``key`` in a subprocess, started once per test session; stopped when the first
    fixture holding it is torn down (at the end of the session, for session fixtures)."""
    import pytest

    if key in _RUNNING:
        yield _RUNNING[key]
        return
    folder = tmp_path_factory.mktemp("server")
    port_file, log_file = folder / "port", folder / "server.log"
    with open(log_file, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--port-file", str(port_file), "--api-key", key],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
        )
    try:
        deadline = time.monotonic() + 120
        while not port_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the test API server did not start:\n{log_file.read_text()[-3000:]}")
            time.sleep(0.1)
        server = Server(f"http://127.0.0.1:{port_file.read_text().strip()}")
        server.stats()
        _RUNNING[key] = server
        yield server
    finally:
        _RUNNING.pop(key, None)
        stop_process(proc, 10)


def create_app(model, tokenizer, start: dict) -> Flask:
    app = Flask(__name__)
    lock = threading.Lock()  # one model call at a time; also guards the switches and counts
    state = {"config": dict(start), "stats": {}, "strings": None}

    def reset():
        state["config"] = dict(start)
        state["stats"] = {
            "requests": 0,
            "completions": 0,
            "chat": 0,
            "failed": 0,
            "max_tokens_zero": 0,
            "generated": 0,
            "tokens": 0,
            "largest_top": 0,
            "last_messages": None,
        }

    reset()

    def strings() -> list[str]:
        """Every token's text alone (what llama-cpp-python's top_logprobs are keyed by), computed once."""
        if state["strings"] is None:
            state["strings"] = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        return state["strings"]

    def error(status: int, message: str, headers: dict | None = None):
        with lock:
            state["stats"]["failed"] += 1
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
        return jsonify(body), status, headers or {}

    def gate():
        """Count the request, then apply the failure switches and the key check; an error response or None. The
        request's number is kept in ``flask.g.number``."""
        with lock:
            state["stats"]["requests"] += 1
            number, config = state["stats"]["requests"], dict(state["config"])
        g.number = number
        if config["delay"]:
            time.sleep(config["delay"])
        burst = config["fail_between"]
        failing = (
            number <= config["fail_first"]
            or (config["fail_from"] is not None and number > config["fail_from"])
            or (burst is not None and burst[0] <= number <= burst[1])
        )
        if failing:
            headers = {"Retry-After": str(config["retry_after"])} if config["retry_after"] is not None else {}
            return error(config["fail_status"], f"injected failure on request {number}", headers)
        sent = request.headers.get("Authorization", "")
        if config["key"] is not None and sent != f"Bearer {config['key']}":
            return error(401, f"Incorrect API key provided: {sent.removeprefix('Bearer ')}")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return error(400, "the body must be a JSON object")
        if body.get("model") != MODEL_NAME:
            return error(404, f"The model `{body.get('model')}` does not exist")
        if config["wrong_shape"]:
            return jsonify({"hello": 1}), 200, {}
        return None

    @app.post("/control")
    def control():
        changes = request.get_json(force=True)
        with lock:
            if changes.pop("reset", False):
                reset()
            unknown = set(changes) - set(state["config"])
            if unknown:
                return jsonify({"error": f"unknown switches {sorted(unknown)}"}), 400
            state["config"].update(changes)
            return jsonify(state["config"])

    @app.get("/stats")
    def stats():
        with lock:
            return jsonify(state["stats"])

    @app.post("/v1/completions")
    def completions():
        refused = gate()
        if refused is not None:
            return refused
        body = request.get_json()
        config, number = state["config"], g.number
        if not config["logprobs"] and (body.get("echo") or body.get("logprobs") is not None):
            return error(400, "echo and logprobs are not supported for this model")
        prompt = body["prompt"][0] if isinstance(body["prompt"], list) else body["prompt"]
        echo, top = bool(body.get("echo")), body.get("logprobs")
        n_new = body.get("max_tokens", 16)
        with lock:
            if n_new == 0:
                state["stats"]["max_tokens_zero"] += 1
                n_new = config["unlimited_tokens"] if config["max_tokens_zero"] == "unlimited" else 0
            if n_new == 0 and not echo:
                return error(400, "max_tokens 0 needs echo=true")
            if top is not None:
                state["stats"]["largest_top"] = max(state["stats"]["largest_top"], int(top))
            choice, usage = _complete(model, tokenizer, strings(), prompt, n_new, echo, top, config["echo_logprobs"])
            state["stats"]["completions"] += 1
            state["stats"]["generated"] += usage["completion_tokens"]
            state["stats"]["tokens"] += usage["total_tokens"]
        if _unusable(config, number):
            choice = _nan(choice)
        answer = {"id": "cmpl-test", "object": "text_completion", "model": MODEL_NAME, "choices": [choice]}
        return jsonify(answer | {"usage": usage})

    @app.post("/v1/chat/completions")
    def chat():
        refused = gate()
        if refused is not None:
            return refused
        body = request.get_json()
        number = g.number
        with lock:
            inputs = tokenizer.apply_chat_template(
                body["messages"], add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            with torch.no_grad():
                out = model.generate(
                    **inputs, max_new_tokens=int(body.get("max_tokens") or 16), do_sample=False, top_p=None, top_k=None
                )
            n_in = inputs["input_ids"].shape[1]
            content = tokenizer.decode(out[0, n_in:], skip_special_tokens=True)
            if _unusable(state["config"], number):
                content = "NaN"
            state["stats"]["chat"] += 1
            state["stats"]["generated"] += out.shape[1] - n_in
            state["stats"]["last_messages"] = body["messages"]
            state["stats"]["tokens"] += out.shape[1]
        message = {"role": "assistant", "content": content}
        choice = {"index": 0, "message": message, "finish_reason": "length"}
        usage = {"prompt_tokens": n_in, "completion_tokens": out.shape[1] - n_in, "total_tokens": out.shape[1]}
        answer = {"id": "chatcmpl-test", "object": "chat.completion", "model": MODEL_NAME, "choices": [choice]}
        return jsonify(answer | {"usage": usage})

    return app


def _unusable(config: dict, number: int) -> bool:
    """Whether request ``number`` gets an unusable answer (the ``unusable`` switch: true, or from request N on)."""
    switch = config["unusable"]
    return switch is True or (isinstance(switch, int) and not isinstance(switch, bool) and number >= switch)


def _nan(choice: dict) -> dict:
    """A completion choice with every log-probability NaN (tokens and offsets kept)."""
    lp = choice.get("logprobs")
    if not lp:
        return choice
    nan = float("nan")
    tops = [None if t is None else dict.fromkeys(t, nan) for t in lp["top_logprobs"]]
    return choice | {"logprobs": lp | {"token_logprobs": [nan] * len(lp["token_logprobs"]), "top_logprobs": tops}}


@torch.no_grad()
def _complete(model, tokenizer, strings, prompt: str, n_new: int, echo: bool, top, style: str):
    """One completion choice and its usage: ``n_new`` greedy tokens after ``prompt``, with log-probabilities in
    OpenAI's legacy format when ``top`` is given, echoed prompt tokens as ``style`` says."""
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    out = model(torch.tensor([ids]), use_cache=True)
    rows = list(torch.log_softmax(out.logits[0].float(), -1))  # rows[t]: the distribution after token t
    past, new = out.past_key_values, []
    for k in range(n_new):
        token = int(rows[-1].argmax())
        if token == tokenizer.eos_token_id:
            break
        new.append(token)
        if k + 1 < n_new:  # a generated token is run through the model only when another one follows
            out = model(torch.tensor([[token]]), past_key_values=past, use_cache=True)
            past = out.past_key_values
            rows.append(torch.log_softmax(out.logits[0, -1].float(), -1))
    text = "".join(strings[t] for t in new)
    choice = {"index": 0, "text": (prompt + text) if echo else text, "finish_reason": "length"}
    usage = {"prompt_tokens": len(ids), "completion_tokens": len(new), "total_tokens": len(ids) + len(new)}
    if top is None:
        return choice | {"logprobs": None}, usage
    k = min(int(top), len(strings))

    def tops(row: torch.Tensor) -> dict:
        best = torch.topk(row, k).indices.tolist() if k else []
        return {strings[j]: row[j].item() for j in best}

    tokens = ids + new if echo else new
    first = 0 if echo else len(ids)  # position of tokens[0] in the whole sequence
    texts = [strings[t] for t in tokens]
    offsets = [len(prompt) if not echo else 0]
    for t in texts[:-1]:
        offsets.append(offsets[-1] + len(t))
    values, top_logprobs = [], []
    for i, t in enumerate(tokens):
        pos = first + i
        if echo and style == "shifted":  # the distribution after the token; none after the last generated one
            if pos >= len(rows):
                break
            values.append(rows[pos][t].item())
            top_logprobs.append(tops(rows[pos]) | {texts[i]: values[-1]})
        elif pos == 0 or (echo and style == "none" and pos < len(ids)):
            values.append(None)
            top_logprobs.append(None)
        else:
            values.append(rows[pos - 1][t].item())
            top_logprobs.append(tops(rows[pos - 1]))
    n = len(values)
    if echo and n:
        values[0], top_logprobs[0] = None, None
    logprobs = {"tokens": texts[:n], "token_logprobs": values, "top_logprobs": top_logprobs, "text_offset": offsets[:n]}
    return choice | {"logprobs": logprobs}, usage


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """Terminate a server process; kill it if it has not exited after ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-file", required=True, help="write the port here once listening")
    parser.add_argument("--api-key", help="require this key")
    parser.add_argument("--no-logprobs", action="store_true", help="refuse echo/logprobs with 400")
    parser.add_argument("--echo-logprobs", default="aligned", choices=ECHO_STYLES, help="echo style (aligned)")
    parser.add_argument("--fail-first", type=int, default=0, help="fail the first N requests")
    parser.add_argument("--fail-status", type=int, default=500, help="status of injected failures (500)")
    parser.add_argument("--unusable", action="store_true", help="NaN log-probabilities and chat answers")
    args = parser.parse_args()

    from pez.models import load_lm

    torch.set_num_threads(1)  # a forward of one short request: threads only fight the test process for the cores
    lm = load_lm("smollm2", "cpu")
    start = {
        "key": args.api_key,
        "logprobs": not args.no_logprobs,
        "echo_logprobs": args.echo_logprobs,
        "max_tokens_zero": "echo-only",
        "unlimited_tokens": 64,
        "fail_first": args.fail_first,
        "fail_from": None,
        "fail_between": None,
        "fail_status": args.fail_status,
        "retry_after": None,
        "delay": 0.0,
        "wrong_shape": False,
        "unusable": args.unusable,
    }
    server = make_server("127.0.0.1", 0, create_app(lm.model, lm.tokenizer, start), threaded=True)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_port))
    os.replace(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
