"""Readable prompts: honest score against readability, every method at equal wall-clock per prompt.

Task: the embedded minilm sentence encoder (a real encoder), one prompt per target sentence (24 sentences of our
own below, none from the README), at ``--lengths`` tokens. First plain PEZ runs as ``make demo`` runs it (300 steps,
4 restarts, no budget): its median seconds per prompt is the reference time T, measured in the same process. Then
every method gets ``--scales`` x T seconds per prompt (``pez.Budget``, setup counted), so each method is a curve over
its budget; readable mode is also run at its own defaults (no budget: its time against T) and at other prior
weights (its curve over that knob). Each prompt is judged by the embedded SmolLM2 (perplexity of the text read as
the start of a document; ``judge_is_prior`` where SmolLM2 also proposed or steered it), by the dictionary-word and
repeated-word shares and by whether it ends mid-phrase (``pez.text.readability.ends_mid_phrase``: its last word is
a function word, or it ends on , ; : -), and scored honestly (re-tokenised) under minilm.

Two reference rows: **a person** (``PERSON`` below: a short paraphrase of each sentence written by hand, once,
within 8 and within 16 minilm tokens, scored like every method) and the target sentences themselves (their own
perplexity: the ceiling line).

Functional checks of the other encoder paths (tiny random weights, planted readable targets): a random ViT-B-32 CLIP
(``--clip``) and SDXL's two random towers (``--sdxl``), with the same methods and budget.

VGD's one-token features of minilm's vocabulary are computed once per process before the timed runs (like loading
the models) and reused by every target, as they are in a folder run. A stopped benchmark resumes from
``OUT.partial.jsonl`` (``--fresh`` starts over).

Writes ``benchmarks/results_readable.json`` (every run, and per method and budget: cosine mean and std, perplexity
median and geometric mean, dictionary and mid-phrase shares, seconds per prompt) and
``benchmarks/readable_frontier.png`` (honest cosine against judge perplexity, log axis: each method's mean as a
curve over its knob, the person row as a point, the sentences' own perplexity as a line).

    .venv/bin/python benchmarks/bench_readable.py --targets 12 --lengths 8
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

import torch

import pez
from pez.jobs.invert import readable_search
from pez.models.lm import load_judge
from pez.optim.compose import ComposeConfig
from pez.text.readability import Judge, ends_mid_phrase, word_stats

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
# a person's short paraphrase of each target, written by hand once: (within 8 minilm tokens, within 16)
PERSON = {
    "A woman is reading a book in a quiet library.": (
        "Woman reading a book in a quiet library",
        "In a quiet library, a woman sits reading her book",
    ),
    "Two dogs are running across a snowy field.": (
        "Two dogs running through a snowy field",
        "Across a field covered in snow, two dogs are running together",
    ),
    "A young boy flies a red kite on a windy hill.": (
        "Young boy flying a red kite",
        "On a windy hill, a young boy is flying his red kite",
    ),
    "The train crosses an old stone bridge over a river.": (
        "Train crossing an old stone bridge",
        "A train passes over the river on an old stone bridge",
    ),
    "A fisherman repairs his nets on a small wooden boat.": (
        "Fisherman mending nets on a wooden boat",
        "On his small wooden boat, a fisherman is mending his fishing nets",
    ),
    "Children are building a sandcastle near the waves.": (
        "Children building a sandcastle by the waves",
        "Near the waves on the beach, children are building a sandcastle",
    ),
    "A cat sleeps on a warm windowsill in the afternoon.": (
        "Cat sleeping on a warm windowsill",
        "In the afternoon sun, a cat is asleep on a warm windowsill",
    ),
    "An old man plays the violin on a busy street corner.": (
        "Old man playing violin on the street",
        "On a busy street corner, an old man is playing his violin",
    ),
    "A group of friends are having a picnic under a tree.": (
        "Friends having a picnic under a tree",
        "A group of friends enjoy a picnic in the shade of a tree",
    ),
    "The chef pours hot soup into a white bowl.": (
        "Chef pouring hot soup into a bowl",
        "A chef is pouring hot soup from a pot into a white bowl",
    ),
    "A cyclist rides down a steep mountain road.": (
        "Cyclist riding down a steep mountain road",
        "A cyclist speeds down a steep road in the mountains",
    ),
    "Snow covers the roofs of a small village at night.": (
        "Snowy roofs of a village at night",
        "At night, the roofs of a small village are covered with snow",
    ),
    "A girl is painting a picture of sunflowers.": (
        "Girl painting a picture of sunflowers",
        "A young girl paints a picture of yellow sunflowers",
    ),
    "A farmer drives a green tractor through a wheat field.": (
        "Farmer driving a tractor through wheat",
        "A farmer on a green tractor drives through his field of wheat",
    ),
    "The baby laughs while playing with a yellow ball.": (
        "Baby laughing with a yellow ball",
        "A happy baby is laughing as it plays with a yellow ball",
    ),
    "A pilot walks toward a small plane on the runway.": (
        "Pilot walking to a plane on the runway",
        "On the runway, a pilot is walking over to a small plane",
    ),
    "Fresh bread is cooling on a kitchen table.": (
        "Fresh bread cooling on the kitchen table",
        "Freshly baked bread is left to cool on the kitchen table",
    ),
    "A surfer catches a large wave on a sunny day.": (
        "Surfer riding a large wave",
        "On a sunny day, a surfer rides a large wave in the ocean",
    ),
    "Two students are studying together in a cafe.": (
        "Two students studying in a cafe",
        "Two students sit together at a cafe, studying for class",
    ),
    "A firefighter sprays water on a burning house.": (
        "Firefighter spraying water on a burning house",
        "A firefighter aims a hose of water at a house on fire",
    ),
    "The moon rises over a calm lake surrounded by pines.": (
        "Moon rising over a calm lake",
        "The moon comes up over a calm lake with pine trees all around",
    ),
    "A doctor listens to a patient's heartbeat.": (
        "Doctor listening to a patient's heart",
        "A doctor uses a stethoscope to listen to a patient's heartbeat",
    ),
    "A crowd cheers as the runner crosses the finish line.": (
        "Crowd cheering a runner at the finish",
        "The crowd cheers as a runner crosses the finish line of the race",
    ),
    "A small bird sits on a branch covered in frost.": (
        "Small bird on a frosty branch",
        "A little bird is sitting on a branch that is covered with frost",
    ),
}
PLANTED_CLIP = ["a red car parked on a quiet street", "a dog runs on the green grass"]

# name -> (method, config, budgeted); every run also gets prompt_len and seed; a budgeted one ``scale`` x T seconds
METHODS = {
    "pez-demo": ("pez", {"restarts": 4, "steps": 300}, False),  # make demo's settings: the reference time T
    "pez": ("pez", {"restarts": 4}, True),
    "fluent": ("fluent", {"restarts": 4}, True),
    "autoprompt": ("autoprompt", {"candidates": 32}, True),
    "gcg": ("gcg", {"search_width": 64, "top_k": 64}, True),
    "vgd": ("vgd", {}, True),
    "readable-w0.05": ("readable", {"prior_weight": 0.05}, True),
    "readable-mode": ("readable-mode", {}, True),  # pez invert --readable: PEZ, then compose from its words
    "readable-mode-w0.04": ("readable-mode", {"prior_weight": 0.04}, True),
    "readable-mode-w0.16": ("readable-mode", {"prior_weight": 0.16}, True),
    "readable-mode-default": ("readable-mode", {}, False),  # its own defaults, no budget: its time against T
}
DEFAULT_METHODS = (
    "pez-demo,pez,gcg,vgd,readable-w0.05,readable-mode,readable-mode-w0.04,readable-mode-w0.16,readable-mode-default"
)
ONE_SCALE = {"gcg", "vgd", "readable-w0.05", "readable-mode-w0.04", "readable-mode-w0.16"}  # at 1 x T only
PERSON_ROW = "a person"


def run(obj, method: str, config: dict, length: int, seconds: float | None, seed: int) -> dict:
    budget = None if seconds is None else pez.Budget(seconds=seconds)
    t0 = time.perf_counter()
    if method == "readable-mode":
        steps = {} if budget is None else {"steps": 10**9}
        res = readable_search(obj, length, seed, budget=budget, **steps, **config)
    else:
        steps = config.get("steps", 10**9)
        cfg = pez.make_config(method, {**config, "prompt_len": length, "steps": steps, "seed": seed})
        res = pez.optimize(obj, cfg, budget=budget)
    wall = time.perf_counter() - t0
    return {"text": res.text, "score": res.score, "wall_s": wall, "loop_s": res.timings["loop_s"],
            "steps": res.timings["steps_run"], "stopped_by": res.timings["stopped_by"],
            "extras": {k: v for k, v in res.extras.items() if isinstance(v, int | float | str)}}  # fmt: skip


def person_run(obj, target: str, length: int) -> dict:
    """The person row: the hand-written paraphrase within ``length`` minilm tokens, scored like every prompt."""
    text = PERSON[target][0 if length <= 8 else 1]
    ids = obj.vocab.encode(text)
    assert len(ids) <= length, f"the person's paraphrase {text!r} has {len(ids)} minilm tokens, over {length}"
    score = -obj.eval_loss_ids([ids], torch.zeros(1, dtype=torch.long)).item()
    return {"text": text, "score": score, "wall_s": None, "stopped_by": None}


def _done(partial: Path) -> dict:
    """The runs a stopped benchmark already finished, by (length, target, method, scale)."""
    out = {}
    for line in partial.read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:  # the line a kill cut short
            continue
        out[(r["length"], r["target"], r["method"], r.get("scale"))] = r
    return out


def judge_runs(runs: list[dict], judge: Judge, writers: dict[str, set]) -> None:
    ppl = judge.lm.perplexity([r["text"] for r in runs])
    for r, p in zip(runs, ppl):
        share, repeated, words = word_stats(r["text"])
        r.update(perplexity=p if math.isfinite(p) else None, dictionary_share=share, repeated_share=repeated,
                 words=words, mid_phrase=ends_mid_phrase(r["text"]),
                 judge_is_prior=judge.name in writers.get(r["method"], set()))  # fmt: skip


def row_name(r: dict) -> str:
    return r["method"] if r.get("scale") is None else f"{r['method']}@{r['scale']:g}T"


def summarise(runs: list[dict]) -> dict:
    out = {}
    for name in dict.fromkeys(map(row_name, runs)):
        mine = [r for r in runs if row_name(r) == name]
        scores = [r["score"] for r in mine]
        ppl = [r["perplexity"] for r in mine if r["perplexity"]]
        walls = [r["wall_s"] for r in mine if r["wall_s"] is not None]
        out[name] = {
            "method": mine[0]["method"],
            "scale": mine[0].get("scale"),
            "n": len(mine),
            "cosine_mean": statistics.fmean(scores),
            "cosine_std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
            "ppl_median": statistics.median(ppl) if ppl else None,
            "ppl_geomean": math.exp(statistics.fmean(math.log(p) for p in ppl)) if ppl else None,
            "dictionary_share": statistics.fmean(r["dictionary_share"] for r in mine),
            "repeated_share": statistics.fmean(r["repeated_share"] for r in mine),
            "mid_phrase_share": statistics.fmean(r["mid_phrase"] for r in mine),
            "seconds_per_prompt": statistics.fmean(walls) if walls else None,
            "seconds_median": statistics.median(walls) if walls else None,
            "judge_is_prior": any(r["judge_is_prior"] for r in mine),
        }
    return out


def aim(summary: dict) -> dict:
    """Issue 27's aim on one length's summary: readable mode at 1 x T against plain PEZ (make demo's run) and the
    person row, and readable mode's own default time against T."""
    demo, person = summary["pez-demo"], summary[PERSON_ROW]
    mode, own = summary.get("readable-mode@1T"), summary.get("readable-mode-default")
    out = {"pez_cosine": demo["cosine_mean"], "pez_s_median": demo["seconds_median"],
           "person_ppl_median": person["ppl_median"], "person_cosine": person["cosine_mean"]}  # fmt: skip
    if mode:
        out.update(readable_cosine=mode["cosine_mean"], readable_ppl_median=mode["ppl_median"],
                   readable_mid_phrase_share=mode["mid_phrase_share"],
                   fidelity_met=mode["cosine_mean"] >= demo["cosine_mean"] - 0.02,
                   perplexity_met=mode["ppl_median"] <= person["ppl_median"],
                   mid_phrase_met=mode["mid_phrase_share"] <= 1 / 12 + 1e-9)  # fmt: skip
    if own:
        out.update(readable_default_s_median=own["seconds_median"], readable_default_cosine=own["cosine_mean"],
                   readable_default_ppl_median=own["ppl_median"],
                   readable_default_mid_phrase_share=own["mid_phrase_share"],
                   time_met=own["seconds_median"] <= demo["seconds_median"])  # fmt: skip
    return out


def plot(summary: dict, ceiling: float, path: Path) -> None:
    """Each method's mean (geometric-mean perplexity, mean cosine) as a curve over its knob: its budget (scale x T)
    and, for readable mode, its prior weight at 1 x T; the person as a star; the sentences' own perplexity as a
    line."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    curves: dict[str, list] = {}
    for name, s in summary.items():
        if s["ppl_geomean"] is None or s["method"] == PERSON_ROW or "-w" in s["method"]:
            continue  # the prior-weight variants are the gray curve
        family = s["method"] if s["scale"] is not None else name
        curves.setdefault(family, []).append((s["scale"] or 0, s["ppl_geomean"], s["cosine_mean"], name))
    weights = sorted((n, s) for n, s in summary.items() if n.startswith("readable-mode") and s["scale"] == 1)
    if len(weights) > 1:  # readable mode over its prior weight, at 1 x T
        default = ComposeConfig.prior_weight
        pts = [(float(n.split("-w")[1].split("@")[0]) if "-w" in n else default, s) for n, s in weights]
        pts.sort()
        ax.plot([s["ppl_geomean"] for _, s in pts], [s["cosine_mean"] for _, s in pts], "s:", color="gray",
                label="readable mode over its prior weight (1 x T)", markersize=4)  # fmt: skip
        for w, s in pts:
            ax.annotate(f"w={w:g}", (s["ppl_geomean"], s["cosine_mean"]), fontsize=7, xytext=(3, -9),
                        textcoords="offset points")  # fmt: skip
    for k, (family, pts) in enumerate(curves.items()):
        pts.sort()
        label = {"pez-demo": "pez (make demo: T)", "readable-mode-default": "readable mode, own defaults"}
        ax.plot([p[1] for p in pts], [p[2] for p in pts], "o-", color=f"C{k % 10}", label=label.get(family, family),
                markersize=6)  # fmt: skip
        for scale, x, y, _ in pts:
            if scale:
                ax.annotate(f"{scale:g}T", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    p = summary[PERSON_ROW]
    ax.scatter([p["ppl_geomean"]], [p["cosine_mean"]], marker="*", s=220, color="black", label="a person", zorder=5)
    ax.axvline(ceiling, color="gray", linestyle="--", label="the target sentences' own perplexity")
    ax.set_xscale("log")
    ax.set_xlabel("judge perplexity of the prompt (SmolLM2-135M, geometric mean; log scale; lower reads better)")
    ax.set_ylabel("honest cosine with the target (minilm, mean)")
    ax.set_title("each method over its budget (x T, plain PEZ's time as make demo runs it)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=120)


def functional(spec_model, targets: list[str], names: list[str], length: int, seconds: float) -> list[dict]:
    """The same methods on a random-weight encoder with planted readable targets (a functional check)."""
    out = []
    for t in targets:
        obj = pez.make_objective(spec_model, texts=[t])
        for name in names:
            method, config, budgeted = METHODS[name]
            run_s = seconds if budgeted else None
            out.append({"target": t, "method": name, **run(obj, method, config, length, run_s, 0)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", type=float, nargs="+", default=[0.5, 1.0, 2.0],
                    help="budgets per prompt as multiples of T, plain PEZ's time (make demo's settings)")  # fmt: skip
    ap.add_argument("--lengths", type=int, nargs="+", default=[8], help="prompt lengths (tokens)")
    ap.add_argument("--targets", type=int, default=len(TARGETS), help="how many of the 24 sentences")
    ap.add_argument("--methods", default=DEFAULT_METHODS, help="comma list of " + ",".join(METHODS))
    ap.add_argument("--clip", action="store_true", help="also the random ViT-B-32 functional check")
    ap.add_argument("--sdxl", action="store_true", help="also SDXL's two random towers")
    ap.add_argument("--out", default=str(HERE / "results_readable.json"))
    ap.add_argument("--fresh", action="store_true", help="ignore the runs already in OUT.partial.jsonl")
    args = ap.parse_args()
    torch.manual_seed(0)
    names = [m for m in args.methods.split(",") if m]
    unknown = [n for n in names if n not in METHODS]
    if unknown or "pez-demo" not in names:
        raise SystemExit(f"--methods: unknown {unknown}; pez-demo (the reference time) must be among them")
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
    done = {} if args.fresh or not partial.exists() else _done(partial)
    runs, reference = [], {}
    with partial.open("w" if args.fresh else "a") as log:

        def one(length, i, t, obj, name, scale):
            r = done.get((length, t, name, scale))
            if r is None:
                method, config, _ = METHODS[name]
                seconds = None if scale is None else scale * reference[length]
                r = {"target": t, "length": length, "method": name, "scale": scale, "seconds": seconds,
                     **run(obj, method, config, length, seconds, 0)}  # fmt: skip
                log.write(json.dumps(r) + "\n")
                log.flush()
            runs.append(r)
            tag = f"[{length} tok, {i + 1}/{len(targets)}] {row_name(r):26s}"
            print(f"{tag} {r['score']:.4f} {r['wall_s']:5.1f}s {r['text']!r}", flush=True)

        for length in args.lengths:
            objs = [pez.make_objective(minilm, texts=[t]) for t in targets]
            for i, (t, obj) in enumerate(zip(targets, objs)):  # first the reference: plain PEZ as make demo runs it
                one(length, i, t, obj, "pez-demo", None)
                runs.append({"target": t, "length": length, "method": PERSON_ROW, **person_run(obj, t, length)})
            reference[length] = statistics.median(r["wall_s"] for r in runs if r["length"] == length and
                                                  r["method"] == "pez-demo")  # fmt: skip
            print(f"T at {length} tokens: {reference[length]:.2f} s (plain PEZ, make demo's settings, median)")
            for i, (t, obj) in enumerate(zip(targets, objs)):
                for name in [n for n in names if n != "pez-demo"]:  # pez-demo ran first, above
                    budgeted = METHODS[name][2]
                    scales = ([1.0] if name in ONE_SCALE else args.scales) if budgeted else [None]
                    for scale in scales:
                        one(length, i, t, obj, name, scale)
    judge_runs(runs, judge, writers)
    summary = {str(n): summarise([r for r in runs if r["length"] == n]) for n in args.lengths}
    result = {
        "machine": {"torch": torch.__version__, "threads": torch.get_num_threads(), "loadavg": os.getloadavg()},
        "reference_s": {str(n): reference[n] for n in args.lengths},
        "scales": args.scales,
        "judge": judge.name,
        "targets": {
            "n": len(targets),
            "ppl_median": statistics.median(ceiling),
            "ppl_geomean": math.exp(statistics.fmean(math.log(p) for p in ceiling)),
        },  # fmt: skip
        "summary": summary,
        "aim": {n: aim(s) for n, s in summary.items()},
        "runs": runs,
    }
    if args.clip:
        clip = pez.load_model("ViT-B-32/random", "cpu")
        fr = functional(clip, PLANTED_CLIP, names, 8, reference[args.lengths[0]])
        judge_runs(fr, judge, writers)
        result["clip_random"] = {"summary": summarise(fr), "runs": fr}
    if args.sdxl:
        towers = pez.load_model("sdxl:ViT-B-32/random,ViT-B-32/random", "cpu")
        fr = functional(towers, PLANTED_CLIP, names, 8, reference[args.lengths[0]])
        judge_runs(fr, judge, writers)
        result["sdxl_random"] = {"summary": summarise(fr), "runs": fr}
    Path(args.out).write_text(json.dumps(result, indent=1))
    plot(summary[str(args.lengths[0])], statistics.median(ceiling), HERE / "readable_frontier.png")
    own = result["targets"]["ppl_median"]
    for n, s in summary.items():
        print(f"\n{n} tokens; T = {reference[int(n)]:.2f} s; the targets' own perplexity: median {own:.0f}")
        print(f"{'method':28s} {'cosine':>15s} {'ppl median':>10s} {'ppl geo':>9s} {'mid':>5s} {'s median':>8s}")
        for name, row in s.items():
            ppl = f"{row['ppl_median'] or 0:10.0f} {row['ppl_geomean'] or 0:9.0f}"
            cos = f"{row['cosine_mean']:.4f} ± {row['cosine_std']:.4f}"
            sec = "" if row["seconds_median"] is None else f"{row['seconds_median']:8.2f}"
            print(f"{name:28s} {cos} {ppl} {row['mid_phrase_share']:5.2f} {sec}")
        print("aim:", json.dumps(result["aim"][n]))


if __name__ == "__main__":
    main()
