"""Results of the language-model jobs: :class:`EvalResult` (a text prompt scored on labelled examples),
:class:`TaskReport` (``discover`` / ``compress``), :class:`ApiSearchReport` (``discover`` on an API model),
:class:`ApiPlan` (what an API search would spend) and :class:`ContinuousResult` (a PEFT continuous prompt)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pez.records.base import Record


@dataclass
class EvalResult(Record):
    """Accuracy of ``prompt`` on ``n`` examples, with one prediction per example.

    Each prediction is a dict: ``index``, ``text``, ``label`` (gold), ``predicted`` (label name or None when no
    answer could be parsed), ``correct``, and ``scores`` (per-label log-probabilities, when the model gives them)
    or ``answer`` (the raw reply, when scored by parsing). ``unreadable`` counts the predictions that are None
    (answers that name no label, or log-probabilities that are not numbers): they count as wrong.
    """

    prompt: str
    model: str
    accuracy: float
    n: int
    predictions: list[dict] = field(default_factory=list)
    task: dict = field(default_factory=dict)
    data: str = ""
    scoring: str = "logprob"  # "logprob" (label log-probability) or "parse" (constrained answer parsing)
    complete: bool = True  # False when the run stopped early (API failures, Ctrl-C): accuracy is over n so far
    unreadable: int = 0  # answers that could not be read as a label (predicted None), among the n
    extras: dict = field(default_factory=dict)


def accuracy_of(predictions: list[dict]) -> float:
    """Fraction of predictions that are correct (nan for none)."""
    return sum(p["correct"] for p in predictions) / len(predictions) if predictions else float("nan")


@dataclass
class TaskReport(Record):
    """What :func:`pez.discover` and :func:`pez.compress` return, saved as JSON.

    ``accuracy`` is the held-out (test) accuracy of ``prompt`` as text; ``baseline_accuracy`` that of the empty
    template; ``baseline_prompts`` maps each hand-written prompt to its accuracy. For compression, ``kl_before``
    (no prompt) and ``kl_after`` (the hard prompt) are measured on held-out inputs, and ``instruction_accuracy``
    is the long instruction's accuracy when data is given.
    """

    prompt: str
    ids: list[int]
    model: str
    data: str
    method: str
    config: dict
    history: list[dict]
    score: float
    score_name: str
    accuracy: float | None = None
    baseline_accuracy: float | None = None
    baseline_prompts: dict[str, float] = field(default_factory=dict)
    dev_accuracy: float | None = None
    n_test: int = 0
    perplexity: float | None = None
    kl_before: float | None = None
    kl_after: float | None = None
    instruction_accuracy: float | None = None
    splits: dict = field(default_factory=dict)
    search: dict = field(default_factory=dict)
    predictions: list[dict] = field(default_factory=list)
    interrupted: bool = False
    readability: dict = field(default_factory=dict)  # of ``prompt``, as PromptResult.readability

    def summary(self) -> str:
        """A few lines for a terminal."""
        lines = [f"prompt: {self.prompt}"]
        if self.accuracy is not None:
            lines.append(f"held-out accuracy ({self.n_test} examples): {self.accuracy:.4f}")
            lines.append(f"empty template: {self.baseline_accuracy:.4f}")
        if self.instruction_accuracy is not None:
            lines.append(f"long instruction: {self.instruction_accuracy:.4f}")
        for p, acc in self.baseline_prompts.items():
            lines.append(f"baseline prompt {p!r}: {acc:.4f}")
        if self.kl_after is not None:
            lines.append(
                f"KL to the instruction, held-out inputs: {self.kl_before:.4f} without a prompt -> "
                f"{self.kl_after:.4f} with it"
            )
        if self.perplexity is not None:
            lines.append(f"prompt perplexity under {self.model} (the model it was found on): {self.perplexity:.1f}")
        r = self.readability
        if r.get("perplexity") is not None:
            note = " (the judge also wrote it)" if r.get("judge_is_prior") else ""
            words = f"{r['dictionary_share']:.0%} dictionary words, {r['repeated_share']:.0%} repeated"
            lines.append(f"readability: perplexity {r['perplexity']:,.0f} under the judge {r['judge']}{note}; {words}")
        return "\n".join(lines)


@dataclass
class ApiSearchReport(TaskReport):
    """A :class:`TaskReport` whose ``prompt`` was chosen on an API model and whose accuracies are the API's:
    ``accuracy`` (the chosen prompt), ``transfer_accuracy`` (``local_prompt``, what the local search alone
    returns), ``baseline_accuracy`` (empty template), ``baseline_prompts``; all on the same held-out examples.
    ``local_accuracy`` is ``local_prompt``'s held-out accuracy on the local model; ``dev_accuracy`` the chosen
    prompt's on the API's dev examples. ``api`` holds the scoring method and why, the server check, the
    requests and tokens spent, the budget, each selection round, and ``gains``: the chosen prompt's held-out gain
    over each other prompt ("" the empty template) with its paired standard error (the same examples)."""

    target: str = ""
    local_prompt: str = ""
    transfer_accuracy: float | None = None
    local_accuracy: float | None = None
    api: dict = field(default_factory=dict)

    def summary(self) -> str:
        a = self.api
        if a.get("chosen_on_api", True):
            lines = [f"prompt (chosen on {self.target}): {self.prompt}", f"local search alone: {self.local_prompt}"]
        else:
            why = "budget" if "budget" in str(a.get("stopped_by") or "budget") else a.get("stopped_by")
            lines = [f"the API chose nothing ({why}): the prompt is the local search's: {self.prompt}"]
        if self.accuracy is not None:
            lines.append(f"held-out accuracy on {self.target} ({self.n_test} examples):")
            gains = a.get("gains", {})

            def vs(prompt: str) -> str:  # the chosen prompt's gain over this one, paired standard error
                g = gains.get(prompt)
                return f"  (chosen {g['gain']:+.4f} +- {g['se']:.4f})" if g and prompt != self.prompt else ""

            lines.append(f"  chosen on the API        {self.accuracy:.4f}")
            lines.append(f"  local search (transfer)  {self.transfer_accuracy:.4f}{vs(self.local_prompt)}")
            lines.append(f"  empty template           {self.baseline_accuracy:.4f}{vs('')}")
            for p, acc in self.baseline_prompts.items():
                lines.append(f"  baseline {p!r}: {acc:.4f}{vs(p)}")
        elif a.get("held_out_error"):
            lines.append(f"no held-out accuracy on {self.target}: {a['held_out_error']}")
        if self.local_accuracy is not None:
            lines.append(f"local search's prompt on {self.model}: {self.local_accuracy:.4f}")
        lines.append(f"scoring: {a.get('scoring')} ({a.get('scoring_reason')})")
        r, t = a.get("requests", {}), a.get("tokens", {})
        lines.append(
            f"API requests: {r.get('search', 0)} of {a.get('budget')} for the check and the choice, "
            f"{r.get('held_out', 0)} held-out; tokens {t.get('search', 0)} + {t.get('held_out', 0)}; "
            f"{a.get('cached', 0)} answers from the cache"
        )
        if a.get("stopped_by"):
            lines.append(f"the choice stopped early: {a['stopped_by']}")
        u = a.get("unreadable") or {}
        if u.get("search") or u.get("held_out"):
            lines.append(f"answers that could not be read as a label (counted wrong): {u.get('search', 0)} while "
                         f"choosing, {u.get('held_out', 0)} held-out")  # fmt: skip
        return "\n".join(lines)


@dataclass
class ApiPlan(Record):
    """What an API search would spend (``--dry-run``): requests and tokens, at most, per phase."""

    target: str
    base_url: str
    scoring: str
    requests: dict
    tokens: dict
    n_dev: int
    n_test: int
    prompts: list[str]
    note: str = ""

    def summary(self) -> str:
        r, t = self.requests, self.tokens
        rows = [
            ("server check", "check", ""),
            ("choosing the prompt", "selection", f" (at most; {self.n_dev} dev examples)"),
            ("held-out evaluation", "held_out", f" ({self.n_test} examples x {len(self.prompts)} prompts)"),
        ]
        lines = [f"dry run: nothing sent to {self.base_url} ({self.target}); scoring {self.scoring}"]
        for label, k, what in rows:
            lines.append(f"  {label:<22}{r[k]:>7} requests  ~{t[k]:>9} tokens{what}")
        lines.append(f"  {'total':<22}{sum(r.values()):>7} requests  ~{sum(t.values()):>9} tokens")
        return "\n".join(lines + ([f"  {self.note}"] if self.note else []))


@dataclass
class ContinuousResult(Record):
    """Held-out accuracy of a PEFT-trained continuous prompt (not pasteable text)."""

    method: str
    model: str
    accuracy: float
    dev_accuracy: float
    n_test: int
    num_virtual_tokens: int
    trainable_params: int
    steps_done: int
    seconds_per_step: float
    elapsed_s: float
    lr: float
    seed: int
    history: list[dict] = field(default_factory=list)  # {"step", "time_s", "loss"}
    note: str = "continuous upper bound: vectors, not text; cannot be used with another model or an API"
