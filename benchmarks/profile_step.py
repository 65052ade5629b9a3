"""Where a PEZ step's time goes: ``torch.profiler`` over a few steps of ``pez.optimize``'s own step on a random
open_clip text tower (the issue's profile: what is not the transformer should be small).

Prints the operators by self time (CPU, and CUDA when on a GPU) and writes the top ones as JSON.

    .venv/bin/python benchmarks/profile_step.py --model ViT-B-32 --restarts 1 --device cpu
"""

from __future__ import annotations

import argparse
import json
import time

import open_clip
import torch
from torch.profiler import ProfilerActivity, profile

import pez
from pez.optim import PEZ, PEZConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="ViT-B-32")
    p.add_argument("--restarts", type=int, default=1)
    p.add_argument("--prompt-len", type=int, default=16)
    p.add_argument("--steps", type=int, default=10, help="profiled steps (after 5 warm-up steps)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-cuda-graphs", action="store_true", help="profile the eager step on CUDA")
    p.add_argument("--rows", type=int, default=20)
    p.add_argument("--out", default=None, help="JSON file for the top operators")
    args = p.parse_args()
    model = open_clip.create_model(args.model, pretrained=None, device=args.device).eval()
    del model.visual
    tok = open_clip.get_tokenizer(args.model)
    obj = pez.CLIPObjective(model, tok, texts=["a photo of an astronaut riding a horse"])
    cfg = PEZConfig(prompt_len=args.prompt_len, restarts=args.restarts, cuda_graphs=not args.no_cuda_graphs)
    opt = PEZ(obj, cfg)
    cuda = opt.device.type == "cuda"
    for i in range(5):
        opt.step(i)
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(args.steps):
        opt.step(i)
    if cuda:
        torch.cuda.synchronize()
    per_step = (time.perf_counter() - t0) / args.steps
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for i in range(args.steps):
            opt.step(i)
        if cuda:
            torch.cuda.synchronize()
    key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    print(f"{args.model} R={args.restarts} on {args.device}: {per_step * 1000:.2f} ms/step (graphed: {opt.graphed})")
    print(prof.key_averages().table(sort_by=key, row_limit=args.rows))
    if args.out:
        rows = sorted(prof.key_averages(), key=lambda e: -getattr(e, key.replace("_total", "_total"), 0))
        top = [{"op": e.key, "calls": e.count, "self_cpu_us": e.self_cpu_time_total,
                "self_device_us": getattr(e, "self_device_time_total", 0)} for e in rows[: args.rows]]  # fmt: skip
        with open(args.out, "w") as f:
            json.dump({"model": args.model, "restarts": args.restarts, "device": args.device,
                       "ms_per_step": per_step * 1000, "graphed": opt.graphed, "top": top}, f, indent=2)  # fmt: skip


if __name__ == "__main__":
    main()
