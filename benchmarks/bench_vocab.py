"""Honest scores of PEZ under the two vocabulary settings: whole words only vs any (ASCII) token.

With ``whole_words=False`` the prompt may use sub-word pieces, which the optimiser sees as separate tokens but
which can merge or split when the decoded text is tokenised again; the score a user gets is then that of the
re-tokenised text (``res.score``), not the optimised ids' score (``res.internal_score``). This benchmark measures
both settings (``ascii_only=True`` in both) on two tasks:

- **planted**: a randomly initialised ViT-B-32 (``torch.manual_seed(0)`` before ``open_clip.create_model``), target
  = the text features of the known 8-word prompt "a red car parked on a quiet street" (a perfect prompt scores
  1.0), prompt length 8, 300 steps, seeds 0, 1, 2.
- **minilm**: the embedded all-MiniLM-L6-v2 (``pez.load_model("minilm", "cpu")``), one objective per sentence for
  three real sentences, prompt length 8, 300 steps, seeds 0, 1, 2.

Reported per task and setting: mean and min honest score, mean internal score, the fraction of results whose text
re-tokenises differently from the optimised ids, and example prompts. Results go to ``benchmarks/results_vocab.json``.

Run (about 6-8 minutes on 2 CPU cores)::

    .venv/bin/python benchmarks/bench_vocab.py

Options: ``--tasks planted minilm --steps 300 --seeds 0 1 2 --prompt-len 8 --out benchmarks/results_vocab.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import open_clip
import torch

import pez

HERE = Path(__file__).resolve().parent
PLANTED = "a red car parked on a quiet street"
SENTENCES = [
    "A man is riding a horse on the beach at sunset.",
    "The stock market fell sharply after the announcement.",
    "Two children are playing football in the park.",
]
SETTINGS = {"whole_words": True, "subwords": False}  # name -> whole_words


def planted_objectives(device: str) -> list[tuple[str, object]]:
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None, device=device)
    model.eval()
    tok = open_clip.get_tokenizer("ViT-B-32")
    return [(PLANTED, pez.CLIPObjective(model, tok, texts=[PLANTED], model_name="ViT-B-32/random"))]


def minilm_objectives(device: str) -> list[tuple[str, object]]:
    loaded = pez.load_model("minilm", device)
    return [(s, pez.make_objective(loaded, texts=[s])) for s in SENTENCES]


TASKS = {"planted": planted_objectives, "minilm": minilm_objectives}


def run_one(obj, task: str, target: str, setting: str, seed: int, args) -> dict:
    cfg = pez.PEZConfig(
        prompt_len=args.prompt_len,
        steps=args.steps,
        seed=seed,
        ascii_only=True,
        whole_words=SETTINGS[setting],
    )
    t0 = time.perf_counter()
    res = pez.optimize(obj, cfg)
    rec = {
        "task": task,
        "target": target,
        "setting": setting,
        "whole_words": SETTINGS[setting],
        "seed": seed,
        "text": res.text,
        "score": res.score,
        "internal_score": res.internal_score,
        "retokenized": res.retokenized,
        "ids": res.ids,
        "text_ids": res.text_ids,
        "steps_done": res.steps_done,
        "seconds": time.perf_counter() - t0,
    }
    if task == "planted":
        rec["exact_recovery"] = res.text == PLANTED
    return rec


def summarise(records: list[dict]) -> dict:
    scores = [r["score"] for r in records]
    internal = [r["internal_score"] for r in records]
    best = max(records, key=lambda r: r["score"])
    worst = min(records, key=lambda r: r["score"])
    out = {
        "runs": len(records),
        "mean_score": statistics.fmean(scores),
        "min_score": min(scores),
        "max_score": max(scores),
        "mean_internal_score": statistics.fmean(internal),
        "mean_gap": statistics.fmean(i - s for i, s in zip(internal, scores)),
        "retokenized_fraction": sum(r["retokenized"] for r in records) / len(records),
        "examples": [
            {
                "which": "best",
                "target": best["target"],
                "seed": best["seed"],
                "text": best["text"],
                "score": best["score"],
            },
            {
                "which": "worst",
                "target": worst["target"],
                "seed": worst["seed"],
                "text": worst["text"],
                "score": worst["score"],
            },
        ],
    }
    if "exact_recovery" in records[0]:
        out["exact_recovery_fraction"] = sum(r["exact_recovery"] for r in records) / len(records)
    return out


def print_table(summary: dict) -> None:
    head = (
        f"{'task':<8} {'setting':<12} {'runs':>4} {'mean score':>10} {'min score':>10} {'mean internal':>13} "
        f"{'retok frac':>10}"
    )
    print(head)
    print("-" * len(head))
    for task, per in summary.items():
        for setting, s in per.items():
            print(
                f"{task:<8} {setting:<12} {s['runs']:>4} {s['mean_score']:>10.4f} {s['min_score']:>10.4f} "
                f"{s['mean_internal_score']:>13.4f} {s['retokenized_fraction']:>10.2f}"
            )
    print()
    for task, per in summary.items():
        for setting, s in per.items():
            for ex in s["examples"]:
                print(f"{task:<8} {setting:<12} {ex['which']:<5} seed {ex['seed']} {ex['score']:.4f}  {ex['text']!r}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS), help="which tasks to run")
    p.add_argument("--steps", type=int, default=300, help="PEZ steps per run")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds")
    p.add_argument("--prompt-len", type=int, default=8, help="prompt length in tokens")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--out", default=str(HERE / "results_vocab.json"), help="JSON file to write")
    args = p.parse_args(argv)

    t_start = time.perf_counter()
    records: list[dict] = []
    for task in args.tasks:
        for target, obj in TASKS[task](args.device):
            for setting in SETTINGS:
                for seed in args.seeds:
                    rec = run_one(obj, task, target, setting, seed, args)
                    records.append(rec)
                    print(
                        f"{task:<8} {setting:<12} seed {seed}  score {rec['score']:.4f}  internal "
                        f"{rec['internal_score']:.4f}  retok {rec['retokenized']!s:<5}  {rec['seconds']:5.1f}s  "
                        f"{rec['text']!r}",
                        flush=True,
                    )
    summary = {
        task: {s: summarise([r for r in records if r["task"] == task and r["setting"] == s]) for s in SETTINGS}
        for task in args.tasks
    }
    print()
    print_table(summary)
    out = {
        "benchmark": "honest scores: whole_words=True vs whole_words=False (ascii_only=True)",
        "command": " ".join([Path(sys.executable).name, *sys.argv]) if argv is None else f"main({argv!r})",
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "open_clip": open_clip.__version__,
            "pez": pez.__version__,
            "torch_threads": torch.get_num_threads(),
            "device": args.device,
        },
        "settings": {
            "prompt_len": args.prompt_len,
            "steps": args.steps,
            "seeds": args.seeds,
            "ascii_only": True,
            "planted_prompt": PLANTED,
            "sentences": SENTENCES,
        },
        "summary": summary,
        "runs": records,
        "total_s": time.perf_counter() - t_start,
    }
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
