"""Remote evaluation over real HTTP: an OpenAI-compatible server (tests/openai_server.py) serving the embedded
SmolLM2 on loopback, in a subprocess shared by the session; each test sets the server's switches it needs, among
them the behaviours of real servers (llama-cpp-python's shifted echo and unlimited max_tokens 0, llama-server's
missing prompt log-probabilities, 429 with Retry-After, 5xx bursts)."""

import re
import time
from dataclasses import dataclass

import httpx
import pytest
import torch

from pez.errors import PezError
from pez.evaluation.client import api_root, redact, retry_after, usage_tokens
from pez.evaluation.options import ApiOptions, parse_api_model
from pez.evaluation.probe import next_token_logprob, shifted_span_parts
from pez.evaluation.remote import (
    ApiFailure,
    evaluate_remote,
    parse_answer,
    span_logprob,
)
from pez.text.templates import Task, Template, Verbalizer
from tests.openai_server import loopback

KEY_ENV = "PEZ_TEST_API_KEY"
KEY = "test-secret"
PROMPT = "Movie review sentiment."
TASK = Task(Template("{prompt} {text} It was"), Verbalizer.parse("negative,positive"))
PROBE = 2  # requests of the server check (generate one token, then echo it), once per cache


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


@pytest.fixture(scope="session")
def server_process(smollm2, tmp_path_factory):
    """The server subprocess, one per session (shared with tests/test_api_search.py); ``smollm2`` first, so the
    one-time conversion happens here and not in two places."""
    with loopback(tmp_path_factory, KEY) as server:
        yield server


@pytest.fixture
def server(server_process, monkeypatch):
    """The server with its start switches and zero counts, and the right key in the environment."""
    server_process.control(reset=True)
    monkeypatch.setenv(KEY_ENV, KEY)
    return server_process


def run(server, cache, **kw):
    examples, callback = kw.pop("examples", EXAMPLES), kw.pop("callback", None)
    options = {"base_url": server.url, "api_key_env": KEY_ENV, "cache": cache, "scoring": "logprob", "timeout": 30,
               "backoff": 0.01}  # fmt: skip
    return evaluate_remote(PROMPT, examples, TASK, "smollm2", ApiOptions(**(options | kw)), callback=callback)


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
    stats = server.stats()
    assert stats["completions"] == 2 * len(EXAMPLES) + PROBE
    assert result.extras["requests"] == 2 * len(EXAMPLES) + PROBE and result.extras["cached"] == 0
    assert result.extras["tokens"] == stats["tokens"] > 0
    check = result.extras["server_check"]
    assert check["verdict"] == "aligned" and check["first_token"] == "null" and not check["cached"]
    assert check["probe"]["generated"].strip() and "equals the generated one" in result.extras["scoring_reason"]


def test_remote_agrees_with_local_evaluation(server, smollm2, tmp_path):
    from pez.evaluation.local import evaluate_local

    remote = run(server, tmp_path / "c.sqlite", examples=EXAMPLES[:3])
    local = evaluate_local(PROMPT, EXAMPLES[:3], TASK, smollm2.model, smollm2.tokenizer)
    assert [p["predicted"] for p in remote.predictions] == [p["predicted"] for p in local.predictions]
    for r, l in zip(remote.predictions, local.predictions):
        assert list(r["scores"].values()) == pytest.approx(list(l["scores"].values()), abs=1e-3)


def test_shifted_server_is_detected_and_corrected(server, smollm2, tmp_path):
    """llama-cpp-python's echo: each token's value is taken under the distribution that follows it. Summing those
    values (what pez did before it checked servers) gives other scores; the corrected ones equal the model's."""
    from pez.evaluation.local import evaluate_local

    server.control(echo_logprobs="shifted")
    result = run(server, tmp_path / "c.sqlite", scoring="auto")
    assert result.scoring == "logprob-corrected" and result.complete
    check = result.extras["server_check"]
    assert check["verdict"] == "shifted" and "shifted by one position" in result.extras["scoring_reason"]
    assert check["probe"]["previous_top_logprob"] == pytest.approx(check["probe"]["generated_logprob"], abs=1e-4)
    expected = direct_scores(smollm2, PROMPT, EXAMPLES)
    for p, row in zip(result.predictions, expected):
        assert list(p["scores"].values()) == pytest.approx(row, abs=1e-4)
    local = evaluate_local(PROMPT, EXAMPLES, TASK, smollm2.model, smollm2.tokenizer)
    assert [p["predicted"] for p in result.predictions] == [p["predicted"] for p in local.predictions]
    assert result.accuracy == local.accuracy
    # the uncorrected sums are plausible and wrong
    filled = TASK.template.fill(PROMPT, EXAMPLES[0].text)
    text = filled + TASK.continuation(1)
    payload = {"model": "smollm2", "prompt": text, "max_tokens": 1, "echo": True, "logprobs": 1}
    answer = httpx.post(server.url + "/completions", json=payload, headers={"Authorization": f"Bearer {KEY}"}).json()
    naive = span_logprob(answer, len(filled), len(text))
    assert abs(naive - expected[0][1]) > 0.5


def test_server_without_prompt_logprobs_is_scored_by_parsing(server, tmp_path):
    """llama.cpp's llama-server: echo gives no log-probabilities for the prompt. auto parses answers and says
    why; logprob mode refuses before scoring anything."""
    server.control(echo_logprobs="none")
    result = run(server, tmp_path / "c.sqlite", scoring="auto", examples=EXAMPLES[:2])
    assert result.scoring == "parse" and result.complete and result.n == 2
    assert result.extras["server_check"]["verdict"] == "no-prompt-logprobs"
    assert "without its tokens' log-probabilities" in result.extras["scoring_reason"]
    assert server.stats()["completions"] == PROBE and server.stats()["chat"] == 2
    server.control(reset=True, echo_logprobs="none")
    with pytest.raises(ApiFailure, match="cannot score by log-probabilities through this server") as e:
        run(server, tmp_path / "c.sqlite", scoring="logprob", examples=EXAMPLES[:2])
    assert e.value.partial.n == 0 and server.stats()["requests"] == 0  # the verdict came from the cache


def test_max_tokens_zero_is_never_sent(server, tmp_path):
    """llama-cpp-python reads max_tokens 0 as "no limit" and generates up to the context size."""
    server.control(max_tokens_zero="unlimited")
    run(server, tmp_path / "a.sqlite", scoring="auto", examples=EXAMPLES[:2])
    server.control(echo_logprobs="shifted")
    run(server, tmp_path / "b.sqlite", scoring="auto", examples=EXAMPLES[:2])
    stats = server.stats()
    assert stats["max_tokens_zero"] == 0
    assert stats["generated"] <= stats["completions"]  # at most one generated token per request


def test_server_check_is_cached(server, tmp_path):
    cache = tmp_path / "c.sqlite"
    first = run(server, cache, examples=EXAMPLES[:1])
    second = run(server, cache, examples=EXAMPLES[1:2])
    assert not first.extras["server_check"]["cached"] and second.extras["server_check"]["cached"]
    assert second.extras["requests"] == 2  # no probe the second time
    assert second.extras["server_check"]["verdict"] == first.extras["server_check"]["verdict"] == "aligned"
    server.control(echo_logprobs="shifted")  # the server changed behind the same URL: --recheck-server
    third = run(server, cache, examples=EXAMPLES[2:3], scoring="auto", recheck_server=True)
    assert third.scoring == "logprob-corrected" and not third.extras["server_check"]["cached"]
    assert run(server, cache, examples=EXAMPLES[2:3], scoring="auto").extras["server_check"]["verdict"] == "shifted"


def test_prompt_in_the_system_message(server, tmp_path):
    def answered(cache, **kw):
        try:
            return run(server, cache, scoring="parse", examples=EXAMPLES[:1], **kw)
        except ApiFailure as e:  # smollm2 may answer off-label, and one answer is all the run has: no reading
            assert "could be read as a label" in str(e)
            return e.partial

    result = answered(tmp_path / "c.sqlite", prompt_role="system")
    assert result.scoring == "parse" and result.extras["prompt_role"] == "system"
    system, user = server.stats()["last_messages"]
    assert system == {"role": "system", "content": PROMPT}
    assert user["role"] == "user" and user["content"].startswith(EXAMPLES[0].text + " It was\nAnswer with")
    answered(tmp_path / "d.sqlite")
    (user,) = server.stats()["last_messages"]
    assert user["content"].startswith(f"{PROMPT} {EXAMPLES[0].text} It was\n")


def test_auto_falls_back_to_parsing_when_logprobs_are_refused(server, tmp_path):
    server.control(logprobs=False)
    calls = []
    result = run(
        server, tmp_path / "c.sqlite", scoring="auto", examples=EXAMPLES[:3], callback=lambda *a: calls.append(a)
    )
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
    assert result.extras["server_check"]["verdict"] == "refused"


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
    server.control(fail_from=5 + PROBE, fail_status=500)  # after the probe, the 6th scoring request and later fail
    with pytest.raises(ApiFailure, match="failed 2 times") as e:
        run(server, cache, max_retries=1)
    partial = e.value.partial
    assert not partial.complete and partial.n == 2  # 5 answers: two whole examples and half of the third
    assert [p["index"] for p in partial.predictions] == [0, 1]
    assert isinstance(e.value, PezError)
    server.control(reset=True)
    resumed = run(server, cache)
    assert server.stats()["requests"] == 2 * len(EXAMPLES) - 5  # only the rest: no probe, no answered request
    assert resumed.complete and resumed.n == len(EXAMPLES)
    assert resumed.predictions[:2] == partial.predictions


@pytest.mark.parametrize("status,retry_after", [(429, 0), (500, None)])
def test_transient_failures_are_retried(server, tmp_path, status, retry_after):
    server.control(fail_first=2, fail_status=status, retry_after=retry_after)
    result = run(server, tmp_path / "c.sqlite", examples=EXAMPLES[:2], max_retries=2)
    assert result.complete and result.n == 2
    stats = server.stats()
    assert stats["failed"] == 2 and stats["completions"] == 4 + PROBE and stats["requests"] == 6 + PROBE


def test_a_burst_of_server_errors_mid_run(server, tmp_path):
    clean = run(server, tmp_path / "a.sqlite")
    server.control(reset=True, fail_between=[5, 8], fail_status=503)  # four 503s in a row, mid-run
    bursty = run(server, tmp_path / "b.sqlite", max_retries=4)
    assert bursty.complete and bursty.predictions == clean.predictions
    stats = server.stats()
    assert stats["failed"] == 4 and stats["requests"] == 2 * len(EXAMPLES) + PROBE + 4


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
    """The server quotes the refused key in its message (as OpenAI does, masked); pez never repeats it."""
    monkeypatch.setenv(KEY_ENV, "sk-wrong-0123456789")
    with pytest.raises(PezError, match=rf"refused the key in \${KEY_ENV}") as e:
        run(server, tmp_path / "c.sqlite", scoring="auto")
    assert server.stats()["requests"] == 1  # no retry, no fallback
    assert "0123" not in str(e.value) and "[key redacted]" in str(e.value)


def test_the_key_is_never_stored(server, tmp_path):
    cache = tmp_path / "c.sqlite"
    result = run(server, cache, examples=EXAMPLES[:1])
    out = tmp_path / "r.json"
    result.save(out)
    for path in (cache, out):
        assert KEY.encode() not in path.read_bytes()


def test_bad_input_fails_before_any_request(server, tmp_path, monkeypatch):
    with pytest.raises(PezError, match="not covered by the verbaliser"):
        run(server, tmp_path / "c.sqlite", examples=EXAMPLES[:2] + [Example("So-so.", "neutral")])
    with pytest.raises(PezError, match="no API path"):
        evaluate_remote(PROMPT, EXAMPLES, TASK, "smollm2", ApiOptions(server.root, KEY_ENV, tmp_path / "c"))
    with pytest.raises(PezError, match="unknown scoring mode"):
        run(server, tmp_path / "c.sqlite", scoring="guess")
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(PezError, match=f"{KEY_ENV} is not set"):
        run(server, tmp_path / "c.sqlite")
    assert server.stats()["requests"] == 0


def test_unknown_model_names_the_problem(server, tmp_path):
    with pytest.raises(ApiFailure, match="does not exist"):
        evaluate_remote(PROMPT, EXAMPLES[:1], TASK, "gpt-nope", ApiOptions(server.url, KEY_ENV, tmp_path / "c"))
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
            ApiOptions("http://127.0.0.1:9/v1", KEY_ENV, tmp_path / "c.sqlite", max_retries=1, backoff=0.01),
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
    # shifted: each token's value sits in the previous token's top_logprobs; missing there means "ask for more"
    shifted = {
        "choices": [
            {
                "logprobs": {
                    "tokens": ["It", " was", " positive"],
                    "token_logprobs": [None, -9.0, -8.0],
                    "top_logprobs": [None, {" positive": -0.5, " was": -9.0}, {"!": -0.1, " positive": -8.0}],
                    "text_offset": [0, 2, 6],
                }
            }
        ]
    }
    assert shifted_span_parts(shifted, 6, 15) == [(6, " positive", -0.5)]
    shifted["choices"][0]["logprobs"]["top_logprobs"][1] = {" good": -0.3, " was": -9.0}
    assert shifted_span_parts(shifted, 6, 15) == [(6, " positive", None)]  # not there: ask for the next token
    with pytest.raises(PezError, match="no token before it"):
        shifted_span_parts(shifted, 0, 2)
    generated = {
        "choices": [
            {
                "logprobs": {
                    "tokens": [" a"],
                    "token_logprobs": [-1.0],
                    "top_logprobs": [{" a": -1.0, " good": -2.5}],
                    "text_offset": [6],
                }
            }
        ]
    }
    assert next_token_logprob(generated, " good") == -2.5 and next_token_logprob(generated, " a") == -1.0
    assert next_token_logprob(generated, " bad") is None
    assert redact("sk-abc***xyz:", "sk-abcdefxyz") == "[key redacted]" and redact("model", "sk-abcdefxyz") == "model"
    assert usage_tokens({"usage": {"prompt_tokens": 3, "completion_tokens": 1}}) == 4 and usage_tokens({}) is None


def test_cli_evaluate_says_how_and_why(server, tmp_path, capsys):
    import json

    from pez.cli import main

    data = tmp_path / "reviews.jsonl"
    data.write_text("".join(json.dumps({"text": e.text, "label": e.label}) + "\n" for e in EXAMPLES[:2]))
    server.control(echo_logprobs="shifted")
    argv = ["evaluate", "--prompt", PROMPT, "--model", "openai:smollm2", "--base-url", server.url, "--data", str(data),
            "--split", "all", "--api-key-env", KEY_ENV, "--cache", str(tmp_path / "c.sqlite"), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "(logprob-corrected scoring)" in out and "shifted by one position" in err and KEY not in out + err


def test_a_server_that_does_not_answer_is_said_while_it_is_waited_for(server, tmp_path, caplog):
    server.control(delay=2.0)
    with pytest.raises(PezError, match="failed 1 times in a row"):
        run(server, tmp_path / "c.sqlite", examples=EXAMPLES[:1], timeout=1.0, max_retries=0)
    said = [r.getMessage() for r in caplog.records if "no answer yet" in r.getMessage()]
    assert len(said) == 1 and "--timeout" in said[0] and "--max-retries" in said[0]


@pytest.mark.parametrize("phase", ["body", "headers"])
def test_a_server_that_trickles_is_cut_at_the_timeout(tmp_path, monkeypatch, record_property, phase):
    """A byte every 0.2 s never trips a per-read timeout: --timeout must bound each request as a whole, so two
    tries of 1 s end with one clear line. The measured time is recorded (record_property), not asserted; the
    only clock in the asserts is the hang guard."""
    import threading

    from tests.slow_server import trickling

    monkeypatch.setenv(KEY_ENV, KEY)
    outcome = {}

    def call(url):
        start = time.monotonic()
        try:
            options = ApiOptions(url, KEY_ENV, tmp_path / "c.sqlite", "parse", timeout=1, max_retries=1, backoff=0.01)
            evaluate_remote(PROMPT, EXAMPLES[:1], TASK, "smollm2", options)
        except Exception as e:  # noqa: BLE001 - the test asserts what it is
            outcome["error"] = e
        outcome["seconds"] = time.monotonic() - start

    with trickling(phase, interval=0.2) as url:
        thread = threading.Thread(target=call, args=(url,), daemon=True)
        thread.start()
        thread.join(90)  # the hang guard: the answer itself would take 800 s
        assert not thread.is_alive(), "the request outlived its --timeout (still reading the trickle after 90 s)"
    record_property("seconds", round(outcome["seconds"], 2))
    error = outcome.get("error")
    assert isinstance(error, ApiFailure), error
    message = str(error)
    assert "no answer within 1 s" in message and "failed 2 times in a row" in message and "\n" not in message
    assert re.search(r"\d+\.\d s in all", message)  # the time it took, measured, in the message
    assert error.partial.n == 0 and not error.partial.complete


def test_the_wait_notice_promises_the_worst_case_with_the_backoff(tmp_path, monkeypatch):
    from pez.evaluation.remote import open_client

    monkeypatch.setenv(KEY_ENV, KEY)
    api = open_client(ApiOptions("http://127.0.0.1:9/v1", KEY_ENV, tmp_path / "c", timeout=5, max_retries=2,
                                 backoff=1.0))  # fmt: skip
    try:
        assert api.worst_wait() == 3 * 5 + 1.5 * (1 + 2)  # three tries, then the longest jittered backoffs
    finally:
        api.close()
        api.close()  # closing twice is harmless


def test_a_server_whose_every_answer_is_unusable_is_an_error(server, tmp_path, capsys):
    """NaN log-probabilities and the chat answer "NaN": auto scoring falls back to parsing, no answer names a
    label, and the run is one clear line (exit 2) saying what the server sent, not accuracy 0."""
    import json

    from pez.cli import main

    server.control(unusable=True)
    with pytest.raises(ApiFailure, match="none of the first 4 answers could be read as a label") as e:
        run(server, tmp_path / "a.sqlite", examples=EXAMPLES[:4], scoring="auto")
    assert "'NaN'" in str(e.value) and "\n" not in str(e.value) and e.value.partial.unreadable == 4
    data = tmp_path / "reviews.jsonl"
    data.write_text("".join(json.dumps({"text": x.text, "label": x.label}) + "\n" for x in EXAMPLES))
    argv = ["evaluate", "--prompt", PROMPT, "--model", "openai:smollm2", "--base-url", server.url, "--data", str(data),
            "--limit", "4", "--api-key-env", KEY_ENV, "--cache", str(tmp_path / "b.sqlite"), "--quiet",
            "--out", str(tmp_path / "r.json")]  # fmt: skip
    assert main(argv) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and "could be read as a label" in lines[0] and "'NaN'" in lines[0], err
    assert json.loads((tmp_path / "r.json").read_text())["unreadable"] == 4  # the answers are kept


def test_nan_log_probabilities_are_not_a_prediction(server, tmp_path):
    """A server checked once (the verdict cached) that then answers NaN log-probabilities: NaN must not pick the
    first label; no answer is readable, so the run is an error naming the values."""
    assert run(server, tmp_path / "c.sqlite", examples=EXAMPLES[:1]).complete  # the check passes, cached
    server.control(unusable=True)
    with pytest.raises(ApiFailure, match="log-probabilities nan/nan"):
        run(server, tmp_path / "c.sqlite", examples=EXAMPLES[1:4])


def test_some_unreadable_answers_are_counted_and_said(server, tmp_path, caplog, capsys):
    """From the ninth request on the server answers NaN log-probabilities (the check and three examples of two
    labels come first): the result counts the last three answers (wrong), says so in a warning and on the CLI's
    result line, and keeps the rest."""
    import json

    from pez.cli import main

    clean = run(server, tmp_path / "a.sqlite")
    server.control(reset=True, unusable=PROBE + 2 * 3 + 1)
    result = run(server, tmp_path / "b.sqlite")
    assert result.complete and result.n == 6 and result.unreadable == 3
    assert [p["predicted"] for p in result.predictions[3:]] == [None] * 3
    assert result.predictions[:3] == clean.predictions[:3]
    assert result.accuracy == sum(p["correct"] for p in clean.predictions[:3]) / 6
    said = [r.getMessage() for r in caplog.records if "could not be read" in r.getMessage()]
    assert len(said) == 1 and "3 of 6 answers" in said[0] and "log-probabilities nan/nan" in said[0]
    data = tmp_path / "reviews.jsonl"
    data.write_text("".join(json.dumps({"text": x.text, "label": x.label}) + "\n" for x in EXAMPLES))
    server.control(reset=True, unusable=PROBE + 2 * 3 + 1)
    argv = ["evaluate", "--prompt", PROMPT, "--model", "openai:smollm2", "--base-url", server.url, "--data", str(data),
            "--split", "all", "--scoring", "logprob", "--api-key-env", KEY_ENV, "--cache", str(tmp_path / "c.sqlite"),
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert "3 unreadable answers counted wrong" in capsys.readouterr().out
    sent = server.stats()["requests"]  # the CLI's run: the check and 6 examples of 2 labels
    again = run(server, tmp_path / "b.sqlite")  # the unreadable answers were not cached: only they are asked again
    assert again.unreadable == 3 and server.stats()["requests"] - sent == 2 * 3


def test_a_reader_holding_the_cache_does_not_stop_a_run(tmp_path):
    """Another process reading the cache (a second pez run sharing it, sqlite3 on the command line) never blocks
    the run storing its answers: the file is in WAL mode (a bench run died with 'database is locked' when a long
    read held the file)."""
    import sqlite3

    from pez.evaluation.client import ResponseCache

    cache = ResponseCache(tmp_path / "c.sqlite")
    cache.put("a", "/completions", {"n": 1})
    cache._db.execute("PRAGMA busy_timeout = 200")  # the old journal waited its 30 s, then raised
    reader = sqlite3.connect(tmp_path / "c.sqlite", timeout=0.2)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM responses").fetchone() == (1,)  # a read transaction, held open
    cache.put("b", "/completions", {"n": 2})
    assert cache.get("b") == {"n": 2}
    reader.rollback()
    reader.close()


def test_an_answer_the_cache_cannot_store_is_used_all_the_same(tmp_path, caplog):
    """A cache write that fails (another writer holding the file past the wait) costs the cache that answer, not
    the run: a warning, once, and the run goes on."""
    import sqlite3

    from pez.evaluation.client import ResponseCache

    cache = ResponseCache(tmp_path / "c.sqlite")
    cache._db.execute("PRAGMA busy_timeout = 100")
    writer = sqlite3.connect(tmp_path / "c.sqlite", timeout=0.1)
    writer.execute("BEGIN IMMEDIATE")  # another process writing, past the wait
    with caplog.at_level("WARNING"):
        cache.put("a", "/completions", {"n": 1})
        cache.put("b", "/completions", {"n": 2})
    writer.rollback()
    writer.close()
    assert cache.get("a") is None and cache.get("b") is None
    assert len([r for r in caplog.records if "not kept in the cache" in r.message]) == 1
