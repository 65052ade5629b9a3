"""Instruction compression on CPU with smollm2: the full instruction, ``pez compress`` (K real tokens), gist tokens
(K gist positions), PEFT prompt tuning distilled to the instruction (K virtual tokens) and no instruction.

For each K, a gist model is fine-tuned from smollm2 on the embedded default instruction set (pez.gist.data), then
:func:`pez.gist.compare_compression` scores the five methods on the same held-out inputs of instructions the gist
model was trained on (seen) and of instructions it never saw (unseen): KL to the full instruction's next-token
distributions, label accuracy on the classification instructions, context tokens saved, FLOPs and milliseconds per
input, portability.

    .venv/bin/python benchmarks/bench_compression.py            # the RESULTS.md run (CPU, 2 cores)

Writes benchmarks/results_compression.json and benchmarks/compression_curve.png (the training curves).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import torch

from pez.gist import compare_compression, default_gist_data, gist_train
from pez.models.lm import load_lm

HERE = os.path.dirname(os.path.abspath(__file__))


def markdown(data: dict) -> str:
    """The RESULTS.md table: one row per K, split and method (means over the split's instructions)."""
    rows = [
        "| K | split | method | KL | KL output | accuracy | tokens saved | MFLOPs/input | ms/input | portable |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in data["table"]:
        acc = f"{r['accuracy']:.2f}" if r["accuracy"] is not None else "-"
        kl_out = f"{r['kl_output']:.3f}" if r["kl_output"] is not None else "-"
        port = {None: "-", True: "yes", False: "no"}[r["portable"]]
        rows.append(
            f"| {r['k']} | {r['split']} | {r['method']} | {r['kl']:.3f} | {kl_out} | {acc} | {r['tokens_saved']:.1f} | "
            f"{r['flops_per_input'] / 1e6:.0f} | {r['wall_ms_per_input']:.1f} | {port} |"
        )
    rows.append("")
    rows.append("| K | steps | s/step | held-out loss before -> after | unseen loss before -> after |")
    rows.append("|---:|---:|---:|---|---|")
    for k, t in data["training"].items():
        rows.append(
            f"| {k} | {t['steps_done']} | {t['seconds_per_step']:.2f} | {t['held_out_before']:.3f} -> "
            f"{t['held_out_after']:.3f} | {t['unseen_before']:.3f} -> {t['unseen_after']:.3f} |"
        )
    return "\n".join(rows)


def plot(data: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for k, t in data["training"].items():
        steps = [h["step"] for h in t["history"] if "loss" in h]
        (line,) = axes[0].plot(steps, [h["loss"] for h in t["history"] if "loss" in h], lw=0.8, label=f"K={k}")
        held = [h for h in t["history"] if "held_out_loss" in h]
        x, color = [h["step"] for h in held], line.get_color()
        axes[1].plot(x, [h["held_out_loss"] for h in held], "o-", color=color, label=f"K={k} seen")
        axes[1].plot(x, [h.get("unseen_loss") for h in held], "s--", color=color, label=f"K={k} unseen")
    axes[0].set(title="training loss (output tokens)", xlabel="step", ylabel="NLL per token")
    axes[1].set(title="held-out loss: new inputs (seen) and new instructions", xlabel="step", ylabel="NLL per token")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 2, 5, 10])
    ap.add_argument("--steps", type=int, default=40, help="gist training steps per K")
    ap.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    ap.add_argument("--lr", type=float, help="default: 1e-3 with LoRA, 5e-5 full")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--instructions", type=int, default=2, help="instructions per split (seen, unseen)")
    ap.add_argument("--inputs", type=int, default=6)
    ap.add_argument("--train-inputs", type=int, default=12)
    ap.add_argument("--hard-steps", type=int, default=8)
    ap.add_argument("--tuning-steps", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=os.path.join(HERE, "results_compression.json"))
    ap.add_argument("--plot", default=os.path.join(HERE, "compression_curve.png"))
    args = ap.parse_args()
    t_start, load_start = time.perf_counter(), os.getloadavg()
    lm = load_lm("smollm2", args.device)
    data = default_gist_data(lm)
    training, comparisons, table = {}, {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for k in args.ks:
            folder = os.path.join(tmp, f"gist-k{k}")
            report = gist_train(lm, data, k=k, steps=args.steps, out=folder, lora=not args.full, lr=args.lr,
                                batch_size=args.batch_size, eval_every=max(1, args.steps // 4),
                                checkpoint_every=10**6, max_held_out=32, device=args.device)  # fmt: skip
            print(report.summary(), flush=True)
            result = compare_compression(
                folder,
                base_model=lm,
                instructions=args.instructions,
                inputs=args.inputs,
                train_inputs=args.train_inputs,
                hard_steps=args.hard_steps,
                tuning_steps=args.tuning_steps,
                batch_size=8,
                device=args.device,
            )
            print(result.summary(), flush=True)
            training[k] = report.to_dict()
            comparisons[k] = result.to_dict()
            table += result.table()
    out = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "device": args.device,
            "loadavg_start": round(load_start[0], 2),
            "loadavg_end": round(os.getloadavg()[0], 2),
        },
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "plot")},
        "data": data.source,
        "elapsed_s": time.perf_counter() - t_start,
        "training": training,
        "comparisons": comparisons,
        "table": table,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
    plot(out, args.plot)
    print(markdown(json.loads(json.dumps(out))))
    print(f"{out['elapsed_s']:.0f} s; wrote {args.out} and {args.plot}")


if __name__ == "__main__":
    main()
