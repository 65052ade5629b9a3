"""The result of a prompt search, as plain data that saves to and loads from JSON."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields


@dataclass
class PromptResult:
    """The best hard prompt found, with everything needed to trust and reproduce it.

    ``score`` is the score of ``text`` itself: the text is re-tokenised and scored again, so when
    re-tokenisation changes the ids (``retokenized`` is True) the score is that of ``text_ids``, not of the
    optimised ``ids`` (whose score is ``internal_score``).
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

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: str | os.PathLike) -> None:
        """Write the result as JSON (atomically: a crash never leaves half a file)."""
        path = os.fspath(path)
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PromptResult:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def __str__(self) -> str:
        note = " (re-tokenised)" if self.retokenized else ""
        return f"{self.text!r}  {self.score_name} {self.score:.4f}{note}"


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
