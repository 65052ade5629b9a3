"""The result of evaluating one text prompt on labelled examples, as plain data saved to JSON."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field


@dataclass
class EvalResult:
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

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: str | os.PathLike) -> None:
        path = os.fspath(path)
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
        os.replace(tmp, path)


def accuracy_of(predictions: list[dict]) -> float:
    """Fraction of predictions that are correct (nan for none)."""
    return sum(p["correct"] for p in predictions) / len(predictions) if predictions else float("nan")
