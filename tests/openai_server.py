"""A small OpenAI-compatible server over a real local causal LM, for testing :mod:`pez.evaluation.remote`.

Serves ``POST /v1/completions`` (``echo=true``, ``max_tokens=0``, ``logprobs``: the prompt's token
log-probabilities) and ``POST /v1/chat/completions`` (greedy generation with the model's chat template).
Switches, at start (flags) or at any time (``POST /control`` with a JSON object of the same names):

- ``key``: the API key to require (401 otherwise); null for none.
- ``logprobs``: false to refuse echo/logprobs requests with 400, like a chat-only API.
- ``fail_first`` / ``fail_from``: fail request numbers 1..N, or N+1 and later, with ``fail_status`` (429 or 500),
  adding a ``Retry-After: <retry_after>`` header when ``retry_after`` is set.
- ``delay``: seconds to sleep before answering.
- ``reset``: true sets every switch back to its start value and zeroes the counts.

``GET /stats`` gives the counts since the last reset: ``requests`` (every API POST), ``completions`` and ``chat``
(answered), ``failed``. Run: ``python tests/openai_server.py --port-file FILE [--api-key KEY]``; the server
listens on a free loopback port and writes it to FILE when ready.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import torch
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

MODEL_NAME = "smollm2"


def create_app(model, tokenizer, start: dict) -> Flask:
    app = Flask(__name__)
    lock = threading.Lock()  # one model call at a time; also guards the switches and counts
    state = {"config": dict(start), "stats": {}}

    def reset():
        state["config"] = dict(start)
        state["stats"] = {"requests": 0, "completions": 0, "chat": 0, "failed": 0}

    reset()

    def error(status: int, message: str, headers: dict | None = None):
        with lock:
            state["stats"]["failed"] += 1
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
        return jsonify(body), status, headers or {}

    def gate():
        """Count the request, then apply the failure switches and the key check; an error response or None."""
        with lock:
            state["stats"]["requests"] += 1
            number, config = state["stats"]["requests"], dict(state["config"])
        if config["delay"]:
            time.sleep(config["delay"])
        failing = number <= config["fail_first"] or (config["fail_from"] is not None and number > config["fail_from"])
        if failing:
            headers = {"Retry-After": str(config["retry_after"])} if config["retry_after"] is not None else {}
            return error(config["fail_status"], f"injected failure on request {number}", headers)
        if config["key"] is not None and request.headers.get("Authorization") != f"Bearer {config['key']}":
            return error(401, "Incorrect API key provided")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return error(400, "the body must be a JSON object")
        if body.get("model") != MODEL_NAME:
            return error(404, f"The model `{body.get('model')}` does not exist")
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
        if not state["config"]["logprobs"] and (body.get("echo") or body.get("logprobs") is not None):
            return error(400, "echo and logprobs are not supported for this model")
        if not body.get("echo") or body.get("max_tokens") != 0:
            return error(400, "this server only scores prompts: send echo=true and max_tokens=0")
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        top = int(body.get("logprobs") or 0)
        with lock:
            choices = [dict(index=i, **_echo(model, tokenizer, text, top)) for i, text in enumerate(prompts)]
            state["stats"]["completions"] += 1
        return jsonify({"id": "cmpl-test", "object": "text_completion", "model": MODEL_NAME, "choices": choices})

    @app.post("/v1/chat/completions")
    def chat():
        refused = gate()
        if refused is not None:
            return refused
        body = request.get_json()
        with lock:
            inputs = tokenizer.apply_chat_template(
                body["messages"], add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            with torch.no_grad():
                out = model.generate(
                    **inputs, max_new_tokens=int(body.get("max_tokens") or 16), do_sample=False, top_p=None, top_k=None
                )
            content = tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
            state["stats"]["chat"] += 1
        message = {"role": "assistant", "content": content}
        choice = {"index": 0, "message": message, "finish_reason": "length"}
        return jsonify({"id": "chatcmpl-test", "object": "chat.completion", "model": MODEL_NAME, "choices": [choice]})

    return app


@torch.no_grad()
def _echo(model, tokenizer, text: str, top: int) -> dict:
    """OpenAI's echo answer for ``text``: its tokens, their offsets and log-probabilities (the first has none)."""
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    ids = torch.tensor([enc["input_ids"]])  # (1, T)
    logp = torch.log_softmax(model(ids).logits[0].float(), dim=-1)  # (T, V)
    offsets = enc["offset_mapping"]
    tokens = [text[a:b] for a, b in offsets]
    values = [None] + [logp[t - 1, ids[0, t]].item() for t in range(1, ids.shape[1])]
    tops = [None]
    for t in range(1, ids.shape[1]):
        best = torch.topk(logp[t - 1], top).indices.tolist() if top else []
        tops.append({tokenizer.decode([j]): logp[t - 1, j].item() for j in best})
    logprobs = {
        "tokens": tokens,
        "token_logprobs": values,
        "top_logprobs": tops,
        "text_offset": [a for a, _ in offsets],
    }
    return {"text": text, "logprobs": logprobs, "finish_reason": "length"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-file", required=True, help="write the port here once listening")
    parser.add_argument("--api-key", help="require this key")
    parser.add_argument("--no-logprobs", action="store_true", help="refuse echo/logprobs with 400")
    parser.add_argument("--fail-first", type=int, default=0, help="fail the first N requests")
    parser.add_argument("--fail-status", type=int, default=500, help="status of injected failures (500)")
    args = parser.parse_args()

    from pez.models import load_lm

    lm = load_lm("smollm2", "cpu")
    start = {
        "key": args.api_key,
        "logprobs": not args.no_logprobs,
        "fail_first": args.fail_first,
        "fail_from": None,
        "fail_status": args.fail_status,
        "retry_after": None,
        "delay": 0.0,
    }
    server = make_server("127.0.0.1", 0, create_app(lm.model, lm.tokenizer, start), threaded=True)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_port))
    os.replace(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
