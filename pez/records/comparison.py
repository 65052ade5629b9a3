"""The result of a comparison of methods (:func:`pez.compare`): runs, a summary table, a plot, files
(docs/algorithms.md#budgets).

:meth:`ComparisonResult.save` writes ``results.md`` and ``results.csv`` (one row per method: honest score mean,
std, min and max over seeds, internal score, seconds per step, passes used, steps run), ``results.json``
(everything, with each run's results and best-score history) and ``plot.png`` (best score against wall-clock
seconds, one line per seed).
"""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from pez.errors import PezError
from pez.records.base import Record
from pez.records.prompt import PromptResult


@dataclass
class Run:
    """One method with one seed: its results (one per target group) and their mean honest score."""

    method: str
    seed: int
    results: list[PromptResult]
    accuracy: float | None = None  # LM tasks: held-out accuracy of the prompt's text

    @property
    def score(self) -> float:
        return statistics.fmean(r.score for r in self.results)

    @property
    def internal_score(self) -> float:
        return statistics.fmean(r.internal_score for r in self.results)

    @property
    def timings(self) -> dict:
        return self.results[0].timings  # one run, so the same for every group

    @property
    def interrupted(self) -> bool:
        return any(r.interrupted for r in self.results)

    def score_at(self, seconds: float | None) -> float:
        """The best honest score (mean over groups) reached within ``seconds`` of loop time, read from the
        score-against-time history, so a last step that overran the budget does not count (None: the final
        score). A run whose first honest score came after the budget is credited with that first score."""
        if seconds is None:
            return self.score
        xs, ys = self.curve()
        within = [y for x, y in zip(xs[:-1], ys[:-1]) if x <= seconds]  # the last point only closes the curve
        return within[-1] if within else (ys[0] if ys else self.score)

    def text_at(self, seconds: float | None) -> str:
        """The best prompt's text within ``seconds`` (first group), as :meth:`score_at` reads it."""
        history = self.results[0].best_history
        within = [e["text"] for e in history if seconds is None or e["time_s"] <= seconds]
        return within[-1] if within else (history[0]["text"] if history else self.results[0].text)

    def curve(self) -> tuple[list[float], list[float]]:
        """Best honest score so far (mean over groups) against loop seconds, up to the end of the run."""
        events = sorted((e["time_s"], g, e["score"]) for g, r in enumerate(self.results) for e in r.best_history)
        best: dict[int, float] = {}
        xs, ys = [], []
        for t, g, s in events:
            best[g] = s
            if len(best) == len(self.results):
                xs.append(t)
                ys.append(statistics.fmean(best.values()))
        if xs:
            xs.append(max(xs[-1], self.timings["elapsed_s"]))
            ys.append(ys[-1])
        return xs, ys

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "seed": self.seed,
            "score": self.score,
            "internal_score": self.internal_score,
            "accuracy": self.accuracy,
            "results": [r.to_dict() for r in self.results],
        }


@dataclass
class ComparisonResult(Record):
    """All runs of a comparison, with the budget and config they shared."""

    runs: list[Run]
    budget: dict
    config: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)
    # LM tasks: PEFT continuous prompts trained on the same data and budget (ContinuousResult dicts)
    continuous: list[dict] = field(default_factory=list)
    stopped_early: bool = False  # a Ctrl-C between runs: the runs here are the finished ones

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(r.method for r in self.runs))

    @property
    def interrupted(self) -> bool:
        return self.stopped_early or any(r.interrupted for r in self.runs)

    def summary(self) -> list[dict]:
        """One row per method: honest score over seeds (mean, std, min, max), internal score, costs."""
        rows = []
        for m in self.methods:
            runs = [r for r in self.runs if r.method == m]
            scores = [r.score_at(self.budget.get("seconds")) for r in runs]  # at equal wall-clock
            row = {
                "method": m,
                "seeds": len(runs),
                "score_mean": statistics.fmean(scores),
                "score_std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                "score_min": min(scores),
                "score_max": max(scores),
                "internal_mean": statistics.fmean(r.internal_score for r in runs),
                "final_score_mean": statistics.fmean(r.score for r in runs),  # after the last step, overrun included
                "loop_s": statistics.fmean(r.timings["loop_s"] for r in runs),
            }
            for k in ("s_per_step", "forward", "backward", "passes", "steps_run"):
                row[k] = statistics.fmean(r.timings[k] for r in runs)
            cont = [x.extras["continuous_score"] for r in runs for x in r.results if "continuous_score" in x.extras]
            row["continuous_mean"] = statistics.fmean(cont) if cont else None
            accs = [r.accuracy for r in runs if r.accuracy is not None]
            row["accuracy_mean"] = statistics.fmean(accs) if accs else None
            ppl = [x.readability.get("perplexity") for r in runs for x in r.results]
            ppl = [p for p in ppl if p]
            row["ppl_median"] = statistics.median(ppl) if ppl else None
            row["ppl_geomean"] = math.exp(statistics.fmean(math.log(p) for p in ppl)) if ppl else None
            shares = [x.readability["dictionary_share"] for r in runs for x in r.results if x.readability]
            row["dictionary_share"] = statistics.fmean(shares) if shares else None
            rows.append(row)
        return rows

    def winner(self) -> str:
        """The method with the best mean honest score."""
        return max(self.summary(), key=lambda row: row["score_mean"])["method"]

    def to_markdown(self) -> str:
        """The summary as a markdown table (the winner in bold; ``continuous`` is the soft prompt's own score)."""
        rows, best = self.summary(), self.winner()
        head = "| method | score (mean ± std) | min | max | internal | s/step | forward | backward | passes | steps |"
        cont = any(r["continuous_mean"] is not None for r in rows)
        acc = any(r["accuracy_mean"] is not None for r in rows)
        ppl = any(r["ppl_median"] is not None for r in rows)
        head += " continuous |" * cont + " held-out accuracy |" * acc
        head += " perplexity (median) | dictionary words |" * ppl
        lines = [head, "|---" + "|---:" * (9 + cont + acc + 2 * ppl) + "|"]
        for r in rows:
            name = f"**{r['method']}**" if r["method"] == best else r["method"]
            cells = [
                name,
                f"{r['score_mean']:.4f} ± {r['score_std']:.4f}",
                f"{r['score_min']:.4f}",
                f"{r['score_max']:.4f}",
                f"{r['internal_mean']:.4f}",
                f"{r['s_per_step']:.4f}",
                f"{r['forward']:.0f}",
                f"{r['backward']:.0f}",
                f"{r['passes']:.0f}",
                f"{r['steps_run']:.0f}",
            ]
            if cont:
                cells.append("" if r["continuous_mean"] is None else f"{r['continuous_mean']:.4f}")
            if acc:
                cells.append("" if r["accuracy_mean"] is None else f"{r['accuracy_mean']:.4f}")
            if ppl:
                cells.append("" if r["ppl_median"] is None else f"{r['ppl_median']:,.0f}")
                cells.append("" if r["dictionary_share"] is None else f"{r['dictionary_share']:.0%}")
            lines.append("| " + " | ".join(cells) + " |")
        budget = ", ".join(f"{k} {v}" for k, v in self.budget.items() if v is not None)
        text = f"Budget per run: {budget}.\n\n" + "\n".join(lines) + "\n"
        if self.continuous:
            text += (
                "\nContinuous upper bounds (PEFT; vectors, not text: they cannot be pasted into another model):\n\n"
                "| method | held-out accuracy (mean ± std) | dev accuracy | steps | s/step | trainable params |\n"
                "|---|---:|---:|---:|---:|---:|\n"
            )
            for m in dict.fromkeys(c["method"] for c in self.continuous):
                cs = [c for c in self.continuous if c["method"] == m]
                a = [c["accuracy"] for c in cs]
                sd = statistics.stdev(a) if len(a) > 1 else 0.0
                text += (
                    f"| {m} | {statistics.fmean(a):.4f} ± {sd:.4f} | "
                    f"{statistics.fmean(c['dev_accuracy'] for c in cs):.4f} | "
                    f"{statistics.fmean(c['steps_done'] for c in cs):.0f} | "
                    f"{statistics.fmean(c['seconds_per_step'] for c in cs):.4f} | {cs[0]['trainable_params']} |\n"
                )
        return text

    def to_dict(self) -> dict:
        return {
            "budget": self.budget,
            "config": self.config,
            "overrides": self.overrides,
            "summary": self.summary(),
            "winner": self.winner(),
            "runs": [r.to_dict() for r in self.runs],
            "continuous": self.continuous,
        }

    def save(self, out_dir: str | os.PathLike) -> dict[str, Path]:
        """Write results.md, results.csv, results.json and plot.png into ``out_dir``; return their paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {k: out / f"results.{k}" for k in ("md", "csv", "json")} | {"png": out / "plot.png"}
        paths["frontier"] = out / "frontier.png"
        paths["md"].write_text(self.to_markdown(), encoding="utf-8")
        rows = self.summary()
        with open(paths["csv"], "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        paths["json"].write_text(json.dumps(self.to_dict(), separators=(",", ":")), encoding="utf-8")  # compact: big
        self.plot(paths["png"])
        if not self.plot_frontier(paths["frontier"]):
            del paths["frontier"]
        return paths

    def plot_frontier(self, path: str | os.PathLike) -> bool:
        """Honest score against the judge's perplexity (log axis), one point per run (mean over its targets), so the
        score-readability frontier can be seen; False (nothing written) when no run has a perplexity."""
        from matplotlib.figure import Figure

        points = []
        for run in self.runs:
            ppl = [x.readability.get("perplexity") for x in run.results]
            if ppl and all(ppl):
                points.append((run.method, math.exp(statistics.fmean(math.log(p) for p in ppl)), run.score))
        if not points:
            return False
        fig = Figure(figsize=(7, 4.5), layout="constrained")
        ax = fig.subplots()
        for k, m in enumerate(self.methods):
            mine = [(x, y) for name, x, y in points if name == m]
            if mine:
                ax.scatter(*zip(*mine), color=f"C{k}", label=m, s=30)
        judges = {x.readability.get("judge") for r in self.runs for x in r.results} - {None}
        ax.set_xscale("log")
        ax.set_xlabel(f"perplexity of the prompt under {', '.join(sorted(judges))} (log; lower reads better)")
        score_name = self.runs[0].results[0].score_name if self.runs else "score"
        ax.set_ylabel(f"{score_name} (honest)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.savefig(path, dpi=120)
        return True

    def plot(self, path: str | os.PathLike) -> None:
        """Best honest score against wall-clock seconds: one line per seed, one colour per method."""
        try:
            from matplotlib.figure import Figure  # no pyplot: no global backend or state
        except ImportError:
            raise PezError("the plot needs matplotlib: pip install matplotlib") from None

        fig = Figure(figsize=(7, 4.5), layout="constrained")
        ax = fig.subplots()
        for k, m in enumerate(self.methods):
            for j, run in enumerate(r for r in self.runs if r.method == m):
                xs, ys = run.curve()
                ax.step(xs, ys, where="post", color=f"C{k}", alpha=0.8, label=m if j == 0 else None, marker="o",
                        markersize=3)  # fmt: skip
        ax.set_xlabel("wall-clock seconds (optimisation loop)")
        score_name = self.runs[0].results[0].score_name if self.runs else "score"
        ax.set_ylabel(f"best {score_name} (honest, mean over targets)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.savefig(path, dpi=120)

    @classmethod
    def load(cls, out_dir: str | os.PathLike) -> ComparisonResult:
        """Read a comparison back from the ``results.json`` of :meth:`save`."""
        data = json.loads((Path(out_dir) / "results.json").read_text(encoding="utf-8"))
        runs = [
            Run(r["method"], r["seed"], [PromptResult.from_dict(x) for x in r["results"]], r.get("accuracy"))
            for r in data["runs"]
        ]
        return cls(runs, data["budget"], data["config"], data["overrides"], data.get("continuous", []))
