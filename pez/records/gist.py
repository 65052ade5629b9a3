"""The results of the gist jobs (:mod:`pez.gist`): a training run, outputs scored after a gist, and the
comparison of compression methods on the same instructions."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pez.records.base import Record

METHODS = ("instruction", "hard-prompt", "gist", "prompt-tuning", "none")
PORTABLE = {"instruction": None, "hard-prompt": True, "gist": False, "prompt-tuning": False, "none": None}


@dataclass
class GistTrainReport(Record):
    """A gist training run: where the model went, its held-out losses before and after, the curve."""

    model: str
    out: str
    k: int
    steps: int
    lora: bool
    lr: float
    batch_size: int
    data: str
    n_train: int
    n_held_out: int
    n_unseen: int
    held_out_before: float
    held_out_after: float
    unseen_before: float | None = None
    unseen_after: float | None = None
    steps_done: int = 0
    seconds_per_step: float = math.nan
    elapsed_s: float = 0.0
    trainable_params: int = 0
    history: list = field(default_factory=list)

    def summary(self) -> str:
        unseen = ""
        if self.unseen_before is not None:
            unseen = f"; unseen instructions {self.unseen_before:.3f} -> {self.unseen_after:.3f}"
        return (
            f"gist K={self.k} ({'LoRA' if self.lora else 'full'}), {self.steps_done} steps, "
            f"{self.seconds_per_step:.2f} s/step: held-out loss {self.held_out_before:.3f} -> "
            f"{self.held_out_after:.3f}{unseen}; saved to {self.out}"
        )


@dataclass
class GistEval(Record):
    """Outputs scored after a gist: mean NLL per output token, and label accuracy where rows have choices."""

    model: str
    instruction: str
    k: int
    n: int
    nll: float
    accuracy: float | None = None
    n_labelled: int = 0
    predictions: list = field(default_factory=list)

    def summary(self) -> str:
        acc = f", accuracy {self.accuracy:.3f} on {self.n_labelled}" if self.accuracy is not None else ""
        return f"gist K={self.k} on {self.n} inputs: output NLL {self.nll:.3f} per token{acc}"


@dataclass
class CompressionComparison(Record):
    """One row per instruction and method (``rows``), the set-up, and :meth:`table` (means per split and method)."""

    model: str
    gist_model: str
    k: int
    rows: list = field(default_factory=list)
    config: dict = field(default_factory=dict)
    elapsed_s: float = 0.0

    def table(self) -> list[dict]:
        """Means over instructions per (split, method), in :data:`METHODS` order."""
        out = []
        for split in ("seen", "unseen"):
            for method in METHODS:
                rows = [r for r in self.rows if r["split"] == split and r["method"] == method]
                if not rows:
                    continue

                def mean(key, rows=rows):
                    vals = [r[key] for r in rows if r[key] is not None]
                    return sum(vals) / len(vals) if vals else None

                out.append(
                    {
                        "split": split,
                        "method": method,
                        "k": self.k,
                        "instructions": len(rows),
                        "kl": mean("kl"),
                        "kl_output": mean("kl_output"),
                        "accuracy": mean("accuracy"),
                        "tokens_saved": mean("tokens_saved"),
                        "flops_per_input": mean("flops_per_input"),
                        "prefix_flops": mean("prefix_flops"),
                        "wall_ms_per_input": 1000 * mean("wall_s_per_input"),
                        "portable": PORTABLE[method],
                    }
                )
        return out

    def summary(self) -> str:
        """The table as Markdown."""
        lines = [
            f"K = {self.k}; base {self.model}; gist model {self.gist_model}",
            "| split | method | KL | KL output | accuracy | tokens saved | MFLOPs/input | ms/input | portable |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in self.table():
            acc = f"{r['accuracy']:.3f}" if r["accuracy"] is not None else "-"
            port = {None: "-", True: "yes", False: "no"}[r["portable"]]
            lines.append(
                f"| {r['split']} | {r['method']} | {r['kl']:.3f} | {_num(r['kl_output'])} | {acc} | "
                f"{r['tokens_saved']:.1f} | "
                f"{r['flops_per_input'] / 1e6:.1f} | {r['wall_ms_per_input']:.1f} | {port} |"
            )
        return "\n".join(lines)


def _num(x) -> str:
    return f"{x:.3f}" if x is not None else "-"
