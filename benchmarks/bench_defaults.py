"""Quality per second: best honest score against wall-clock for restarts and learning rates, to choose defaults.

Tasks: the embedded minilm sentence encoder on several sentences (8-token prompts, 300 steps, as ``make demo``),
and the planted CLIP task (a random ViT-B-32; the target is the features of an 8-word text, so a perfect prompt
exists; 8 tokens, 200 steps). For each task, sentence and seed, pez runs with restarts 1/2/4/8 at lr 0.1 and with
lr 0.03/0.3/1.0 at the chosen restarts; each run's best-score history (``result.best_history``: honest scores at
sync points, with the loop time) gives a curve. Curves are averaged over sentences and seeds on a common time grid;
a run counts with its set-up (the whole ``optimize`` call, measured beside it).

Prints each setting's mean final score, mean time and mean score at fixed budgets (the time one restart takes,
and 2x that), writes ``benchmarks/results_defaults.json`` and the plot ``benchmarks/defaults_curves.png``.

    .venv/bin/python benchmarks/bench_defaults.py --seeds 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

import pez

HERE = Path(__file__).resolve().parent
SENTENCES = [
    "A man is riding a horse on the beach at sunset.",
    "Two children are playing football in a muddy park.",
    "The old lighthouse stands alone on a rocky cliff during a storm.",
    "A chef is slicing fresh vegetables in a busy restaurant kitchen.",
]
PLANTED = "a red car parked on a quiet street"


def settings(restarts: list[int], lrs: list[float], base_lr: float, base_r: int) -> list[dict]:
    out = [{"restarts": r, "lr": base_lr} for r in restarts]
    out += [{"restarts": base_r, "lr": lr} for lr in lrs if lr != base_lr]
    return out


def run_one(obj, cfg: dict) -> dict:
    t0 = time.perf_counter()
    res = pez.optimize(obj, pez.PEZConfig(**cfg))
    wall = time.perf_counter() - t0
    setup = wall - res.timings["loop_s"]  # set-up, final re-scoring and result: paid once per run
    curve = [(h["time_s"] + res.timings["setup_s"], h["score"]) for h in res.best_history]
    return {"score": res.score, "text": res.text, "wall_s": wall, "setup_s": setup, "curve": curve}


def score_at(curve: list, t: float) -> float | None:
    """Best honest score reached by time ``t`` (None before the first one)."""
    got = [s for ts, s in curve if ts <= t]
    return max(got) if got else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--restarts", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--lrs", type=float, nargs="+", default=[0.03, 0.1, 0.3, 1.0])
    p.add_argument("--base-restarts", type=int, default=4, help="restarts at which the learning rates are compared")
    p.add_argument("--tasks", nargs="+", default=["minilm", "clip-planted"])
    p.add_argument("--sentences", type=int, default=len(SENTENCES), help="minilm: how many of the sentences")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(HERE / "results_defaults.json"))
    p.add_argument("--plot", default=str(HERE / "defaults_curves.png"))
    args = p.parse_args()
    out = {
        "benchmark": "best honest score vs wall-clock, restarts and learning rate",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "device": args.device, "loadavg_start": os.getloadavg()},
        "tasks": {},
    }  # fmt: skip
    grid = settings(args.restarts, args.lrs, 0.1, args.base_restarts)
    for task in args.tasks:
        if task == "minilm":
            model = pez.load_model("minilm", args.device)
            chosen = SENTENCES[: args.sentences]
            objectives = [(s, pez.make_objective(model, texts=[s], device=args.device)) for s in chosen]
            base = {"prompt_len": 8, "steps": 300}
        elif task == "clip-planted":
            model = pez.load_model("ViT-B-32/random", args.device)
            objectives = [(PLANTED, pez.make_objective(model, texts=[PLANTED], device=args.device))]
            base = {"prompt_len": 8, "steps": 200}
        else:
            raise SystemExit(f"unknown task {task!r}: minilm or clip-planted")
        runs = []
        for target, obj in objectives:
            pez.optimize(obj, pez.PEZConfig(**{**base, "steps": 5}))  # warm the vocabulary caches, untimed
            for s in grid:
                for seed in range(args.seeds):
                    r = run_one(obj, {**base, **s, "seed": seed})
                    runs.append({"target": target, "seed": seed, **s, **r})
                    print(f"{task} R={s['restarts']} lr={s['lr']} seed={seed}: {r['score']:.4f} in {r['wall_s']:.1f} s "
                          f"{r['text']!r}", flush=True)  # fmt: skip
        out["tasks"][task] = {"config": base, "runs": runs, "summary": summarise(runs, grid)}
    out["machine"]["loadavg_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print_summary(out)
    plot(out, args.plot)
    print(f"wrote {args.out} and {args.plot}")


def summarise(runs: list[dict], grid: list[dict]) -> list[dict]:
    one = [r["wall_s"] for r in runs if r["restarts"] == 1 and r["lr"] == 0.1]
    t1 = statistics.fmean(one) if one else None
    rows = []
    for s in grid:
        mine = [r for r in runs if r["restarts"] == s["restarts"] and r["lr"] == s["lr"]]
        row = {**s, "n": len(mine), "score_mean": statistics.fmean(r["score"] for r in mine),
               "score_std": statistics.stdev(r["score"] for r in mine) if len(mine) > 1 else 0.0,
               "wall_s_mean": statistics.fmean(r["wall_s"] for r in mine)}  # fmt: skip
        if t1:
            for k in (1, 2):
                got = [score_at(r["curve"], k * t1) for r in mine]
                row[f"score_at_{k}x_one_restart"] = statistics.fmean(g if g is not None else 0.0 for g in got)
        rows.append(row)
    return rows


def print_summary(out: dict) -> None:
    for task, entry in out["tasks"].items():
        print(f"\n{task}: mean over targets and seeds")
        print(f"{'R':>3} {'lr':>5} {'score':>14} {'time s':>8} {'at 1x R=1 time':>15} {'at 2x':>7}")
        for r in entry["summary"]:
            at1, at2 = (r.get(f"score_at_{k}x_one_restart", float("nan")) for k in (1, 2))
            print(
                f"{r['restarts']:>3} {r['lr']:>5} {r['score_mean']:>7.4f} ± {r['score_std']:.4f} "
                f"{r['wall_s_mean']:>8.1f} {at1:>15.4f} {at2:>7.4f}"
            )


def plot(out: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(out["tasks"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.5), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        entry = out["tasks"][task]
        runs = entry["runs"]
        horizon = max(r["wall_s"] for r in runs)
        grid = [horizon * k / 200 for k in range(1, 201)]
        for s in entry["summary"]:
            mine = [r for r in runs if r["restarts"] == s["restarts"] and r["lr"] == s["lr"]]
            ys, xs = [], []
            for t in grid:
                got = [score_at(r["curve"], t) for r in mine]
                if all(g is not None for g in got) and t <= max(r["wall_s"] for r in mine):
                    xs.append(t)
                    ys.append(statistics.fmean(got))
            style = "-" if s["lr"] == 0.1 else "--"
            ax.plot(xs, ys, style, label=f"R={s['restarts']}, lr={s['lr']}")
        ax.set_title(f"{task} ({entry['config']['prompt_len']} tokens, {entry['config']['steps']} steps)")
        ax.set_xlabel("wall-clock seconds (set-up included)")
        ax.set_ylabel("best honest score (mean)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
