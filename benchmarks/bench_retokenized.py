"""How often a discovered LM prompt's text tokenises to other ids than the ones optimised (``retokenized``).

Ten seeded ``pez.discover`` runs on the embedded smollm2 + movie-reviews per template (the default, and one with
text before the prompt); for each: whether the result is re-tokenised, and the gap between the internal score
(the optimised ids) and the honest score (the text). Target: a share of 0. Uses only the public API, so it runs
on older versions of pez too (for the before/after figures).

    .venv/bin/python benchmarks/bench_retokenized.py --out benchmarks/results_retokenized.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

import pez

TEMPLATES = ["{prompt} {text} It was", "Review: {prompt} {text} It was"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--prompt-len", type=int, default=6)
    p.add_argument("--out", default="benchmarks/results_retokenized.json")
    args = p.parse_args()
    lm = pez.load_lm("smollm2", "cpu")
    out = {"machine": {"platform": platform.platform(), "torch_threads": torch.get_num_threads()}, "runs": []}
    out["args"] = vars(args)
    out["pez"] = pez.__version__
    for template in TEMPLATES:
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            rep = pez.discover(
                lm,
                "movie-reviews",
                template=template,
                prompt_len=args.prompt_len,
                steps=args.steps,
                seed=seed,
                batch_size=4,
                sync_every=4,
                eval_every=4,
                dev_size=16,
                train_size=256,
                test_size=4,
                device="cpu",
            )
            s = rep.search
            run = {
                "template": template,
                "seed": seed,
                "prompt": rep.prompt,
                "retokenized": s["retokenized"],
                "n_ids": len(s["ids"]),
                "n_text_ids": len(s["text_ids"]),
                "internal_score": s["internal_score"],
                "score": s["score"],
                "seconds": time.perf_counter() - t0,
            }
            out["runs"].append(run)
            print(json.dumps(run), flush=True)
    out["share"] = {t: sum(r["retokenized"] for r in out["runs"] if r["template"] == t) / args.seeds for t in TEMPLATES}
    print(json.dumps(out["share"]))
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
