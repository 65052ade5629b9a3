"""PEZ against its baselines (HotFlip, AutoPrompt, GCG, FluentPrompt, soft prompt, random search) at equal wall-clock
budget, through :func:`pez.compare`.

Tasks:

- **planted**: recover the text features of "a red car parked on a quiet street" under ViT-B-32 with random weights
  (``torch.manual_seed(0)``; ``open_clip.create_model("ViT-B-32", pretrained=None)``), one prompt per run.
- **minilm**: distil each of 20 fixed real sentences (``SENTENCES`` below) into its own 8-token prompt under the
  embedded all-MiniLM-L6-v2; the sentences are 20 target groups of one objective, so every run optimises the 20
  prompts together in one batch and its score is the mean over the 20 sentences.

Every method runs with seeds 0, 1, 2, prompt length 8, the same budget of loop seconds per run, and its defaults,
except the candidate counts, sized for a CPU: GCG 32 candidates per prompt per step (paper: 512, for a GPU),
AutoPrompt 32 (paper: 10 to 100), random search 32. Scores are honest: the cosine of the returned text, re-tokenised.
Results go to ``benchmarks/compare/<task>/`` (results.md, results.csv, results.json, plot.png) and
``benchmarks/compare/summary.md`` / ``summary.json``: per task the winner, its margin over the runner-up, and every
method's seconds per step relative to PEZ. The load average before and after each task is recorded: on a shared
2-core machine other processes change wall-clock results.

Run (about 14 minutes on 2 CPU cores)::

    .venv/bin/python benchmarks/bench_compare.py

Options: ``--planted-seconds 12 --minilm-seconds 24 --seeds 3 --methods pez,gcg --tasks planted,minilm
--device cpu --out benchmarks/compare``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import open_clip
import torch

import pez
from pez import compare
from pez.optim import METHODS
from pez.records import versions

HERE = Path(__file__).resolve().parent
PLANTED = "a red car parked on a quiet street"
SENTENCES = [
    "A man is riding a horse on the beach at sunset.",
    "The cat is sleeping on a warm windowsill.",
    "Children are playing football in the park after school.",
    "She poured a cup of coffee and read the morning news.",
    "The train to the airport was delayed by an hour.",
    "Heavy rain flooded the streets of the old town.",
    "A chef is slicing fresh vegetables in a busy kitchen.",
    "The students listened carefully to the history lecture.",
    "An old fisherman repairs his nets by the harbour.",
    "The new smartphone has a larger screen and a better camera.",
    "Two dogs are chasing each other across a snowy field.",
    "The museum opened an exhibition of modern sculpture.",
    "He forgot his umbrella at the bus stop.",
    "A small plane landed safely on the grass runway.",
    "The doctor told him to drink more water and rest.",
    "Volunteers planted hundreds of trees along the river.",
    "The orchestra played a symphony by Beethoven.",
    "A young woman is painting a portrait of her grandmother.",
    "The stock market fell sharply after the announcement.",
    "Firefighters rescued a family from the burning house.",
]
CPU_SIZED = {"gcg": {"search_width": 32}, "autoprompt": {"candidates": 32}, "random": {"candidates": 32}}
COMMON = {"prompt_len": 8, "sync_every": 5}


def planted_objective(device: str) -> pez.CLIPObjective:
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None).eval().to(device)
    return pez.CLIPObjective(model, open_clip.get_tokenizer("ViT-B-32"), texts=[PLANTED], model_name="ViT-B-32/random")


def minilm_objective(device: str):
    obj = pez.make_objective("minilm", texts=SENTENCES, device=device)
    obj.set_groups(torch.eye(len(SENTENCES)))  # one prompt per sentence
    return obj


def progress(task: str):
    def line(run) -> None:
        steps = run.timings["steps_run"]
        print(f"{task} {run.method} seed {run.seed}: {run.score:.4f} ({steps} steps)", file=sys.stderr, flush=True)

    return line


def report(task: str, res) -> dict:
    """Winner, its margin over the runner-up, and seconds per step relative to PEZ."""
    rows = sorted(res.summary(), key=lambda r: -r["score_mean"])
    pez_s = next((r["s_per_step"] for r in rows if r["method"] == "pez"), None)
    ratios = {r["method"]: r["s_per_step"] / pez_s for r in res.summary()} if pez_s else {}
    out = {
        "task": task,
        "winner": rows[0]["method"],
        "winner_score": rows[0]["score_mean"],
        "runner_up": rows[1]["method"] if len(rows) > 1 else None,
        "margin": rows[0]["score_mean"] - rows[1]["score_mean"] if len(rows) > 1 else None,
        "s_per_step_vs_pez": ratios,
    }
    print(f"\n== {task}: winner {out['winner']} ({out['winner_score']:.4f})", end="")
    if out["runner_up"]:
        print(f", ahead of {out['runner_up']} by {out['margin']:.4f}", end="")
    print("\n" + res.to_markdown())
    if ratios:
        print("s/step relative to pez: " + ", ".join(f"{m} {x:.2f}x" for m, x in ratios.items()))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--planted-seconds", type=float, default=12.0, help="loop seconds per run, planted (12)")
    p.add_argument("--minilm-seconds", type=float, default=24.0, help="loop seconds per run, minilm (24)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--tasks", default="planted,minilm")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=HERE / "compare")
    args = p.parse_args(argv)
    methods = args.methods.split(",")
    tasks = {"planted": (planted_objective, args.planted_seconds), "minilm": (minilm_objective, args.minilm_seconds)}
    summary = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "versions": versions(),
        "tasks": [],
    }
    md = ["# pez compare: equal wall-clock budget\n"]
    for task in args.tasks.split(","):
        make, seconds = tasks[task]
        obj = make(args.device)
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        res = compare(
            obj,
            methods,
            args.seeds,
            budget_seconds=seconds,
            config=COMMON,
            overrides={m: v for m, v in CPU_SIZED.items() if m in methods},
            callback=progress(task),
        )
        res.save(args.out / task)
        entry = report(task, res)
        entry |= {"seconds_per_run": seconds, "wall_s": time.perf_counter() - t0}
        entry |= {"load_before": load_before, "load_after": os.getloadavg()[0], "summary": res.summary()}
        summary["tasks"].append(entry)
        ratios = ", ".join(f"{m} {x:.2f}x" for m, x in entry["s_per_step_vs_pez"].items())
        md += [
            f"## {task} ({seconds:g} s per run, seeds 0-{args.seeds - 1})\n",
            res.to_markdown(),
            f"Winner: **{entry['winner']}**"
            + (f", ahead of {entry['runner_up']} by {entry['margin']:.4f}." if entry["runner_up"] else "."),
            f"\nSeconds per step relative to PEZ: {ratios}.\n" if ratios else "",
            f"![{task}]({task}/plot.png)\n",
        ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    (args.out / "summary.md").write_text("\n".join(md), encoding="utf-8")
    print(f"\nwrote {args.out}/summary.md, summary.json and one folder per task")
    return 0


if __name__ == "__main__":
    sys.exit(main())
