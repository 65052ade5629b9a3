"""Time to quality: the seconds pez needs to reach the official PEZ loop's honest score after N steps.

Issue 30's measure. The task: a random ViT-B-32 (``ViT-B-32/random``, weights fixed by the spec), each target the
text features of an 8-word sentence (a perfect 8-word prompt exists), 16-token prompts.

- **reference**: ``benchmarks/bench_speed.py``'s :class:`ReferencePEZ`, the loop that pays what the official
  ``optimize_prompt_loop`` pays per step (fp32, 77 positions, the search matrix normalised and searched with
  sentence-transformers every step, a no-grad forward to track the best prompt, every prompt decoded), with the
  official defaults: one prompt (``prompt_bs`` 1), AdamW lr 0.1, weight decay 0.1, over pez's vocabulary mask (the
  official whole-vocabulary search is slower still: the ratios here are conservative). It runs ``max(--ref-steps)``
  steps once per target; at each of ``--ref-steps`` its best prompt (as the official code keeps it) is decoded and
  scored honestly (the text re-tokenised and encoded by pez's scorer, as every pez score is), with the seconds the
  loop took to get there (its construction counted).
- **pez**: ``pez.invert`` as a user calls it, on the loaded model: its defaults (``INVERT_DEFAULTS``: 4 prompts,
  lr 0.1, the early stop; under a seconds budget the polish, ``POLISH``: the last half of the time goes to exact
  swaps from PEZ's best prompt) or the ones named in ``--pez`` (``'{"polish": 0}'``: PEZ alone), under a seconds
  budget (``--pez-seconds``), seeds ``--seeds``; its honest best against the seconds of the call (set-up counted)
  is the curve, and the time to quality is the first point of the curve at or above the reference's honest score
  (a run that never gets there within its budget counts as infinitely slow: ratio 0, in the median, not left out).

Reported per target and mean: the reference's honest score and seconds at each N, pez's seconds to reach it (None
when the budget ran out first), and the ratio; and the smallest budget at which every run ended at or above the
reference's score (one budget set once, not the best of several read after the fact), with the ratio of the
fastest reference time to it. Writes ``benchmarks/results_time_quality.json``; RESULTS.md's
table is built from it by ``benchmarks/make_results.py``.

    .venv/bin/python benchmarks/bench_time_quality.py                       # about 70 min on 2 CPU cores
    .venv/bin/python benchmarks/bench_time_quality.py --targets 1 --ref-steps 100 300 --pez-seconds 10
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

import pez
from pez.jobs.invert import INVERT_DEFAULTS, POLISH

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_speed import ReferencePEZ, cpu_snapshot, foreign_cores  # noqa: E402

HERE = Path(__file__).resolve().parent
PLANTED = [
    "a red car parked on a quiet street",
    "an old man reading a newspaper on a bench",
    "two dogs running across a snowy field together",
]


def honest(obj, text: str) -> float:
    """The honest score of ``text``: re-tokenised and encoded as pez scores every prompt it returns."""
    ids = obj.vocab.encode(text)[: obj.vocab.max_len]
    with torch.no_grad():
        return -obj.eval_loss_ids([ids], torch.zeros(1, dtype=torch.long)).item()


def run_reference(obj, loaded, checkpoints: list[int], prompt_len: int, seed: int) -> list[dict]:
    allowed = obj.vocab.allowed_mask(pez.VocabOptions()).nonzero().squeeze(1)
    snap = cpu_snapshot()
    t0 = time.perf_counter()
    ref = ReferencePEZ(loaded.model, loaded.tokenizer, obj.targets, prompt_len, seed=seed, allowed=allowed)
    points = []
    for step in range(1, max(checkpoints) + 1):
        ref.step()
        if step in checkpoints:
            seconds = time.perf_counter() - t0
            points.append({"steps": step, "seconds": seconds, "internal_score": ref.best_score,
                           "text": ref.best_text, "score": honest(obj, ref.best_text)})  # fmt: skip
            print(f"  reference {step} steps: honest {points[-1]['score']:.4f} (its own {ref.best_score:.4f}) "
                  f"in {seconds:.1f} s {ref.best_text!r}", flush=True)  # fmt: skip
    points[-1]["other_cores"] = foreign_cores(snap, cpu_snapshot())
    return points


def run_pez(loaded, text: str, settings: dict, seconds: float, seed: int) -> dict:
    """``pez.invert`` as a user calls it (its defaults, the polish included, beside ``settings``) on the loaded
    model under a seconds budget; the curve is its best honest score against the seconds of the call."""
    snap = cpu_snapshot()
    t0 = time.perf_counter()
    res = pez.invert(texts=[text], model=loaded, prompt_len=16, seed=seed, judge=None,
                     budget=pez.Budget(seconds=seconds), **settings)  # fmt: skip
    wall = time.perf_counter() - t0
    lead = res.timings["before_search_s"] + res.timings["setup_s"]  # the call's seconds before the loop's first step
    curve = [(h["time_s"] + lead, h["score"]) for h in res.best_history]
    return {"seed": seed, "score": res.score, "text": res.text, "wall_s": wall, "steps": res.steps_done,
            "polish": res.extras.get("polish"), "curve": curve,
            "other_cores": foreign_cores(snap, cpu_snapshot())}  # fmt: skip


def time_to(curve: list, level: float) -> float | None:
    """The first time the curve's best honest score is at or above ``level`` (None: never)."""
    return next((t for t, s in curve if s >= level), None)


def seconds_to(runs: list[dict], level: float) -> float | None:
    """The seconds one seed needs to reach ``level``: the earliest point at or above it over that seed's runs at
    every budget tried (a search under a budget schedules its stages by the budget, so each budget is a run of
    its own, as a user would call it; None: no run got there)."""
    times = [t for t in (time_to(run["curve"], level) for run in runs) if t is not None]
    return min(times) if times else None


def summarise(targets: list[dict], checkpoints: list[int]) -> list[dict]:
    rows = []
    for n in checkpoints:
        ratios, reached, ref_s, ref_score, pez_s = [], 0, [], [], []
        for t in targets:
            point = next(p for p in t["reference"] if p["steps"] == n)
            ref_s.append(point["seconds"])
            ref_score.append(point["score"])
            seeds = sorted({run["seed"] for run in t["pez"]})
            for seed in seeds:  # a seed that never reached it counts as infinitely slow (ratio 0), not left out
                got = seconds_to([run for run in t["pez"] if run["seed"] == seed], point["score"])
                reached += got is not None
                pez_s.append(math.inf if got is None else got)
                ratios.append(0.0 if got is None else point["seconds"] / got)
        runs = len(pez_s)
        budget = every_run_budget(targets, n)
        rows.append({
            "ref_steps": n, "ref_score_mean": statistics.fmean(ref_score), "ref_seconds_mean": statistics.fmean(ref_s),
            "pez_reached": reached, "pez_runs": runs,
            "pez_seconds_median": statistics.median(pez_s) if statistics.median(pez_s) < math.inf else None,
            "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "every_run_budget_s": budget, "every_run_ratio": None if budget is None else min(ref_s) / budget,
        })  # fmt: skip
    return rows


def every_run_budget(targets: list[dict], n: int) -> float | None:
    """The smallest budget at which every run, of every target and seed, ended at or above the reference's honest
    score after ``n`` steps: what a user who sets that budget once gets, without choosing the best of several
    budgets after the fact (None: no budget tried did it for all)."""
    budgets = sorted({run["budget_s"] for t in targets for run in t["pez"] if "budget_s" in run})
    for b in budgets:
        ends = [run["score"] >= next(p["score"] for p in t["reference"] if p["steps"] == n)
                for t in targets for run in t["pez"] if run.get("budget_s") == b]  # fmt: skip
        if all(ends) and len(ends) == sum(len({r["seed"] for r in t["pez"]}) for t in targets):
            return b
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", type=int, default=3, help=f"how many of the {len(PLANTED)} planted sentences")
    p.add_argument("--ref-steps", type=int, nargs="+", default=[1000, 3000], help="the reference's step counts")
    p.add_argument("--pez-seconds", type=float, nargs="+", default=[5.0, 7.0, 10.0, 14.0, 20.0, 40.0],
                   help="pez's seconds budgets: one run per budget and seed (the time to a score is the earliest "
                        "over them)")  # fmt: skip
    p.add_argument("--seeds", type=int, default=2, help="pez runs per target (seeds 0..)")
    p.add_argument("--pez", default="{}", help="pez settings beside the defaults, as JSON, e.g. '{\"lr\": 0.3}'")
    p.add_argument("--reference-from", help="reuse the reference points of an earlier run's JSON (same targets)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(HERE / "results_time_quality.json"))
    args = p.parse_args()
    settings = json.loads(args.pez)
    earlier = {}
    if args.reference_from:
        earlier = {t["target"]: t["reference"] for t in json.loads(Path(args.reference_from).read_text())["targets"]}
    loaded = pez.load_model("ViT-B-32/random", args.device)
    out = {
        "benchmark": "seconds pez needs to reach the official loop's honest score after N steps",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "device": args.device, "loadavg_start": os.getloadavg()},
        "settings": {"model": "ViT-B-32/random", "prompt_len": 16, "reference": "ReferencePEZ, 1 prompt, lr 0.1, "
                     "pez's vocabulary mask", "pez": {**INVERT_DEFAULTS, "polish": POLISH, **settings},
                     "pez_seconds": args.pez_seconds},
        "targets": [],
    }  # fmt: skip
    for text in PLANTED[: args.targets]:
        obj = pez.make_objective(loaded, texts=[text], device=args.device)
        pez.optimize(obj, pez.PEZConfig(prompt_len=16, steps=5))  # warm the vocabulary caches, untimed
        print(f"{text!r}", flush=True)
        reference = earlier.get(text) or run_reference(obj, loaded, args.ref_steps, 16, seed=0)
        entry = {"target": text, "reference": reference, "pez": []}
        for seed in range(args.seeds):
            for seconds in args.pez_seconds:
                run = {**run_pez(loaded, text, settings, seconds, seed), "budget_s": seconds}
                entry["pez"].append(run)
                reach = ", ".join(f"{p['steps']} steps' {p['score']:.4f} at {time_to(run['curve'], p['score'])} s"
                                  for p in entry["reference"])  # fmt: skip
                print(f"  pez seed {seed}, {seconds:g} s: {run['score']:.4f} in {run['wall_s']:.1f} s "
                      f"({run['steps']} steps); {reach}", flush=True)  # fmt: skip
        out["targets"].append(entry)
        out["summary"] = summarise(out["targets"], args.ref_steps)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")  # what is done is kept
    out["machine"]["loadavg_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    for row in out["summary"]:
        ratio = "never" if row["ratio_median"] is None else f"{row['ratio_median']:.1f}x"
        print(f"reference {row['ref_steps']} steps: honest {row['ref_score_mean']:.4f} in "
              f"{row['ref_seconds_mean']:.0f} s;"
              f" pez reached it in {row['pez_reached']}/{row['pez_runs']} runs, median {row['pez_seconds_median']} s:"
              f" {ratio}; every run ended above it at a budget of {row['every_run_budget_s']} s")  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
