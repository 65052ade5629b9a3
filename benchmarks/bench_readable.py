"""Readable prompts: honest score against readability, every method at equal wall-clock per prompt.

Task: the embedded minilm sentence encoder (a real encoder), one prompt per target sentence (24 sentences of our
own below, none from the README), at ``--lengths`` tokens. Each method gets the same ``--seconds`` of loop time per
prompt (``pez.Budget``); its prompt is then judged by the embedded SmolLM2 (perplexity of the text read as the start
of a document; ``judge_is_prior`` where SmolLM2 also proposed or steered it), by the dictionary-word and
repeated-word shares, and scored honestly (re-tokenised) under minilm. The target sentences' own perplexity is the
ceiling line.

Functional checks of the other encoder paths (tiny random weights, planted readable targets): a random ViT-B-32 CLIP
(``--clip``) and SDXL's two random towers (``--sdxl``), with the same methods and budget.

The budget counts each method's setup (``pez.Budget``); VGD's one-token features of minilm's vocabulary are
computed once per process before the timed runs (like loading the models) and reused by every target, as they are
in a folder run. A stopped benchmark resumes from ``OUT.partial.jsonl`` (``--fresh`` starts over).

Writes ``benchmarks/results_readable.json`` (every run, and per method: cosine mean and std, perplexity median and
geometric mean, dictionary share, seconds per prompt) and ``benchmarks/readable_frontier.png`` (honest cosine
against judge perplexity, log axis, one point per prompt and the method means).

    .venv/bin/python benchmarks/bench_readable.py --seconds 10 --lengths 8
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch

import pez
from pez.jobs.invert import readable_search
from pez.models.lm import load_judge
from pez.text.readability import Judge, word_stats

HERE = Path(__file__).resolve().parent
TARGETS = [
    "A woman is reading a book in a quiet library.",
    "Two dogs are running across a snowy field.",
    "A young boy flies a red kite on a windy hill.",
    "The train crosses an old stone bridge over a river.",
    "A fisherman repairs his nets on a small wooden boat.",
    "Children are building a sandcastle near the waves.",
    "A cat sleeps on a warm windowsill in the afternoon.",
    "An old man plays the violin on a busy street corner.",
    "A group of friends are having a picnic under a tree.",
    "The chef pours hot soup into a white bowl.",
    "A cyclist rides down a steep mountain road.",
    "Snow covers the roofs of a small village at night.",
    "A girl is painting a picture of sunflowers.",
    "A farmer drives a green tractor through a wheat field.",
    "The baby laughs while playing with a yellow ball.",
    "A pilot walks toward a small plane on the runway.",
    "Fresh bread is cooling on a kitchen table.",
    "A surfer catches a large wave on a sunny day.",
    "Two students are studying together in a cafe.",
    "A firefighter sprays water on a burning house.",
    "The moon rises over a calm lake surrounded by pines.",
    "A doctor listens to a patient's heartbeat.",
    "A crowd cheers as the runner crosses the finish line.",
    "A small bird sits on a branch covered in frost.",
]
PLANTED_CLIP = ["a red car parked on a quiet street", "a dog runs on the green grass"]

# name -> (method, config); every run also gets prompt_len, seed and the budget
METHODS = {
    "pez": ("pez", {"restarts": 4}),
    "fluent": ("fluent", {"restarts": 4}),
    "autoprompt": ("autoprompt", {"candidates": 32}),
    "gcg": ("gcg", {"search_width": 64, "top_k": 64}),
    "vgd": ("vgd", {}),
    "readable-w0.02": ("readable", {"prior_weight": 0.02}),
    "readable-w0.05": ("readable", {"prior_weight": 0.05}),
    "readable-w0.1": ("readable", {"prior_weight": 0.1}),
    "readable-mode": ("readable-mode", {}),  # pez invert --readable: VGD, then the readable method from its text
}


def run(obj, method: str, config: dict, length: int, seconds: float, seed: int) -> dict:
    t0 = time.perf_counter()
    if method == "readable-mode":
        res = readable_search(obj, length, seed, budget=pez.Budget(seconds=seconds), steps=10**9, **config)
    else:
        cfg = pez.make_config(method, {**config, "prompt_len": length, "steps": 10**9, "seed": seed})
        res = pez.optimize(obj, cfg, budget=pez.Budget(seconds=seconds))
    wall = time.perf_counter() - t0
    return {"text": res.text, "score": res.score, "wall_s": wall, "loop_s": res.timings["loop_s"],
            "steps": res.timings["steps_run"], "stopped_by": res.timings["stopped_by"],
            "extras": {k: v for k, v in res.extras.items() if isinstance(v, int | float | str)}}  # fmt: skip


def _done(partial: Path, seconds: float) -> dict:
    """The runs a stopped benchmark already finished at the same budget, by (length, target, method)."""
    out = {}
    for line in partial.read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:  # the line a kill cut short
            continue
        if r.get("seconds") == seconds:
            out[(r["length"], r["target"], r["method"])] = r
    return out


def judge_runs(runs: list[dict], judge: Judge, writers: dict[str, set]) -> None:
    ppl = judge.lm.perplexity([r["text"] for r in runs])
    for r, p in zip(runs, ppl):
        share, repeated, words = word_stats(r["text"])
        r.update(perplexity=p if math.isfinite(p) else None, dictionary_share=share, repeated_share=repeated,
                 words=words, judge_is_prior=judge.name in writers.get(r["method"], set()))  # fmt: skip


def summarise(runs: list[dict]) -> dict:
    out = {}
    for name in dict.fromkeys(r["method"] for r in runs):
        mine = [r for r in runs if r["method"] == name]
        scores = [r["score"] for r in mine]
        ppl = [r["perplexity"] for r in mine if r["perplexity"]]
        out[name] = {
            "n": len(mine),
            "cosine_mean": statistics.fmean(scores),
            "cosine_std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
            "ppl_median": statistics.median(ppl) if ppl else None,
            "ppl_geomean": math.exp(statistics.fmean(math.log(p) for p in ppl)) if ppl else None,
            "dictionary_share": statistics.fmean(r["dictionary_share"] for r in mine),
            "repeated_share": statistics.fmean(r["repeated_share"] for r in mine),
            "seconds_per_prompt": statistics.fmean(r["wall_s"] for r in mine),
            "judge_is_prior": any(r["judge_is_prior"] for r in mine),
        }
    return out


def plot(runs: list[dict], ceiling: float, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.subplots()
    for k, name in enumerate(dict.fromkeys(r["method"] for r in runs)):
        mine = [r for r in runs if r["method"] == name and r["perplexity"]]
        ax.scatter([r["perplexity"] for r in mine], [r["score"] for r in mine], s=10, alpha=0.35, color=f"C{k}")
        gx = math.exp(statistics.fmean(math.log(r["perplexity"]) for r in mine))
        ax.scatter([gx], [statistics.fmean(r["score"] for r in mine)], s=90, color=f"C{k}", edgecolor="black",
                   label=name)  # fmt: skip
    ax.axvline(ceiling, color="gray", linestyle="--", label="the targets' own perplexity (median)")
    ax.set_xscale("log")
    ax.set_xlabel("judge perplexity of the prompt (SmolLM2-135M; log scale; lower reads better)")
    ax.set_ylabel("honest cosine with the target (minilm)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)


def functional(spec_model, targets: list[str], names: list[str], length: int, seconds: float) -> list[dict]:
    """The same methods on a random-weight encoder with planted readable targets (a functional check)."""
    out = []
    for t in targets:
        obj = pez.make_objective(spec_model, texts=[t])
        for name in names:
            method, config = METHODS[name]
            out.append({"target": t, "method": name, **run(obj, method, config, length, seconds, 0)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="loop seconds per prompt, every method")
    ap.add_argument("--lengths", type=int, nargs="+", default=[8], help="prompt lengths (tokens)")
    ap.add_argument("--targets", type=int, default=len(TARGETS), help="how many of the 24 sentences")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma list of " + ",".join(METHODS))
    ap.add_argument("--clip", action="store_true", help="also the random ViT-B-32 functional check")
    ap.add_argument("--sdxl", action="store_true", help="also SDXL's two random towers")
    ap.add_argument("--out", default=str(HERE / "results_readable.json"))
    ap.add_argument("--fresh", action="store_true", help="ignore the runs already in OUT.partial.jsonl")
    args = ap.parse_args()
    torch.manual_seed(0)
    names = [m for m in args.methods.split(",") if m]
    judge = load_judge("smollm2", "cpu")
    writers = {n: ({"smollm2"} if METHODS[n][0] in ("vgd", "readable", "readable-mode") else set()) for n in METHODS}
    minilm = pez.load_model("minilm", "cpu")
    targets = TARGETS[: args.targets]
    # a fixed cost per process, like loading the models: VGD's one-token features of minilm's vocabulary (its
    # first-word ranking); every later objective on minilm reuses them (EmbeddingObjective.one_token_losses)
    warm = pez.make_config("vgd", {"prompt_len": 1, "steps": 1, "seed": 0})
    pez.optimize(pez.make_objective(minilm, texts=["warm-up"]), warm)
    ceiling = judge.lm.perplexity(targets)
    # every finished run is appended to OUT.partial.jsonl at once: a stopped benchmark resumes where it stopped
    partial = Path(args.out + ".partial.jsonl")
    done = {} if args.fresh or not partial.exists() else _done(partial, args.seconds)
    runs = []
    with partial.open("w" if args.fresh else "a") as log:
        for length in args.lengths:
            for i, t in enumerate(targets):
                obj = pez.make_objective(minilm, texts=[t])
                for name in names:
                    r = done.get((length, t, name))
                    if r is None:
                        method, config = METHODS[name]
                        r = {"target": t, "length": length, "method": name, "seconds": args.seconds,
                             **run(obj, method, config, length, args.seconds, 0)}  # fmt: skip
                        log.write(json.dumps(r) + "\n")
                        log.flush()
                    runs.append(r)
                    tag = f"[{length} tok, {i + 1}/{len(targets)}] {name:16s}"
                    print(f"{tag} {r['score']:.4f}  {r['text']!r}", flush=True)
    judge_runs(runs, judge, writers)
    result = {
        "machine": {"torch": torch.__version__, "threads": torch.get_num_threads()},
        "seconds": args.seconds,
        "judge": judge.name,
        "targets": {
            "n": len(targets),
            "ppl_median": statistics.median(ceiling),
            "ppl_geomean": math.exp(statistics.fmean(math.log(p) for p in ceiling)),
        },  # fmt: skip
        "summary": {str(n): summarise([r for r in runs if r["length"] == n]) for n in args.lengths},
        "runs": runs,
    }
    if args.clip:
        clip = pez.load_model("ViT-B-32/random", "cpu")
        fr = functional(clip, PLANTED_CLIP, names, 8, args.seconds)
        judge_runs(fr, judge, writers)
        result["clip_random"] = {"summary": summarise(fr), "runs": fr}
    if args.sdxl:
        towers = pez.load_model("sdxl:ViT-B-32/random,ViT-B-32/random", "cpu")
        fr = functional(towers, PLANTED_CLIP, names, 8, args.seconds)
        judge_runs(fr, judge, writers)
        result["sdxl_random"] = {"summary": summarise(fr), "runs": fr}
    Path(args.out).write_text(json.dumps(result, indent=1))
    plot(
        [r for r in runs if r["length"] == args.lengths[0]], statistics.median(ceiling), HERE / "readable_frontier.png"
    )
    for n, summary in result["summary"].items():
        own = result["targets"]["ppl_median"]
        print(f"\n{n} tokens, {args.seconds:g} s per prompt; the targets' own perplexity: median {own:.0f}")
        print(f"{'method':16s} {'cosine':>15s} {'ppl median':>10s} {'ppl geo':>9s} {'dict':>5s} {'s/prompt':>8s}")
        for name, s in summary.items():
            ppl = f"{s['ppl_median'] or 0:10.0f} {s['ppl_geomean'] or 0:9.0f}"
            cos = f"{s['cosine_mean']:.4f} ± {s['cosine_std']:.4f}"
            print(f"{name:16s} {cos} {ppl} {s['dictionary_share']:5.2f} {s['seconds_per_prompt']:8.1f}")


if __name__ == "__main__":
    main()
