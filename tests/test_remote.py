"""Remote evaluation over real HTTP: an OpenAI-compatible server (tests/openai_server.py) serving the embedded
SmolLM2 on loopback, in a subprocess shared by the session; each test sets the server's switches it needs."""

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import torch

from pez.errors import PezError
from pez.evaluation.client import api_root, retry_after
from pez.evaluation.remote import (
    ApiFailure,
    evaluate_remote,
    parse_answer,
    parse_api_model,
    span_logprob,
)
from pez.text.templates import Task, Template, Verbalizer

KEY_ENV = "PEZ_TEST_API_KEY"
KEY = "test-secret"
PROMPT = "Movie review sentiment."
TASK = Task(Template("{prompt} {text} It was"), Verbalizer.parse("negative,positive"))


@dataclass
class Example:
    text: str
    label: str


EXAMPLES = [
    Example("A moving, beautifully acted film that I will remember for years.", "positive"),
    Example("The plot was dull and the acting was painfully wooden.", "negative"),
    Example("I loved every minute of it; a joyful, clever delight.", "positive"),
    Example("A boring, pointless mess that wasted two hours of my life.", "negative"),
    Example("Brilliant writing and a wonderful cast make this a triumph.", "positive"),
    Example("The worst movie I have seen this year, ugly and stupid.", "negative"),
]


class Server:
    def __init__(self, root: str):
        self.root = root
        self.url = root + "/v1"

    def control(self, **switches) -> None:
        httpx.post(self.root + "/control", json=switches, timeout=10).raise_for_status()

    def stats(self) -> dict:
        return httpx.get(self.root + "/stats", timeout=10).json()


@pytest.fixture(scope="session")
def server_process(smollm2, tmp_path_factory):
    """The server subprocess; ``smollm2`` first, so the one-time conversion happens here and not in two places."""
    folder = tmp_path_factory.mktemp("server")
    port_file, log_file = folder / "port", folder / "server.log"
    script = Path(__file__).with_name("openai_server.py")
    with open(log_file, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(script), "--port-file", str(port_file), "--api-key", KEY],
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
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def server(server_process, monkeypatch):
    """The server with its start switches and zero counts, and the right key in the environment."""
    server_process.control(reset=True)
    monkeypatch.setenv(KEY_ENV, KEY)
    return server_process


def run(server, cache, **kw):
    options = {"api_key_env": KEY_ENV, "cache": cache, "mode": "logprob", "timeout": 30, "backoff": 0.01}
    return evaluate_remote(PROMPT, kw.pop("examples", EXAMPLES), TASK, "smollm2", server.url, **(options | kw))


@torch.no_grad()
def direct_scores(lm, prompt, examples):
    """Per example, per label: the sum of the label tokens' log-probabilities after the filled template."""
    tok, out = lm.tokenizer, []
    for ex in examples:
        filled = TASK.template.fill(prompt, ex.text)
        ids_f = tok(filled, add_special_tokens=False)["input_ids"]
        row = []
        for c in range(2):
            ids_c = tok(TASK.continuation(c), add_special_tokens=False)["input_ids"]
            ids = tok(filled + TASK.continuation(c), add_special_tokens=False)["input_ids"]
            assert ids == ids_f + ids_c  # the label's tokens are exactly the ones after the filled text
            logp = torch.log_softmax(lm.model(torch.tensor([ids])).logits[0], -1)  # (T, V)
            row.append(sum(logp[len(ids_f) + j - 1, t].item() for j, t in enumerate(ids_c)))
        out.append(row)
    return out


def test_logprob_scores_match_the_model(server, smollm2, tmp_path):
    result = run(server, tmp_path / "c.sqlite")
    expected = direct_scores(smollm2, PROMPT, EXAMPLES)
    assert result.scoring == "logprob" and result.complete and result.n == len(EXAMPLES)
    assert result.model == "openai:smollm2"
    for p, row, ex in zip(result.predictions, expected, EXAMPLES):
        assert list(p["scores"]) == ["negative", "positive"]
        assert list(p["scores"].values()) == pytest.approx(row, abs=1e-4)
        assert p["predicted"] == ["negative", "positive"][row.index(max(row))]
        assert p["label"] == ex.label and p["correct"] == (p["predicted"] == ex.label)
    assert result.accuracy == pytest.approx(sum(p["correct"] for p in result.predictions) / len(EXAMPLES))
    assert server.stats()["completions"] == 2 * len(EXAMPLES)
    assert result.extras["requests"] == 2 * len(EXAMPLES) and result.extras["cached"] == 0


def test_remote_agrees_with_local_evaluation(server, smollm2, tmp_path):
    from pez.evaluation.local import evaluate_local

    remote = run(server, tmp_path / "c.sqlite", examples=EXAMPLES[:3])
    local = evaluate_local(PROMPT, EXAMPLES[:3], TASK, smollm2.model, smollm2.tokenizer)
    assert [p["predicted"] for p in remote.predictions] == [p["predicted"] for p in local.predictions]
    for r, l in zip(remote.predictions, local.predictions):
        assert list(r["scores"].values()) == pytest.approx(list(l["scores"].values()), abs=1e-3)


def test_auto_falls_back_to_parsing_when_logprobs_are_refused(server, tmp_path):
    server.control(logprobs=False)
    calls = []
    result = run(server, tmp_path / "c.sqlite", mode="auto", examples=EXAMPLES[:3], callback=lambda *a: calls.append(a))
    assert result.scoring == "parse" and result.complete and result.n == 3
    assert result.extras["instruction"] == "Answer with one word: negative or positive."
    for p in result.predictions:
        assert p["predicted"] in ("negative", "positive", None)
        assert isinstance(p["answer"], str) and "scores" not in p
        c = parse_answer(p["answer"], ["negative", "positive"])
        assert p["predicted"] == (None if c is None else ["negative", "positive"][c])
        assert p["correct"] == (p["predicted"] == p["label"])
    stats = server.stats()
    assert stats["completions"] == 0 and stats["chat"] == 3 and stats["failed"] == 1  # one refused logprob probe
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_logprob_mode_refused_says_to_parse(server, tmp_path):
    server.control(logprobs=False)
    with pytest.raises(ApiFailure, match="scoring parse") as e:
        run(server, tmp_path / "c.sqlite", examples=EXAMPLES[:2])
    assert e.value.partial.n == 0 and not e.value.partial.complete


def test_parse_answer():
    words = ["negative", "positive"]
    assert parse_answer("Positive.", words) == 1
    assert parse_answer("It was NEGATIVE, not positive", words) == 0
    assert parse_answer("positively great", words) is None  # whole words only
    assert parse_answer("", words) is None
    assert parse_answer("very good indeed", ["very", "very good"]) == 1  # the longer word at the same place


def test_second_run_comes_from_the_cache(server, tmp_path):
    first = run(server, tmp_path / "c.sqlite")
    before = server.stats()["requests"]
    second = run(server, tmp_path / "c.sqlite")
    assert server.stats()["requests"] == before  # no new request
    assert second.extras["requests"] == 0 and second.extras["cached"] == 2 * len(EXAMPLES)
    assert second.predictions == first.predictions and second.accuracy == first.accuracy


def test_interrupted_run_keeps_its_answers_and_resumes(server, tmp_path):
    cache = tmp_path / "c.sqlite"
    server.control(fail_from=5, fail_status=500)  # requests 6 and later fail
    with pytest.raises(ApiFailure, match="failed 2 times") as e:
        run(server, cache, max_retries=1)
    partial = e.value.partial
    assert not partial.complete and partial.n == 2  # 5 answers: two whole examples and half of the third
    assert [p["index"] for p in partial.predictions] == [0, 1]
    assert isinstance(e.value, PezError)
    server.control(reset=True)
    resumed = run(server, cache)
    assert server.stats()["requests"] == 2 * len(EXAMPLES) - 5  # only the rest
    assert resumed.complete and resumed.n == len(EXAMPLES)
    assert resumed.predictions[:2] == partial.predictions


@pytest.mark.parametrize("status,retry_after", [(429, 0), (500, None)])
def test_transient_failures_are_retried(server, tmp_path, status, retry_after):
    server.control(fail_first=2, fail_status=status, retry_after=retry_after)
    result = run(server, tmp_path / "c.sqlite", examples=EXAMPLES[:2], max_retries=2)
    assert result.complete and result.n == 2
    stats = server.stats()
    assert stats["failed"] == 2 and stats["completions"] == 4 and stats["requests"] == 6


def test_retry_after_is_honoured_and_backoff_doubles(server, tmp_path, monkeypatch):
    """The waits between retries: the server's Retry-After when it sends one, else backoff * 2^attempt with
    jitter in [0.5, 1.5). The waits are recorded instead of slept."""
    from pez.evaluation.client import ApiClient

    waits = []
    monkeypatch.setattr(ApiClient, "sleep", lambda self, seconds: waits.append(seconds) or False)
    server.control(fail_first=2, fail_status=429, retry_after=2)
    assert run(server, tmp_path / "a.sqlite", examples=EXAMPLES[:1], max_retries=3).complete
    assert waits == [2.0, 2.0]
    waits.clear()
    server.control(reset=True)
    server.control(fail_first=4, fail_status=503)
    assert run(server, tmp_path / "b.sqlite", examples=EXAMPLES[:1], max_retries=4, backoff=1.0).complete
    assert len(waits) == 4
    for attempt, wait in enumerate(waits):
        assert 0.5 * 2**attempt <= wait < 1.5 * 2**attempt, waits


def test_concurrent_run_equals_sequential(server, tmp_path):
    one = run(server, tmp_path / "a.sqlite")
    three = run(server, tmp_path / "b.sqlite", concurrency=3)
    assert three.predictions == one.predictions


def test_wrong_key_is_refused_at_once(server, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "wrong")
    with pytest.raises(PezError, match=rf"refused the key in \${KEY_ENV}"):
        run(server, tmp_path / "c.sqlite", mode="auto")
    assert server.stats()["requests"] == 1  # no retry, no fallback


def test_bad_input_fails_before_any_request(server, tmp_path, monkeypatch):
    with pytest.raises(PezError, match="not covered by the verbaliser"):
        run(server, tmp_path / "c.sqlite", examples=EXAMPLES[:2] + [Example("So-so.", "neutral")])
    with pytest.raises(PezError, match="no API path"):
        evaluate_remote(PROMPT, EXAMPLES, TASK, "smollm2", server.root, api_key_env=KEY_ENV, cache=tmp_path / "c")
    with pytest.raises(PezError, match="unknown scoring mode"):
        run(server, tmp_path / "c.sqlite", mode="guess")
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(PezError, match=f"{KEY_ENV} is not set"):
        run(server, tmp_path / "c.sqlite")
    assert server.stats()["requests"] == 0


def test_unknown_model_names_the_problem(server, tmp_path):
    with pytest.raises(ApiFailure, match="does not exist"):
        evaluate_remote(PROMPT, EXAMPLES[:1], TASK, "gpt-nope", server.url, api_key_env=KEY_ENV, cache=tmp_path / "c")
    assert server.stats()["requests"] == 2  # the logprob probe, then the chat request


def test_timeout_and_dead_server(server, tmp_path):
    server.control(delay=0.5)
    with pytest.raises(ApiFailure, match="no answer within 0.1 s"):
        run(server, tmp_path / "c.sqlite", examples=EXAMPLES[:1], timeout=0.1, max_retries=0)
    deadline = time.monotonic() + 10
    while server.stats()["completions"] < 1 and time.monotonic() < deadline:  # let the slow request finish
        time.sleep(0.05)
    with pytest.raises(ApiFailure, match="cannot connect"):
        evaluate_remote(
            PROMPT,
            EXAMPLES[:1],
            TASK,
            "smollm2",
            "http://127.0.0.1:9/v1",
            api_key_env=KEY_ENV,
            cache=tmp_path / "c.sqlite",
            max_retries=1,
            backoff=0.01,
        )


def test_helpers():
    assert parse_api_model("openai:gpt-4o-mini") == "gpt-4o-mini"
    assert parse_api_model("smollm2") is None and parse_api_model(None) is None
    with pytest.raises(PezError, match="needs a model name"):
        parse_api_model("openai:")
    assert api_root("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1"
    assert api_root("https://generativelanguage.googleapis.com/v1beta/openai").endswith("/openai")
    with pytest.raises(PezError, match="names an endpoint"):
        api_root("http://127.0.0.1:8000/v1/chat/completions")
    with pytest.raises(PezError, match="not an http"):
        api_root("127.0.0.1:8000/v1")
    assert retry_after(httpx.Headers({"Retry-After": "3"})) == 3.0
    assert retry_after(httpx.Headers({})) is None and retry_after(httpx.Headers({"Retry-After": "soon"})) is None
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 < retry_after(httpx.Headers({"Retry-After": date})) <= 30
    # " positive" straddles a template that ends in a space: the token is the label's
    echo = {
        "choices": [
            {
                "logprobs": {
                    "tokens": ["It", " was", " positive"],
                    "token_logprobs": [None, -1.0, -2.0],
                    "text_offset": [0, 2, 6],
                }
            }
        ]
    }
    assert span_logprob(echo, 7, 15) == -2.0  # "It was " + "positive"
    assert span_logprob(echo, 6, 15) == -2.0  # "It was" + " positive"
