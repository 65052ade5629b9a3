"""Does ``torch.compile`` speed up pez's CLIP text path? The PEZ step eager against the same step with the pruned
text path (``ClipTextPath._pruned``) compiled by inductor, side by side in one process.

Both sides run ``pez.optim.PEZ`` on the same random open_clip text tower and target, prompt length 16, R prompts
per step. The compiled side compiles ``_pruned`` with ``torch.compile(dynamic=False)`` after computing the start
token's cached states (their cache check is Python that would break the graph). Reported per R: the first steps'
time (the compile on the compiled side), then the median of ``--rounds`` alternating timings of ``--steps`` steps
each, and their ratio (eager / compiled: above 1 means compiling pays off once compiled). The machine's load
average is recorded before and after.

    .venv/bin/python benchmarks/bench_compile.py           # ViT-B-32, R = 1 and 8, a few minutes on 2 CPU cores

Writes benchmarks/results_compile.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import open_clip
import torch
from bench_speed import loadavg, machine_info  # the same machine record as the speed benchmark

import pez
from pez.optim import PEZ, PEZConfig

HERE = Path(__file__).resolve().parent


def make_optimizer(model, tokenizer, restarts: int, prompt_len: int, compiled: bool) -> PEZ:
    obj = pez.CLIPObjective(model, tokenizer, texts=["a photo of an astronaut riding a horse"])
    if compiled:
        start = obj.path._start_states()
        obj.path._start_states = lambda: start  # a constant for the compiled graph
        obj.path._pruned = torch.compile(obj.path._pruned, dynamic=False)
    return PEZ(obj, PEZConfig(prompt_len=prompt_len, restarts=restarts, seed=0))


def timed(opt: PEZ, steps: int, first: int) -> float:
    t0 = time.perf_counter()
    for i in range(steps):
        opt.step(first + i)
    return (time.perf_counter() - t0) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="ViT-B-32")
    p.add_argument("--restarts", nargs="+", type=int, default=[1, 8])
    p.add_argument("--prompt-len", type=int, default=16)
    p.add_argument("--steps", type=int, default=20, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=str(HERE / "results_compile.json"))
    args = p.parse_args()
    torch.manual_seed(0)
    model = open_clip.create_model(args.model, pretrained=None).eval()
    del model.visual
    tokenizer = open_clip.get_tokenizer(args.model)
    machine = machine_info(torch.device("cpu"))
    runs = []
    for r in args.restarts:
        sides = {name: make_optimizer(model, tokenizer, r, args.prompt_len, name == "compiled") for name in
                 ("eager", "compiled")}  # fmt: skip
        first = {name: timed(opt, 3, 0) * 3 for name, opt in sides.items()}  # the compile happens here
        per = {name: [] for name in sides}
        for k in range(args.rounds):
            for name, opt in sides.items():
                per[name].append(timed(opt, args.steps, 3 + k * args.steps))
        med = {name: statistics.median(v) for name, v in per.items()}
        run = {"restarts": r, "first_3_steps_s": first, "s_per_step": med, "rounds_s_per_step": per,
               "eager_over_compiled": med["eager"] / med["compiled"]}  # fmt: skip
        runs.append(run)
        print(f"R={r}: first 3 steps eager {first['eager']:.1f} s, compiled {first['compiled']:.1f} s; "
              f"eager {med['eager'] * 1000:.1f} ms/step, compiled {med['compiled'] * 1000:.1f} ms/step, "
              f"eager/compiled {run['eager_over_compiled']:.2f}x", flush=True)  # fmt: skip
    machine["loadavg_end"] = loadavg()
    out = {"model": args.model, "prompt_len": args.prompt_len, "steps": args.steps, "rounds": args.rounds,
           "runs": runs, "machine": machine}  # fmt: skip
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
