"""Compare prompt optimisers on the same objective under the same budget (DESIGN.md, "Baselines").

:func:`compare` runs every method with every seed on one objective (the same targets, groups and model), with the
same common config (prompt length, restarts, vocabulary options, ...) and the same budget, and returns a
:class:`ComparisonResult`; :meth:`ComparisonResult.save` writes ``results.md`` and ``results.csv`` (one row per
method: honest score mean, std, min and max over seeds, internal score, seconds per step, passes used, steps run),
``results.json`` (everything, with each run's results and best-score history) and ``plot.png`` (best score against
wall-clock seconds, one line per seed).

Budgets: ``budget_steps`` (each method's own steps, which cost very different amounts), ``budget_seconds`` of loop
time (checked after every step), or ``budget_passes``: forward-equivalent passes, forward + 2 x backward sequences
through the model as counted by the objective (candidate scoring and honest re-scoring included). Without a step
budget a run's ``steps`` is effectively unlimited, so step-based schedules (FluentPrompt's temperature) follow the
share of the seconds or passes budget used instead.

Command line (``pez compare``; the objective options such as ``--model`` and ``--text`` come from :mod:`pez.cli`)::

    pez compare --model minilm --text "A man is riding a horse on the beach." --methods pez,gcg,random \\
        --seeds 3 --budget-seconds 60 --prompt-len 8 --set restarts=4 --set gcg.search_width=64 --out cmp/

``--set FIELD=VALUE`` sets a config field for every compared method that has it; ``--set METHOD.FIELD=VALUE`` for
one method. Values are read by the field's type: numbers, ``true``/``false`` for flags, ``none`` for optional
numbers (``all`` too, for ``batch_size``), commas between list items (``blocklist``).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import statistics
import sys
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pez.errors import PezError
from pez.objectives.base import Objective
from pez.result import PromptResult

UNLIMITED_STEPS = 10**12  # "steps" of a run that only a seconds or passes budget ends
_SET_BY_COMPARE = {"steps": "the budget", "seed": "the seeds"}


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
class ComparisonResult:
    """All runs of a comparison, with the budget and config they shared."""

    runs: list[Run]
    budget: dict
    config: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)
    # LM tasks: PEFT continuous prompts trained on the same data and budget (pez.peft_tuning.ContinuousResult dicts)
    continuous: list[dict] = field(default_factory=list)

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(r.method for r in self.runs))

    @property
    def interrupted(self) -> bool:
        return any(r.interrupted for r in self.runs)

    def summary(self) -> list[dict]:
        """One row per method: honest score over seeds (mean, std, min, max), internal score, costs."""
        rows = []
        for m in self.methods:
            runs = [r for r in self.runs if r.method == m]
            scores = [r.score for r in runs]
            row = {
                "method": m,
                "seeds": len(runs),
                "score_mean": statistics.fmean(scores),
                "score_std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                "score_min": min(scores),
                "score_max": max(scores),
                "internal_mean": statistics.fmean(r.internal_score for r in runs),
            }
            for k in ("s_per_step", "forward", "backward", "passes", "steps_run"):
                row[k] = statistics.fmean(r.timings[k] for r in runs)
            cont = [x.extras["continuous_score"] for r in runs for x in r.results if "continuous_score" in x.extras]
            row["continuous_mean"] = statistics.fmean(cont) if cont else None
            accs = [r.accuracy for r in runs if r.accuracy is not None]
            row["accuracy_mean"] = statistics.fmean(accs) if accs else None
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
        head += " continuous |" * cont + " held-out accuracy |" * acc
        lines = [head, "|---" + "|---:" * (9 + cont + acc) + "|"]
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
        paths["md"].write_text(self.to_markdown(), encoding="utf-8")
        rows = self.summary()
        with open(paths["csv"], "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        paths["json"].write_text(json.dumps(self.to_dict(), separators=(",", ":")), encoding="utf-8")  # compact: big
        self.plot(paths["png"])
        return paths

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
                ax.step(xs, ys, where="post", color=f"C{k}", alpha=0.8, label=m if j == 0 else None)
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
        names = {f.name for f in dataclasses.fields(PromptResult)}

        def result(d: dict) -> PromptResult:
            return PromptResult(**{k: v for k, v in d.items() if k in names})

        runs = [Run(r["method"], r["seed"], [result(x) for x in r["results"]], r.get("accuracy")) for r in data["runs"]]
        return cls(runs, data["budget"], data["config"], data["overrides"], data.get("continuous", []))


def compare(
    objective: Objective | Callable[[], Objective],
    methods: Sequence[str] = ("pez", "hotflip", "autoprompt", "gcg", "fluent", "soft", "random"),
    seeds: int | Sequence[int] = 3,
    budget_steps: int | None = None,
    budget_seconds: float | None = None,
    budget_passes: int | None = None,
    config: dict | None = None,
    overrides: dict[str, dict] | None = None,
    callback: Callable[[Run], None] | None = None,
) -> ComparisonResult:
    """Run every method with every seed on one objective under the same budget.

    Args:
        objective: the task, or a function returning it (called once per run, e.g. for fresh pass counts).
        methods: method names (see :data:`pez.optim.METHODS`).
        seeds: how many seeds (0, 1, ...) or which.
        budget_steps, budget_seconds, budget_passes: the budget of every run (at least one); see the module doc.
        config: common config fields, applied to every method that has them, e.g. ``{"prompt_len": 8}``.
        overrides: per-method fields, e.g. ``{"gcg": {"search_width": 64}}``.
        callback: called with each finished :class:`Run`.

    Returns:
        the runs, in order of ``methods`` then seeds. A Ctrl-C ends the run under way (kept, marked interrupted)
        and the comparison with it.
    """
    from pez.optim import METHODS

    if budget_steps is None and budget_seconds is None and budget_passes is None:
        raise PezError("give a budget: steps, seconds or forward-equivalent passes")
    if budget_steps is not None and budget_steps <= 0:
        raise PezError(f"budget-steps must be positive, got {budget_steps}")
    unknown = [m for m in [*methods, *(overrides or {})] if m not in METHODS]
    if unknown or not methods:
        raise PezError(f"unknown or no methods {unknown}: choose from {', '.join(METHODS)}")
    config, overrides = dict(config or {}), {m: dict(v) for m, v in (overrides or {}).items()}
    for key in [*config, *(k for v in overrides.values() for k in v)]:
        if key in _SET_BY_COMPARE:
            raise PezError(f"{key} is set by {_SET_BY_COMPARE[key]} of the comparison, not by the config")
    for key in config:
        if not any(key in _field_names(METHODS[m].config_class) for m in methods):
            raise PezError(f"no compared method has a config field {key!r}")
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seeds:
        raise PezError("give at least one seed")
    budget = {"steps": budget_steps, "seconds": budget_seconds, "passes": budget_passes}
    steps = budget_steps if budget_steps is not None else UNLIMITED_STEPS
    factory = callable(objective) and not hasattr(objective, "eval_loss")
    runs: list[Run] = []
    for m in methods:
        cls = METHODS[m]
        names = _field_names(cls.config_class)
        given = {k: v for k, v in config.items() if k in names} | overrides.get(m, {})
        for seed in seeds:
            try:
                cfg = cls.config_class(**given, steps=steps, seed=seed)
            except TypeError as e:
                raise PezError(f"{cls.config_class.__name__}: {e}") from None
            obj = objective() if factory else objective
            results = cls(obj, cfg).run(budget_seconds=budget_seconds, budget_passes=budget_passes)
            runs.append(Run(m, seed, results))
            if callback is not None:
                callback(runs[-1])
            if runs[-1].interrupted:
                return ComparisonResult(runs, budget, config, overrides)
    return ComparisonResult(runs, budget, config, overrides)


def _field_names(config_class) -> set[str]:
    return {f.name for f in dataclasses.fields(config_class)}


# -- command line ------------------------------------------------------------------------------------------------
def _method_list(text: str) -> list[str]:
    from pez.optim import METHODS

    names = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in METHODS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown methods {bad}: choose from {', '.join(METHODS)}")
    return names


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``pez compare`` (the objective's options, e.g. ``--model`` and ``--text``, are not here)."""
    from pez.optim import METHODS

    parser.add_argument(
        "--methods", type=_method_list, default=list(METHODS), help=f"comma list (default {','.join(METHODS)})"
    )
    parser.add_argument("--seeds", type=int, default=3, metavar="N", help="seeds 0..N-1 per method (default 3)")
    parser.add_argument("--budget-seconds", type=float, metavar="S", help="loop seconds per run")
    parser.add_argument("--budget-steps", type=int, metavar="N", help="steps per run")
    parser.add_argument("--budget-passes", type=int, metavar="N", help="forward + 2 x backward sequences per run")
    parser.add_argument("--prompt-len", type=int, metavar="L", help="tokens in every prompt (default: the config's)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[METHOD.]FIELD=VALUE",
        help="a config field for all methods, or for one (repeatable), e.g. gcg.search_width=64",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="write results.md/.csv/.json and plot.png here")
    parser.add_argument("--quiet", action="store_true", help="no line per finished run")


def parse_settings(items: Sequence[str], methods: Sequence[str]) -> tuple[dict, dict[str, dict]]:
    """``--set`` items -> (common config, per-method overrides), each value read by its field's type."""
    from pez.optim import METHODS

    config: dict = {}
    overrides: dict[str, dict] = {}
    for item in items:
        key, sep, text = item.partition("=")
        method, _, name = key.strip().rpartition(".")
        name = name.replace("-", "_")
        if not sep or not name:
            raise PezError(f"--set expects [METHOD.]FIELD=VALUE, got {item!r}")
        if method and method not in METHODS:
            raise PezError(f"--set {item}: unknown method {method!r}")
        classes = [METHODS[m].config_class for m in ([method] if method else methods)]
        kind = next((typing.get_type_hints(c)[name] for c in classes if name in _field_names(c)), None)
        if kind is None:
            raise PezError(f"--set {item}: no field {name!r} in {'method ' + method if method else 'these methods'}")
        value = _parse_value(kind, text.strip(), item)
        (overrides.setdefault(method, {}) if method else config)[name] = value
    return config, overrides


def _parse_value(kind, text: str, item: str):
    args = typing.get_args(kind)
    if type(None) in args:
        if text.lower() in ("none", "all"):
            return None
        kind = next(t for t in args if t is not type(None))
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise PezError(f"--set {item}: expected true or false")
        return text.lower() in ("true", "1", "yes")
    if typing.get_origin(kind) is tuple:
        return tuple(w.strip() for w in text.split(",") if w.strip())
    try:
        return kind(text)
    except ValueError:
        raise PezError(f"--set {item}: expected a {kind.__name__}") from None


def run_compare_cli(args: argparse.Namespace, objective: Objective | Callable[..., ComparisonResult]) -> int:
    """``pez compare``: run, save to ``--out``, print the markdown table; 0, or 130 when interrupted.

    ``objective`` is the objective, or a runner taking :func:`compare`'s keyword arguments (LM tasks).
    """
    config, overrides = parse_settings(args.set, args.methods)
    if args.prompt_len is not None:
        config["prompt_len"] = args.prompt_len

    def report(run: Run) -> None:
        t = run.timings
        print(
            f"{run.method} seed {run.seed}: {run.score:.4f} in {t['steps_run']} steps, {t['loop_s']:.1f} s, "
            f"{t['passes']} passes",
            file=sys.stderr,
        )

    runner = objective if callable(objective) and not hasattr(objective, "eval_loss") else None
    if runner is not None:  # an LM task: the runner builds the objective and scores held-out accuracy
        result = runner(
            methods=args.methods,
            seeds=args.seeds,
            budget_steps=args.budget_steps,
            budget_seconds=args.budget_seconds,
            budget_passes=args.budget_passes,
            config=config,
            overrides=overrides,
            callback=None if args.quiet else report,
        )
    else:
        result = compare(
            objective,
            args.methods,
            args.seeds,
            budget_steps=args.budget_steps,
            budget_seconds=args.budget_seconds,
            budget_passes=args.budget_passes,
            config=config,
            overrides=overrides,
            callback=None if args.quiet else report,
        )
    result.save(args.out)
    print(result.to_markdown())
    if result.interrupted:
        print(f"interrupted: the runs so far are saved to {args.out}", file=sys.stderr)
        return 130
    return 0
