"""Every result pez returns, as plain data on one JSON record base (``to_dict`` / ``save`` / ``load`` written once).

- :class:`PromptResult`: one prompt search (any method, any objective).
- :class:`TaskReport`: ``discover`` / ``compress``: the prompt and its held-out scores.
- :class:`EvalResult`: one text prompt scored on labelled examples (locally or through an API).
- :class:`ContinuousResult`: a PEFT continuous prompt's held-out accuracy (an upper bound, not text).

A comparison of methods (:class:`pez.jobs.comparison.ComparisonResult`) is a folder of files built from these.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from typing import TypeVar

R = TypeVar("R", bound="Record")


class Record:
    """JSON I/O for a dataclass: written atomically, read back ignoring fields this version does not know."""

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: str | os.PathLike) -> None:
        """Write the record as JSON (atomically: a crash never leaves half a file)."""
        path = os.fspath(path)
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
        os.replace(tmp, path)

    @classmethod
    def from_dict(cls: type[R], data: dict) -> R:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def load(cls: type[R], path: str | os.PathLike) -> R:
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))


@dataclass
class PromptResult(Record):
    """The best hard prompt found, with everything needed to trust and reproduce it.

    ``score`` is the score of ``text`` itself: the text is re-tokenised and scored again, so when
    re-tokenisation changes the ids (``retokenized`` is True) the score is that of ``text_ids``, not of the
    optimised ``ids`` (whose score is ``internal_score``). See docs/evaluation.md#honest-scores.
    """

    text: str
    ids: list[int]
    score: float
    internal_score: float
    text_ids: list[int]
    retokenized: bool
    method: str
    score_name: str = "cosine"
    model: str = ""
    seed: int = 0
    config: dict = field(default_factory=dict)
    objective: dict = field(default_factory=dict)
    restarts: list[dict] = field(default_factory=list)
    target_scores: list[dict] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    best_history: list[dict] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    steps_done: int = 0
    interrupted: bool = False
    extras: dict = field(default_factory=dict)  # method-specific numbers, e.g. a soft prompt's continuous_score

    def __str__(self) -> str:
        note = " (re-tokenised)" if self.retokenized else ""
        return f"{self.text!r}  {self.score_name} {self.score:.4f}{note}"


@dataclass
class EvalResult(Record):
    """Accuracy of ``prompt`` on ``n`` examples, with one prediction per example.

    Each prediction is a dict: ``index``, ``text``, ``label`` (gold), ``predicted`` (label name or None when no
    answer could be parsed), ``correct``, and ``scores`` (per-label log-probabilities, when the model gives them)
    or ``answer`` (the raw reply, when scored by parsing).
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
            lines.append(f"prompt perplexity: {self.perplexity:.1f}")
        return "\n".join(lines)


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


def versions() -> dict:
    """Versions of the packages a result depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("pez", "torch", "open_clip_torch", "sentence-transformers", "transformers"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out
