"""Speed of pez's PEZ against a naive reference loop that pays the official PEZ implementation's costs.

What is measured, for each CLIP model (random weights, ``open_clip.create_model(name, pretrained=None)``, the
visual tower dropped since only text targets are used) and the same text target:

- **reference**: :class:`ReferencePEZ`, a loop written here that pays what the official ``optimize_prompt_loop``
  pays per step, batched as it batches (``prompt_bs`` = R prompts in one forward): fp32, the text encoder over
  all 77 positions (start, prompt, end, zero-id padding, positional embeddings, ``model.transformer`` with
  ``model.attn_mask``, ``ln_final``, pooling at end-of-text, ``@ text_projection``), the search matrix normalised
  every step and searched with sentence-transformers' ``semantic_search`` (as the official ``nn_project``), a
  no-grad forward of the projected prompts only to track the best one, the forward again with gradients, the
  gradient at the projected point applied by AdamW (lr 0.1, weight decay 0.1), and every prompt decoded. It
  searches pez's own vocabulary mask (the same allowed tokens as pez: the ratios compare like with like); the
  whole-vocabulary variant the official code runs is timed beside it (at every R for ``--whole-vocab-models``,
  at R = 1 for the others).
- **pez**: ``pez.optimize(pez.CLIPObjective(model, tok, texts=[...]), pez.PEZConfig(prompt_len, steps, restarts=R,
  seed=0))`` for each R in ``--restarts``, timed by the result's ``timings["loop_s"] / timings["steps_run"]``
  (the step loop with its best-prompt tracking, host syncs and honest re-scoring). On CUDA pez runs with its
  default bf16 autocast and the reference in fp32.

Both are warmed up (``--warmup`` steps, excluded from the per-step time) before the timed steps (``--steps`` at
R = 1, fewer as R grows: ``steps_at``; on CUDA pez runs all ``--steps`` at every R, its eager first steps and the
CUDA graph capture included). Reported: per-step time, the whole run's time with its set-up (``run_s``:
the reference's construction plus its timed steps; pez's whole ``optimize`` call), prompt-steps/s and the
speed-up (pez prompt-steps/s over the masked reference's at the same R). Before timing, the reference encoder is
checked against ``model.encode_text`` (max abs diff < 1e-4), and pez's own text path against the reference.

Timings on a shared machine are only as good as its idleness: each timing records ``other_cores``, the mean
number of CPU cores other processes used meanwhile (from /proc/stat; ~0 means the numbers are clean). On a
2-core machine one busy core elsewhere can slow torch's two threads many times over. Results go to
``benchmarks/results_speed.json``.

Run (about 10-15 minutes on 2 CPU cores)::

    .venv/bin/python benchmarks/bench_speed.py

Options: ``--models ViT-B-32 ViT-H-14 --steps ViT-B-32=100 ViT-H-14=30 --restarts 1 8 32 --device cpu
--out benchmarks/results_speed.json``; ``--steps 10`` sets the same number for every model.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import open_clip
import torch
import torch.nn as nn
import torch.nn.functional as F
from sentence_transformers.util import dot_score, normalize_embeddings, semantic_search

import pez
from pez.text.projection import fast_bf16

HERE = Path(__file__).resolve().parent
DEFAULT_STEPS = {"ViT-B-32": 100, "ViT-H-14": 30}
FALLBACK_STEPS = 10
TARGET_TEXT = "a photo of an astronaut riding a horse on the moon"
CHECK_TEXT = "an oil painting of a lighthouse in a storm, dramatic light"


# -- the naive reference --------------------------------------------------------------------------------------
def reference_features(model: nn.Module, seq: torch.Tensor, seq_ids: torch.Tensor) -> torch.Tensor:
    """open_clip's text forward over all positions of token embeddings ``seq`` (N, 77, D).

    ``seq_ids`` (N, 77) are the ids the sequence stands for (prompt positions may hold anything smaller than the
    end-of-text id); the feature is pooled at the end-of-text token, the largest id, as open_clip does.
    """
    cast = model.transformer.get_cast_dtype()
    x = seq.to(cast) + model.positional_embedding.to(cast)
    x = model.transformer(x, attn_mask=model.attn_mask)
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), seq_ids.argmax(dim=-1)]
    proj = model.text_projection
    if proj is None:
        return x
    return proj(x) if isinstance(proj, nn.Linear) else x @ proj


class ReferencePEZ:
    """The official ``optimize_prompt_loop`` step's costs, at ``prompt_bs`` = R prompts batched together.

    Per step, as the official code: normalise the whole search matrix, nearest neighbours by sentence-transformers'
    ``semantic_search`` (top 1, dot score, results as Python dicts), a no-grad forward of all R projected prompts
    over 77 positions to track the best one (``.item()``), the forward again with gradients, the gradient at the
    projected point applied by AdamW (lr 0.1, weight decay 0.1), and every prompt decoded to text.

    Args:
        allowed: token ids the search may pick (pez's vocabulary mask); None: the whole vocabulary (official).
    """

    def __init__(self, model, tokenizer, targets, prompt_len: int, seed: int, restarts: int = 1, allowed=None):
        self.model, self.tokenizer = model, tokenizer
        self.E = model.token_embedding.weight  # (V, D)
        device = self.E.device
        self.allowed = allowed  # (A,) or None
        # the search matrix: the whole embedding, or its allowed rows taken once (as if the official code were
        # given a vocabulary without the others); normalised every step, as the official nn_project does
        self.rows = self.E if allowed is None else self.E[allowed].detach().clone()
        self.targets = F.normalize(targets.float(), dim=-1)  # (T, F)
        self.length = prompt_len
        context = model.positional_embedding.shape[0]
        ids = torch.zeros(restarts, context, dtype=torch.long, device=device)  # zero-id padding
        ids[:, 0] = tokenizer.sot_token_id
        ids[:, prompt_len + 1] = tokenizer.eot_token_id
        self.seq_ids = ids
        with torch.no_grad():
            self.template = model.token_embedding(ids).float()  # (R, 77, D)
        gen = torch.Generator(device=device).manual_seed(seed)
        pool = allowed if allowed is not None else torch.arange(self.E.shape[0], device=device)
        start = pool[torch.randint(len(pool), (restarts, prompt_len), generator=gen, device=device)]
        self.soft = self.E[start].detach().float().clone().requires_grad_(True)  # (R, L, D)
        self.opt = torch.optim.AdamW([self.soft], lr=0.1, weight_decay=0.1)
        self.best_score = -math.inf
        self.best_text = ""

    def sequence(self, prompt: torch.Tensor) -> torch.Tensor:
        t = self.template
        return torch.cat([t[:, :1], prompt, t[:, self.length + 1 :]], dim=1)  # (R, 77, D)

    def project(self) -> torch.Tensor:
        with torch.no_grad():
            corpus = normalize_embeddings(self.rows.float())  # the whole search matrix, every step
            queries = normalize_embeddings(self.soft.reshape(-1, self.soft.shape[-1]))
            hits = semantic_search(
                queries, corpus, query_chunk_size=queries.shape[0], top_k=1, score_function=dot_score
            )
            ids = torch.tensor([h[0]["corpus_id"] for h in hits], device=self.E.device).reshape(self.soft.shape[:2])
            return ids if self.allowed is None else self.allowed[ids]  # (R, L)

    def score(self, feats: torch.Tensor) -> torch.Tensor:
        return F.normalize(feats.float(), dim=-1) @ self.targets.T  # (R, T)

    def step(self) -> None:
        ids = self.project()
        with torch.no_grad():  # the official loop's forward only to track the best prompt
            per_prompt = self.score(reference_features(self.model, self.sequence(self.E[ids].float()), self.seq_ids))
            per_prompt = per_prompt.mean(dim=-1)
            score, best = per_prompt.max().item(), per_prompt.argmax().item()
        hard = self.E[ids].detach().float().requires_grad_(True)
        loss = 1 - self.score(reference_features(self.model, self.sequence(hard), self.seq_ids)).mean()
        (self.soft.grad,) = torch.autograd.grad(loss, hard)  # gradient at the projected point
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        texts = [self.tokenizer.decode(row) for row in ids.cpu().numpy()]  # every prompt, every step
        if score > self.best_score:
            self.best_score, self.best_text = score, texts[best]


# -- helpers -------------------------------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_snapshot() -> tuple[float, float | None, float]:
    """(wall clock, CPU seconds used by the whole machine or None off Linux, CPU seconds used by this process)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]
        busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    except (OSError, ValueError):
        busy = None
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), busy, ru.ru_utime + ru.ru_stime


def foreign_cores(before: tuple, after: tuple) -> float | None:
    """Mean number of cores that other processes kept busy between two snapshots (contention check)."""
    if before[1] is None or after[1] is None:
        return None
    wall = after[0] - before[0]
    other = (after[1] - before[1]) - (after[2] - before[2])
    return max(other, 0.0) / wall if wall > 0 else None


def load_text_model(name: str, device: torch.device) -> tuple[nn.Module, object]:
    model = open_clip.create_model(name, pretrained=None, device=device)
    model.eval()
    if hasattr(model, "visual"):
        del model.visual  # only text targets are used: the image tower is dead weight here
    gc.collect()
    return model, open_clip.get_tokenizer(name)


def check_reference(model: nn.Module, tokenizer, obj, device: torch.device) -> dict:
    """The reference encoder equals open_clip's ``encode_text``; record how far pez's own path is from it."""
    with torch.no_grad():
        tokens = tokenizer([CHECK_TEXT]).to(device)
        want = model.encode_text(tokens).float()
        got = reference_features(model, model.token_embedding(tokens), tokens).float()
        diff = (got - want).abs().max().item()
        assert diff < 1e-4, f"reference encoder differs from encode_text by {diff}"
        # a random 16-token prompt through both paths (pez computes only the first L + 2 positions)
        length = 16
        ids = torch.randint(1, tokenizer.eot_token_id - 1, (1, length), generator=torch.Generator().manual_seed(1))
        ids = ids.to(device)
        seq_ids = torch.zeros(1, tokens.shape[1], dtype=torch.long, device=device)
        seq_ids[0, 0] = tokenizer.sot_token_id
        seq_ids[0, 1 : length + 1] = ids[0]
        seq_ids[0, length + 1] = tokenizer.eot_token_id
        ref = reference_features(model, model.token_embedding(seq_ids), seq_ids).float()
        ours = obj.encode_embeds(model.token_embedding(ids)).float()
        pez_diff = (ours - ref).abs().max().item()
    return {
        "check_text": CHECK_TEXT,
        "reference_vs_encode_text_max_abs_diff": diff,
        "pez_vs_reference_max_abs_diff": pez_diff,
    }


def time_reference(model, tokenizer, targets, prompt_len, steps, warmup, device, restarts=1, allowed=None) -> dict:
    sync(device)
    t0 = time.perf_counter()
    ref = ReferencePEZ(model, tokenizer, targets, prompt_len, seed=0, restarts=restarts, allowed=allowed)
    sync(device)
    setup_s = time.perf_counter() - t0
    for _ in range(warmup):
        ref.step()
    sync(device)
    snap = cpu_snapshot()
    t0 = time.perf_counter()
    for _ in range(steps):
        ref.step()
    sync(device)
    loop_s = time.perf_counter() - t0
    return {
        "restarts": restarts,
        "vocabulary": "whole" if allowed is None else f"pez's mask ({len(allowed)} tokens)",
        "other_cores": foreign_cores(snap, cpu_snapshot()),
        "setup_s": setup_s,
        "loop_s": loop_s,
        "steps_run": steps,
        "run_s": setup_s + loop_s,
        "s_per_step": loop_s / steps,
        "steps_per_s": steps / loop_s,
        "prompt_steps_per_s": restarts * steps / loop_s,
        "best_score": ref.best_score,
        "best_text": ref.best_text,
    }


def time_pez(obj, prompt_len: int, steps: int, warmup: int, restarts: int, device) -> dict:
    if warmup:
        pez.optimize(obj, pez.PEZConfig(prompt_len=prompt_len, steps=warmup, restarts=restarts, seed=0))
    sync(device)
    snap = cpu_snapshot()
    t0 = time.perf_counter()
    res = pez.optimize(obj, pez.PEZConfig(prompt_len=prompt_len, steps=steps, restarts=restarts, seed=0))
    sync(device)
    call_s = time.perf_counter() - t0
    other = foreign_cores(snap, cpu_snapshot())
    loop_s, run = res.timings["loop_s"], res.timings["steps_run"]
    return {
        "restarts": restarts,
        "other_cores": other,
        "setup_s": res.timings["setup_s"],
        "loop_s": loop_s,
        "steps_run": run,
        "run_s": call_s,  # the whole pez.optimize call: set-up, loop, final re-scoring and result
        "s_per_step": loop_s / run,
        "steps_per_s": run / loop_s,
        "prompt_steps_per_s": restarts * run / loop_s,
        "best_score": res.score,
        "best_text": res.text,
    }


def time_interleaved(model, tokenizer, obj, prompt_len, steps, warmup, device, restarts, allowed, rounds) -> tuple:
    """The masked reference and pez timed in alternation: ``rounds`` chunks of the steps each, reference then pez,
    so that a machine whose speed drifts slows both alike. Returns (reference, pez, per-round speed-ups)."""
    sync(device)
    t0 = time.perf_counter()
    ref = ReferencePEZ(model, tokenizer, obj.targets, prompt_len, seed=0, restarts=restarts, allowed=allowed)
    sync(device)
    ref_setup = time.perf_counter() - t0
    for _ in range(warmup):
        ref.step()
    if warmup:
        pez.optimize(obj, pez.PEZConfig(prompt_len=prompt_len, steps=warmup, restarts=restarts, seed=0))
    chunks = [steps // rounds + (i < steps % rounds) for i in range(min(rounds, steps))]
    snap = cpu_snapshot()
    ref_loop = pez_loop = pez_run = 0.0
    pez_setup, speedups, res = [], [], None
    for i, n in enumerate(chunks):
        sync(device)
        t = time.perf_counter()
        for _ in range(n):
            ref.step()
        sync(device)
        dt = time.perf_counter() - t
        t = time.perf_counter()
        res = pez.optimize(obj, pez.PEZConfig(prompt_len=prompt_len, steps=n, restarts=restarts, seed=i))
        sync(device)
        pez_run += time.perf_counter() - t
        ref_loop, pez_loop = ref_loop + dt, pez_loop + res.timings["loop_s"]
        pez_setup.append(res.timings["setup_s"])
        speedups.append(dt / res.timings["loop_s"])
    other = foreign_cores(snap, cpu_snapshot())
    reference = {
        "restarts": restarts, "vocabulary": f"pez's mask ({len(allowed)} tokens)", "other_cores": other,
        "setup_s": ref_setup, "loop_s": ref_loop, "steps_run": steps, "run_s": ref_setup + ref_loop,
        "s_per_step": ref_loop / steps, "steps_per_s": steps / ref_loop,
        "prompt_steps_per_s": restarts * steps / ref_loop, "best_score": ref.best_score, "best_text": ref.best_text,
    }  # fmt: skip
    mine = {
        "restarts": restarts, "other_cores": other, "setup_s": statistics.fmean(pez_setup), "loop_s": pez_loop,
        "steps_run": steps, "run_s": pez_run, "runs": len(chunks), "s_per_step": pez_loop / steps,
        "steps_per_s": steps / pez_loop, "prompt_steps_per_s": restarts * steps / pez_loop,
        "best_score": res.score, "best_text": res.text,
    }  # fmt: skip
    return reference, mine, speedups


def steps_at(n: int, restarts: int) -> int:
    """Timed steps at R prompts: fewer as R grows (a step costs about R times more), at least 3."""
    return max(3, round(n / math.sqrt(restarts)))


def parse_steps(items: list[str] | None, models: list[str]) -> dict[str, int]:
    steps = {m: DEFAULT_STEPS.get(m, FALLBACK_STEPS) for m in models}
    for item in items or []:
        if "=" in item:
            name, _, n = item.partition("=")
            steps[name] = int(n)
        else:
            steps = {m: int(item) for m in models}
    bad = {m: n for m, n in steps.items() if n <= 0}
    if bad:
        raise SystemExit(f"--steps must be positive: {bad}")
    return steps


def machine_info(device: torch.device) -> dict:
    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
        "pez": pez.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the widest vector kernels torch uses
        "fast_bf16": fast_bf16(device),  # whether pez's projection searches a bf16 shortlist first
        "device": str(device),
        "loadavg_start": loadavg(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def print_table(rows: list[dict]) -> None:
    head = f"{'model':<10} {'method':<24} {'R':>3} {'steps':>5} {'run s':>8} {'s/step':>9} "
    head += f"{'prompt-steps/s':>15} {'speed-up':>9} {'other-cores':>12}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['model']:<10} {r['method']:<24} {r['restarts']:>3} {r['steps']:>5} {r['run_s']:>8.2f} "
            f"{r['s_per_step']:>9.4f} {r['prompt_steps_per_s']:>15.3f} {r['speedup_per_prompt']:>8.2f}x "
            f"{_fmt(r['other_cores']):>12}"
        )
    print("speed-up: prompt-steps/s over the batched reference's at the same R, over pez's vocabulary mask")
    print("other-cores: mean number of CPU cores other processes used while timing (contention; ideally ~0)")


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


# -- main ----------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["ViT-B-32", "ViT-H-14"], help="open_clip model names")
    p.add_argument(
        "--steps",
        nargs="+",
        default=None,
        help=f"timed steps: N for every model, or NAME=N pairs (default {DEFAULT_STEPS}, else {FALLBACK_STEPS})",
    )
    p.add_argument("--restarts", nargs="+", type=int, default=[1, 8, 32], help="pez restarts R to time")
    p.add_argument(
        "--whole-vocab-models",
        nargs="*",
        default=["ViT-B-32"],
        help="models whose whole-vocabulary reference is timed at every R (the others: at R = 1 only)",
    )
    p.add_argument(
        "--rounds", type=int, default=4, help="CPU: the masked reference and pez alternate in this many chunks"
    )
    p.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps before each timing")
    p.add_argument("--prompt-len", type=int, default=16, help="prompt length in tokens")
    p.add_argument("--text", default=TARGET_TEXT, help="the target text")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--out", default=str(HERE / "results_speed.json"), help="JSON file to write")
    args = p.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but CUDA is not available")
    steps = parse_steps(args.steps, args.models)
    out: dict = {
        "benchmark": "pez vs naive reference PEZ loop: steps per second",
        "command": " ".join([Path(sys.executable).name, *sys.argv]) if argv is None else f"main({argv!r})",
        "machine": machine_info(device),
        "settings": {
            "prompt_len": args.prompt_len,
            "warmup": args.warmup,
            "restarts": args.restarts,
            "target_text": args.text,
            "pez_precision": "bf16 autocast" if device.type == "cuda" else "fp32",
            "reference_precision": "fp32",
            "reference": "the official optimize_prompt_loop's step: R prompts batched (prompt_bs), 77 positions, "
            "search matrix normalised every step, semantic_search, a no-grad forward every step to track the best, "
            "every prompt decoded; over pez's vocabulary mask, and over the whole vocabulary beside it",
        },
        "models": {},
        "ratios": [],
    }
    defaults = pez.PEZConfig()
    default_vocab = pez.VocabOptions(defaults.ascii_only, defaults.whole_words, defaults.blocklist)
    rows: list[dict] = []
    for name in args.models:
        n = steps[name]
        print(
            f"== {name}: prompt_len {args.prompt_len}, {n} timed steps (+{args.warmup} warm-up), {device}", flush=True
        )
        t0 = time.perf_counter()
        model, tokenizer = load_text_model(name, device)
        load_s = time.perf_counter() - t0
        obj = pez.CLIPObjective(model, tokenizer, texts=[args.text], model_name=f"{name}/random")
        targets = obj.targets  # the same normalised text features for both loops
        entry: dict = {
            "steps": n,
            "warmup": args.warmup,
            "prompt_len": args.prompt_len,
            "pez_allowed_tokens": int(obj.vocab.allowed_mask(default_vocab).sum()),
            "text_params": sum(t.numel() for t in model.parameters()),
            "vocab_size": model.token_embedding.weight.shape[0],
            "width": model.token_embedding.weight.shape[1],
            "context_length": model.positional_embedding.shape[0],
            "load_s": load_s,
        }
        entry["check"] = check_reference(model, tokenizer, obj, device)
        print(f"   check: {entry['check']}", flush=True)

        allowed = obj.vocab.allowed_mask(default_vocab).nonzero().squeeze(1).to(device)
        entry["reference"], entry["reference_whole_vocab"], entry["pez"] = {}, {}, {}
        for r in args.restarts:
            k = steps_at(n, r)
            if device.type == "cuda":  # pez's first steps include the graph capture: time it over all n steps
                ref = time_reference(model, tokenizer, targets, args.prompt_len, k, args.warmup, device, r, allowed)
                res = time_pez(obj, args.prompt_len, n, args.warmup, r, device)
                rounds = None
            else:
                ref, res, rounds = time_interleaved(
                    model, tokenizer, obj, args.prompt_len, k, args.warmup, device, r, allowed, args.rounds
                )
                res["round_speedups"] = rounds
            entry["reference"][str(r)], entry["pez"][str(r)] = ref, res
            print(f"   reference R={r} ({k} steps): {ref['s_per_step']:.4f} s/step", flush=True)
            print(f"   pez R={r}: {res['s_per_step']:.4f} s/step" + (f", per round {rounds}" if rounds else ""))
            rows.append({"model": name, "method": "reference", "restarts": r, **_rate(ref, ref)})
            if r == 1 or name in args.whole_vocab_models:
                whole = time_reference(model, tokenizer, targets, args.prompt_len, k, args.warmup, device, r)
                entry["reference_whole_vocab"][str(r)] = whole
                print(f"   reference, whole vocabulary, R={r}: {whole['s_per_step']:.4f} s/step", flush=True)
                rows.append({"model": name, "method": "reference (whole vocab)", "restarts": r, **_rate(whole, ref)})
            rows.append({"model": name, "method": "pez", "restarts": r, **_rate(res, ref)})
        out["models"][name] = entry
        del obj, model
        gc.collect()
    out["ratios"] = rows
    out["machine"]["loadavg_end"] = loadavg()
    print()
    print_table(rows)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


def _rate(mine: dict, ref: dict) -> dict:
    return {
        "steps": mine["steps_run"],
        "run_s": mine["run_s"],
        "s_per_step": mine["s_per_step"],
        "steps_per_s": mine["steps_per_s"],
        "prompt_steps_per_s": mine["prompt_steps_per_s"],
        "speedup_per_prompt": mine["prompt_steps_per_s"] / ref["prompt_steps_per_s"],
        "other_cores": mine.get("other_cores", ref.get("other_cores")),
    }


if __name__ == "__main__":
    raise SystemExit(main())
