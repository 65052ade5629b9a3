"""One prompt search's result: :class:`PromptResult` (any method, any objective)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pez.records.base import Record


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
    # how readable ``text`` is (pez.text.readability.Readability as a dict): perplexity under a judge LM
    # (None without one), the judge, dictionary-word and repeated-word shares, whether the judge also wrote it
    readability: dict = field(default_factory=dict)

    def __str__(self) -> str:
        note = " (re-tokenised)" if self.retokenized else ""
        ppl = self.readability.get("perplexity")
        ppl = f"  perplexity {ppl:.0f} ({self.readability.get('judge')})" if ppl is not None else ""
        return f"{self.text!r}  {self.score_name} {self.score:.4f}{note}{ppl}"
