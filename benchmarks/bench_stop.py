"""The early stop's defaults by quality per second: PEZ runs every step once per task, target and seed, and every
stop rule (``patience`` x ``min_delta``) is read off those runs.

That reading is exact, not a model of the stop: the rule only reads the tracked honest best at sync points, so a
run with the stop is the run without it cut where the rule fires (tests/test_early_stop.py proves it on every
setting it tries). For each rule and run: the step it stops at, its honest score there against the full run's
(the loss), and the seconds it saves (the run's own seconds per step; set-up counted once).

Tasks (the same as benchmarks/bench_defaults.py, with the job defaults a user gets):
- ``clip-planted``: a random ViT-B-32, each target the features of an 8-word text (a perfect prompt exists),
  16 tokens, 4 restarts, ``--clip-steps`` steps;
- ``minilm``: the embedded sentence encoder on sentences, 8 tokens, 4 restarts, ``--minilm-steps`` steps;
- ``smollm2``: ``pez discover`` on the movie reviews (10 tokens, 16 examples per step, dev 64), ``--lm-steps``.

Writes ``benchmarks/results_stop.json``; ``benchmarks/make_results.py`` builds its RESULTS.md table.

    nice -n 19 .venv/bin/python benchmarks/bench_stop.py
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
PLANTED = [
    "a red car parked on a quiet street",
    "an old man reading a newspaper on a bench",
    "two dogs running across a snowy field together",
]
SENTENCES = [
    "A man is riding a horse on the beach at sunset.",
    "Two children are playing football in a muddy park.",
    "The old lighthouse stands alone on a rocky cliff during a storm.",
    "A chef is slicing fresh vegetables in a busy restaurant kitchen.",
]
PATIENCES = [30, 50, 100, 200, 300, 500]
DELTAS = [0.0, 0.001, 0.003, 0.01]


def curve_of(res, wall_s: float) -> dict:
    """What the stop rules read: the honest best at every sync point, and the run's time per step."""
    t = res.timings
    return {
        "score": res.score,
        "steps": res.steps_done,
        "sync_every": res.config["sync_every"],
        "wall_s": wall_s,
        "setup_s": wall_s - t["loop_s"],
        "s_per_step": t["loop_s"] / t["steps_run"],
        "best": [(h["step"], h["score"]) for h in res.best_history],
        "text": res.text,
    }


def stop_at(curve: dict, patience: int, delta: float) -> tuple[int, float]:
    """The step at which the rule stops this run and its honest best there (as pez.optim.tracking reads them)."""
    best, gains, k = -float("inf"), {"score": -float("inf"), "step": 0}, 0
    entries = curve["best"]
    for step in range(curve["sync_every"], curve["steps"] + 1, curve["sync_every"]):
        while k < len(entries) and entries[k][0] <= step:
            best = max(best, entries[k][1])
            k += 1
        if best == -float("inf"):
            continue
        if best > gains["score"] + delta:
            gains.update(score=best, step=step)
        elif step - gains["step"] >= patience:
            return step, best
    return curve["steps"], curve["score"]


def summarise(runs: list[dict]) -> list[dict]:
    rows = []
    for p in PATIENCES:
        for d in DELTAS:
            loss, saved, share, stopped = [], [], [], 0
            for r in runs:
                step, score = stop_at(r, p, d)
                stopped += step < r["steps"]
                loss.append(r["score"] - score)
                cut = (r["steps"] - step) * r["s_per_step"]
                saved.append(cut)
                share.append(cut / r["wall_s"])
            rows.append({"patience": p, "min_delta": d, "loss_mean": statistics.fmean(loss), "loss_max": max(loss),
                         "seconds_saved_mean": statistics.fmean(saved), "time_saved_share": statistics.fmean(share),
                         "stopped_runs": stopped, "runs": len(runs)})  # fmt: skip
    return rows


def run_embedding(task: str, args, device: str) -> tuple[dict, list[dict]]:
    if task == "clip-planted":
        model = pez.load_model("ViT-B-32/random", device)
        targets, base = PLANTED[: args.targets], {"prompt_len": 16, "steps": args.clip_steps, "restarts": 4}
    else:
        model = pez.load_model("minilm", device)
        targets, base = SENTENCES[: args.targets], {"prompt_len": 8, "steps": args.minilm_steps, "restarts": 4}
    runs = []
    for target in targets:
        obj = pez.make_objective(model, texts=[target], device=device)
        pez.optimize(obj, pez.PEZConfig(**{**base, "steps": 5}))  # warm the vocabulary caches, untimed
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            res = pez.optimize(obj, pez.PEZConfig(**base, seed=seed))
            runs.append({"target": target, "seed": seed, **curve_of(res, time.perf_counter() - t0)})
            print(f"{task} seed {seed}: {res.score:.4f} in {runs[-1]['wall_s']:.1f} s {res.text!r}", flush=True)
    return base, runs


def run_lm(args, device: str) -> tuple[dict, list[dict]]:
    runs, base = [], {"steps": args.lm_steps}
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        report = pez.discover(data="movie-reviews", device=device, judge=None, seed=seed, patience=None,
                              test_size=64, **base)  # fmt: skip
        res = pez.PromptResult.from_dict(report.search)
        runs.append({"target": "movie-reviews", "seed": seed, **curve_of(res, time.perf_counter() - t0),
                     "accuracy": report.accuracy})  # fmt: skip
        print(f"smollm2 seed {seed}: dev {res.score:.4f}, held-out {report.accuracy:.3f} {res.text!r}", flush=True)
    return {**base, "prompt_len": 10, "batch_size": 16}, runs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=["clip-planted", "minilm", "smollm2"])
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--targets", type=int, default=3, help="targets (planted texts, sentences) per embedding task")
    p.add_argument("--clip-steps", type=int, default=1000)
    p.add_argument("--minilm-steps", type=int, default=600)
    p.add_argument("--lm-steps", type=int, default=300)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(HERE / "results_stop.json"))
    args = p.parse_args()
    out = {
        "benchmark": "early stop: each rule read off full runs (loss of honest score, seconds saved)",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "device": args.device, "loadavg_start": os.getloadavg()},
        "tasks": {},
    }  # fmt: skip
    for task in args.tasks:
        base, runs = run_lm(args, args.device) if task == "smollm2" else run_embedding(task, args, args.device)
        out["tasks"][task] = {"config": base, "runs": runs, "summary": summarise(runs)}
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")  # what is done is kept
    out["machine"]["loadavg_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    for task, entry in out["tasks"].items():
        print(f"\n{task}: loss of honest score (mean / max) and time saved, per rule")
        for r in entry["summary"]:
            print(f"  patience {r['patience']:>4} delta {r['min_delta']:<6} loss {r['loss_mean']:.4f} / "
                  f"{r['loss_max']:.4f}  saved {r['time_saved_share']:.0%} ({r['seconds_saved_mean']:.1f} s)  "
                  f"stopped {r['stopped_runs']}/{r['runs']}")  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
