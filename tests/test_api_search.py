"""The API inside the search: ``discover --target`` against the loopback OpenAI-compatible server
(tests/openai_server.py, shared with tests/test_remote.py), the selection race on its own, and the dry run."""

import json
import math

import pytest

import pez
from pez.cli import main
from pez.errors import PezError
from pez.evaluation.client import BudgetSpent
from pez.evaluation.options import ApiOptions
from pez.evaluation.remote import evaluate_remote
from pez.evaluation.selection import ApiSelector
from pez.records import ApiPlan, ApiSearchReport
from tests.openai_server import loopback

KEY_ENV = "PEZ_TEST_API_KEY"
KEY = "test-secret"  # the same server as tests/test_remote.py
POS = [
    "A moving, beautifully acted film.",
    "I loved every minute of it.",
    "Brilliant writing and a wonderful cast.",
    "A joyful, clever delight.",
    "Sharp, funny and tender.",
    "One of the best films of the year.",
    "A triumph from start to finish.",
    "Warm, witty and wise.",
]
NEG = [
    "The plot was dull and the acting wooden.",
    "A boring, pointless mess.",
    "The worst movie I have seen this year.",
    "Painfully slow and badly written.",
    "I want those two hours back.",
    "Ugly, stupid and far too long.",
    "A lifeless, clumsy sequel.",
    "Nothing works in this film.",
]
BASELINE = "Is this movie review positive or negative?"


@pytest.fixture(scope="session")
def server_process(smollm2, tmp_path_factory):
    with loopback(tmp_path_factory, KEY) as server:
        yield server


@pytest.fixture
def server(server_process, monkeypatch):
    server_process.control(reset=True)
    monkeypatch.setenv(KEY_ENV, KEY)
    return server_process


@pytest.fixture(scope="module")
def tiny(smollm2):
    """The local model of these searches: a tiny random Llama over smollm2's tokenizer (fast gradients; what
    is tested is the API side). The API model is the real smollm2 behind the loopback server."""
    from pez.models import LoadedModel
    from tests.conftest import tiny_lm

    return LoadedModel("tiny-llama", "lm", tiny_lm("llama", smollm2.tokenizer), smollm2.tokenizer)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Train, dev and test files: 3, 2 and 3 positive and negative reviews each."""
    folder = tmp_path_factory.mktemp("reviews")
    parts = {"train": slice(0, 3), "dev": slice(3, 5), "test": slice(5, 8)}
    out = {}
    for name, cut in parts.items():
        rows = [{"text": t, "label": "positive"} for t in POS[cut]]
        rows += [{"text": t, "label": "negative"} for t in NEG[cut]]
        path = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        out[name] = str(path)
    return out


def search(server, model, data, cache, budget, **kw):
    options = dict(
        data=data["train"],
        eval_data=data["dev"],
        test_data=data["test"],
        target="openai:smollm2",
        base_url=server.url,
        api_budget=budget,
        api_key_env=KEY_ENV,
        cache=cache,
        api_dev_size=4,
        api_swaps=2,
        baseline_prompts=[BASELINE],
        prompt_len=3,
        steps=4,
        sync_every=2,
        eval_every=2,
        checkpoint_every=2,
        batch_size=4,
        restarts=2,
        device="cpu",
        backoff=0.01,
    )
    return pez.discover(model, **(options | kw))


@pytest.fixture(scope="module")
def found(server_process, tiny, data, tmp_path_factory):
    """One dry run, one search (aligned server, 40 requests) and one more dry run, sharing a cache."""
    cache = tmp_path_factory.mktemp("found") / "c.sqlite"
    server_process.control(reset=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(KEY_ENV, KEY)
        plan = search(server_process, tiny, data, cache, budget=40, dry_run=True)
        sent_by_plan = server_process.stats()["requests"]
        report = search(server_process, tiny, data, cache, budget=40)
        stats = server_process.stats()
        again = search(server_process, tiny, data, cache, budget=40, dry_run=True)
    return dict(plan=plan, sent_by_plan=sent_by_plan, report=report, stats=stats, again=again, cache=cache)


def test_discover_chooses_on_the_api_within_its_budget(found):
    report, stats = found["report"], found["stats"]
    assert isinstance(report, ApiSearchReport) and report.target == "openai:smollm2"
    api = report.api
    assert api["scoring"] == "logprob" and api["server_check"]["verdict"] == "aligned"
    assert api["requests"]["search"] <= 40 and api["rounds"]
    assert stats["requests"] == api["requests"]["search"] + api["requests"]["held_out"]  # every request counted
    assert api["tokens"]["search"] + api["tokens"]["held_out"] == stats["tokens"] and stats["max_tokens_zero"] == 0
    assert report.n_test == 6 and report.local_prompt == report.search["text"]
    for acc in (report.accuracy, report.transfer_accuracy, report.baseline_accuracy, report.local_accuracy):
        assert 0 <= acc <= 1
    assert set(report.baseline_prompts) == {BASELINE} and report.dev_accuracy is not None
    # the chosen prompt is at least as good on the API's dev examples as every prompt scored on all of them
    best = max((r for r in api["rounds"] if "dev_accuracy" in r), key=lambda r: r["dev_accuracy"])
    assert report.dev_accuracy >= best["dev_accuracy"]
    summary = report.summary()
    assert "chosen on the API" in summary and "local search (transfer)" in summary and "empty template" in summary
    cache = found["cache"]  # the file and its write-ahead log (WAL mode: recent answers are there)
    stored = b"".join(p.read_bytes() for p in (cache, cache.with_name(cache.name + "-wal")) if p.exists())
    assert KEY not in json.dumps(report.to_dict()) + summary and b"smollm2" in stored and KEY.encode() not in stored


def test_the_reported_api_accuracies_are_pez_evaluates(found, server):
    """Scored again with pez evaluate on the same examples: the same accuracies, all from the cache."""
    report = found["report"]
    examples = [type("E", (), {"text": p["text"], "label": p["label"]}) for p in report.predictions]
    task = pez.make_task("{prompt} {text} It was", "negative,positive")
    right = {}
    for prompt, acc in [(report.prompt, report.accuracy), (report.local_prompt, report.transfer_accuracy),
                        ("", report.baseline_accuracy), (BASELINE, report.baseline_prompts[BASELINE])]:  # fmt: skip
        again = evaluate_remote(prompt, examples, task, "smollm2", ApiOptions(server.url, KEY_ENV, found["cache"]))
        assert again.accuracy == acc and again.extras["requests"] == 0
        right[prompt] = [p["correct"] for p in again.predictions]
    assert server.stats()["requests"] == 0
    # each gain of the chosen prompt, with its paired standard error, from the same examples' answers
    for other in ("", report.local_prompt, BASELINE):
        d = [a - b for a, b in zip(right[report.prompt], right[other])]
        mean = sum(d) / len(d)
        se = math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1) / len(d))
        assert report.api["gains"][other] == pytest.approx({"gain": mean, "se": se})
    assert f"(chosen {report.api['gains']['']['gain']:+.4f} +- " in report.summary()


def test_dry_run_sends_nothing_and_bounds_the_run(found):
    plan, report = found["plan"], found["report"]
    assert isinstance(plan, ApiPlan) and found["sent_by_plan"] == 0
    assert plan.requests == {"check": 2, "selection": 38, "held_out": 6 * 4 * 2} and plan.scoring == "logprob"
    assert "not checked yet" in plan.note
    assert report.api["requests"]["held_out"] <= plan.requests["held_out"]
    assert report.api["tokens"]["held_out"] <= plan.tokens["held_out"]
    again = found["again"]
    assert again.requests["check"] == 0 and not again.note  # the verdict is cached


def test_a_shifted_server_with_the_smallest_budget(server, tiny, data, tmp_path):
    """llama-cpp-python's shifted echo inside the search: corrected scoring, and a budget of one prompt."""
    server.control(echo_logprobs="shifted")
    smallest = 2 + 4 * 2 * 3  # the check, then 4 dev examples x 2 labels x (echo + at most two generations)
    report = search(server, tiny, data, tmp_path / "c.sqlite", budget=smallest, steps=2, baseline_prompts=[])
    assert report.api["scoring"] == "logprob-corrected"
    assert report.api["requests"]["search"] <= smallest and report.dev_accuracy is not None
    assert report.accuracy is not None and server.stats()["max_tokens_zero"] == 0


def test_chat_target_gets_the_prompt_in_the_system_message(server, tiny, data, tmp_path):
    server.control(logprobs=False)
    report = search(server, tiny, data, tmp_path / "c.sqlite", budget=12, steps=2, prompt_role="system",
                    baseline_prompts=[])  # fmt: skip
    assert report.api["scoring"] == "parse" and report.api["server_check"]["verdict"] == "refused"
    assert report.api["requests"]["search"] <= 12
    messages = server.stats()["last_messages"]
    assert messages[-1]["content"].endswith("\nAnswer with one word: negative or positive.")
    system = [m for m in messages if m["role"] == "system"]
    assert not system or system[0]["content"] in (report.prompt, report.local_prompt)


def test_a_refused_key_stops_before_the_search(server, tiny, data, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-not-the-right-one")
    steps = []
    with pytest.raises(PezError, match="refused the key") as e:
        search(server, tiny, data, tmp_path / "c.sqlite", budget=40, callback=steps.append)
    assert server.stats()["requests"] == 1 and steps == []  # one request, no search step
    assert "right" not in str(e.value)


def test_a_server_answering_the_wrong_shape_stops_before_the_search(server, tiny, data, tmp_path):
    server.control(wrong_shape=True)
    steps = []
    with pytest.raises(PezError, match="not an answer|no choices|cannot read") as e:
        search(server, tiny, data, tmp_path / "c.sqlite", budget=40, callback=steps.append)
    assert steps == [] and "\n" not in str(e.value)  # no search step: stopped before the LM loaded
    assert server.stats()["requests"] <= 4


def test_a_server_whose_every_answer_is_unusable_stops_before_the_search(server, tiny, data, tmp_path):
    """NaN log-probabilities and "NaN" chat answers: the search must not run and "choose" a prompt on answers
    none of which names a label; one line saying what the server sent, before the LM loads."""
    server.control(unusable=True)
    steps = []
    with pytest.raises(PezError, match="none of the first 3 answers could be read as a label") as e:
        search(server, tiny, data, tmp_path / "c.sqlite", budget=40, callback=steps.append)
    assert steps == [] and "'NaN'" in str(e.value) and "\n" not in str(e.value)
    assert server.stats()["requests"] == 1 + 3  # the check (no log-probabilities in its first answer), 3 examples


def test_unreadable_answers_during_the_choice_are_counted(server, tiny, data, tmp_path):
    """Answers that turn unreadable after the first ones: the search goes on, the report counts them."""
    server.control(logprobs=False, unusable=6)  # the refused check, three readable answers, then "NaN"
    report = search(server, tiny, data, tmp_path / "c.sqlite", budget=12, steps=2, baseline_prompts=[])
    unread = report.api["unreadable"]
    assert report.api["scoring"] == "parse" and unread["search"] >= 1
    assert unread["held_out"] > 0 and report.api["held_out_error"].startswith("none of the")
    assert report.accuracy is None and "could not be read as a label" in report.summary()


def test_cli_discover_target(server, data, tmp_path, capsys):
    base = ["discover", "--model", "smollm2", "--data", data["train"], "--eval-data", data["dev"],
            "--test-data", data["test"], "--prompt-len", "3", "--quiet"]  # fmt: skip
    api = ["--target", "openai:smollm2", "--base-url", server.url, "--api-key-env", KEY_ENV,
           "--cache", str(tmp_path / "c.sqlite")]  # fmt: skip
    assert main(base + api + ["--api-budget", "30", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing sent" in out and "30 requests" not in out and "28 requests" in out
    for argv, message in [
        (base + ["--api-budget", "30"], "--api-budget needs --target"),
        (base + api + ["--api-budget", "0"], "--api-budget must be a positive whole number"),
        (base + api, "--target needs --api-budget"),
        (base + api + ["--api-budget", "5"], "cannot score even one prompt"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert server.stats()["requests"] == 0


class FakeApi:
    def __init__(self):
        self.sent, self.max_requests, self.max_tokens, self.tokens = 0, None, None, 0


class FakeScorer:
    """Prompt "pK" is right on an example when (example index * 7 + K) % 10 < K: higher K, more right."""

    per_example = 1

    def __init__(self):
        self.api = FakeApi()

    def score(self, prompt, text):
        if self.api.max_requests is not None and self.api.sent >= self.api.max_requests:
            raise BudgetSpent("spent")
        self.api.sent += 1
        k, i = int(prompt[1:]), int(text)
        right = (i * 7 + k) % 10 < k
        return {"best": 1 if right else 0, "scores": [0.0, 1.0 if right else -1.0]}


def test_selection_race_finds_the_best_within_its_allowance():
    examples = [type("E", (), {"text": str(i)}) for i in range(16)]
    scorer = FakeScorer()
    sel = ApiSelector(scorer, examples, [1] * 16, first_rung=4)
    assert sel.cost([f"p{k}" for k in (2, 9, 5, 7)]) == 32
    record = sel.round([f"p{k}" for k in (2, 9, 5, 7)], allowance=1000)
    assert sel.incumbent == "p9" and record["changed"]
    assert record["requests"] == 4 * 4 + 2 * 4 + 1 * 8  # rungs of 4, 8 and 16 examples, halving the candidates
    assert sel.key("p9") == (14 / 16, (14 - 2) / 16)
    # a round that cannot afford a candidate skips it; the incumbent stays
    before = scorer.api.sent
    record = sel.round(["p8"], allowance=3)
    assert record.get("skipped") == "budget" and scorer.api.sent == before and sel.incumbent == "p9"
    # the global budget cuts a round short: nothing is sent past it
    scorer.api.max_requests = scorer.api.sent + 5
    sel.round(["p1", "p3"], allowance=1000)
    assert scorer.api.sent == scorer.api.max_requests and sel.stopped_by == "spent" and sel.incumbent == "p9"
