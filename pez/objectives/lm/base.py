"""What the LM objectives share: sampling examples, evaluation in chunks, the fluency term, pass counts
(docs/objectives.md#lm-objectives)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch

from pez.errors import PezError
from pez.objectives.lm.path import LMPath
from pez.text.templates import Template
from pez.text.tokenizers import HFTokenizer
from pez.text.vocab import Vocabulary


class LMObjective(ABC):
    """What the LM objectives share: sampling examples, evaluation in chunks, the fluency term, pass counts.

    Subclasses define the task loss of prompts (R, L, D) on examples (indices into ``self.train`` or
    ``self.dev``) in :meth:`task_loss`. ``loss`` samples ``batch_size`` training examples per step (the same
    for all prompts); ``eval_loss`` scores on all dev examples, which is how the best prompt is chosen.
    """

    n_groups = 1
    score_name = "score"

    def __init__(self, model, tokenizer, template: Template, fluency: float, max_rows: int, model_name: str | None):
        if fluency < 0:
            raise PezError(f"fluency must be >= 0, got {fluency}")
        self.model, self.template, self.fluency, self.max_rows = model, template, fluency, max_rows
        self.model_name = model_name or getattr(model.config, "_name_or_path", type(model).__name__)
        tok = HFTokenizer(tokenizer)
        before_ids, _ = tok.context(template.before())
        self.path = LMPath(model, tokenizer, before_ids, tok)
        limit = self.path.max_positions - self.path.n_prefix - 1
        # the prompt's ids are those of its text inside the filled template (docs/evaluation.md#honest-scores)
        self.vocab = Vocabulary(tok, self.path.E, limit, before=template.before())
        self.counts = {"forward": 0, "backward": 0}

    # -- to be provided by each task ----------------------------------------------------------------------
    @abstractmethod
    def task_loss(self, embeds: torch.Tensor, split: str, index: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Task loss of prompts (R, L, D) on examples ``index`` of ``split``: (loss (R,), hidden of one run)."""

    @abstractmethod
    def _n(self, split: str) -> int:
        """Number of examples in a split."""

    @abstractmethod
    def _info(self) -> dict:
        """Task-specific part of :meth:`describe`."""

    # -- the objective protocol ------------------------------------------------------------------------------
    def _with_fluency(self, embeds: torch.Tensor, split: str, index: Sequence[int], ids) -> torch.Tensor:
        loss, (hidden, rows_per_prompt) = self.task_loss(embeds, split, index)
        if self.fluency:
            if ids is None:
                raise ValueError("the fluency term scores the prompt's own tokens: pass their ids")
            loss = loss + self.fluency * self.path.prompt_nll(hidden, ids, rows_per_prompt)
        return loss

    def loss(self, embeds, group, batch_size, generator, ids=None):
        n = self._n("train")
        if batch_size is None or batch_size >= n:
            index = list(range(n))
        else:
            index = torch.randperm(n, generator=generator, device=generator.device)[:batch_size].tolist()
        return self._with_fluency(embeds, "train", index, ids), None

    def _length(self, split: str, i: int) -> int:
        """Tokens in example ``i``'s longest row: evaluation chunks examples of like lengths together, so that a
        chunk pads little (0 everywhere: the given order)."""
        return 0

    def screen_index(self, rows: int) -> list[int]:
        """The dev examples a screening pass scores (:class:`pez.optim.readable.Readable`'s ``screen``): the first
        ``rows`` (all when there are fewer)."""
        return list(range(min(rows, self._n("dev"))))

    @torch.no_grad()
    def eval_loss(self, embeds, group, ids=None, index: Sequence[int] | None = None):
        """Mean loss on the dev examples (``index``: only these, a screening pass), in chunks of like lengths
        with at most ``max_rows`` rows per forward."""
        order = sorted(range(self._n("dev")) if index is None else index, key=lambda i: self._length("dev", i))
        per = max(1, self.max_rows // max(1, embeds.shape[0]))  # examples per chunk, so a forward has <= max_rows
        total = torch.zeros(embeds.shape[0], device=embeds.device)
        for start in range(0, len(order), per):
            part = order[start : start + per]
            total += self._with_fluency(embeds, "dev", part, ids).float() * len(part)
        return total / len(order)

    @torch.no_grad()
    def eval_loss_ids(self, ids, group):
        """Score prompts of any lengths (grouped by length, since one batch shares a prompt length)."""
        out = torch.empty(len(ids), device=self.path.device)
        by_len: dict[int, list[int]] = {}
        for k, x in enumerate(ids):
            by_len.setdefault(len(x), []).append(k)
        for _, ks in sorted(by_len.items()):
            t = torch.tensor([list(ids[k]) for k in ks], device=self.path.device, dtype=torch.long)
            out[ks] = self.eval_loss(self.path.E[t], group[: len(ks)], t).float()
        return out

    def target_scores(self, ids: Sequence[int], group: int = 0) -> list[dict]:
        """LM tasks have no per-target scores (one group of examples)."""
        return []

    def describe(self) -> dict:
        return {
            "kind": "lm",
            "model": self.model_name,
            "template": self.template.text,
            "fluency": self.fluency,
            **self._info(),
        }

    def _count(self, rows: int) -> None:
        self.counts["forward"] += rows
        if torch.is_grad_enabled():
            self.counts["backward"] += rows
