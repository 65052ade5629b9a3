"""The polish on a real encoder: PEZ alone against PEZ then the polish, at equal seconds, on minilm sentences.

The polish's default (``pez.jobs.invert.POLISH``: on at half of a seconds budget) was measured on the planted CLIP
task by ``bench_time_quality.py``; this is its check on the embedded real sentence encoder (minilm), as ``make
demo`` runs it: 8-token prompts for ``--sentences`` of ``bench_readable.py``'s target sentences, one
``pez.invert`` call per sentence, seed, budget and setting (``polish=0``: PEZ alone for the whole budget; the
default: PEZ for half, the polish for the rest). Each pair (same sentence, seed and budget) gives the polish's gain
in honest score (the result's text re-tokenised and encoded, as every pez score is); reported per budget: both
means, the paired gain's mean and standard error, how many pairs the polish won, lost or tied, and the seconds
each call took (set-up included). Writes ``benchmarks/results_polish.json``; RESULTS.md's table is built from it
by ``benchmarks/make_results.py``.

    .venv/bin/python benchmarks/bench_polish.py              # about 8 min on 2 CPU cores
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

import torch
from bench_readable import TARGETS

import pez

HERE = Path(__file__).resolve().parent
SETTINGS = {"pez alone": {"polish": 0.0}, "pez + polish": {}}  # {}: the default under a budget (the polish on)


def paired(rows: list[dict], budget: float) -> dict:
    """Both settings' mean honest score at ``budget`` and the polish's paired gain (mean, standard error, wins)."""
    at = [r for r in rows if r["budget_s"] == budget]
    key = lambda r: (r["target"], r["seed"])  # noqa: E731
    alone = {key(r): r for r in at if r["setting"] == "pez alone"}
    polish = {key(r): r for r in at if r["setting"] == "pez + polish"}
    pairs = sorted(set(alone) & set(polish))
    gains = [polish[k]["score"] - alone[k]["score"] for k in pairs]
    se = statistics.stdev(gains) / len(gains) ** 0.5 if len(gains) > 1 else None
    return {
        "budget_s": budget, "pairs": len(pairs),
        "alone_mean": statistics.fmean(alone[k]["score"] for k in pairs),
        "polish_mean": statistics.fmean(polish[k]["score"] for k in pairs),
        "gain_mean": statistics.fmean(gains), "gain_se": se,
        "won": sum(g > 1e-6 for g in gains), "lost": sum(g < -1e-6 for g in gains),
        "alone_wall_s": statistics.fmean(alone[k]["wall_s"] for k in pairs),
        "polish_wall_s": statistics.fmean(polish[k]["wall_s"] for k in pairs),
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sentences", type=int, default=8, help=f"how many of the {len(TARGETS)} target sentences")
    p.add_argument("--seconds", type=float, nargs="+", default=[4.0, 8.0], help="the seconds budgets")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--prompt-len", type=int, default=8)
    p.add_argument("--out", default=str(HERE / "results_polish.json"))
    args = p.parse_args()
    loaded = pez.load_model("minilm", "cpu")
    pez.invert(texts=[TARGETS[0]], model=loaded, prompt_len=args.prompt_len, steps=5, judge=None)  # warm, untimed
    out = {
        "benchmark": "the polish at equal seconds on minilm sentences",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "loadavg_start": os.getloadavg()},
        "settings": {"model": "minilm", "prompt_len": args.prompt_len, "seeds": args.seeds, "budgets": args.seconds,
                     "compared": SETTINGS},
        "runs": [],
    }  # fmt: skip
    for target in TARGETS[: args.sentences]:
        for seed in range(args.seeds):
            for seconds in args.seconds:
                for name, settings in SETTINGS.items():
                    t0 = time.perf_counter()
                    res = pez.invert(texts=[target], model=loaded, prompt_len=args.prompt_len, seed=seed, judge=None,
                                     budget=pez.Budget(seconds=seconds), **settings)  # fmt: skip
                    wall = time.perf_counter() - t0
                    out["runs"].append({"target": target, "seed": seed, "budget_s": seconds, "setting": name,
                                        "score": res.score, "text": res.text, "wall_s": wall,
                                        "polish": res.extras.get("polish")})  # fmt: skip
                    print(f"{target[:40]!r} seed {seed} {seconds:g} s {name}: {res.score:.4f} {res.text!r}", flush=True)
        out["summary"] = [paired(out["runs"], b) for b in args.seconds]
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")  # what is done is kept
    out["machine"]["loadavg_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    for row in out["summary"]:
        print(f"{row['budget_s']:g} s: PEZ alone {row['alone_mean']:.4f}, with the polish {row['polish_mean']:.4f}, "
              f"gain {row['gain_mean']:+.4f} ± {row['gain_se']:.4f} (won {row['won']}, lost {row['lost']} of "
              f"{row['pairs']})")  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
