"""Prompt compression with hard tokens (the gist-token idea; docs/objectives.md#compression): a short prompt
whose next-token distributions match those under a long instruction, by KL over inputs."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pez.errors import PezError
from pez.objectives.lm.base import LMObjective
from pez.text.templates import Template


class CompressionObjective(LMObjective):
    """Match the model's behaviour under a long instruction with a short hard prompt.

    loss = KL(p(. | instruction, input) || p(. | prompt, input)), averaged over every position of each input (the
    next-token distribution at each of its tokens), over sampled inputs.

    Args:
        model, tokenizer: a causal LM and its tokenizer.
        instruction: the long instruction to compress.
        inputs: input texts (e.g. the task's data, or samples from the model: :func:`sample_inputs`).
        template: where prompt and input go (default ``"{prompt}\\n{text}"``).
        dev_inputs: inputs that choose the best prompt (default: ``inputs``).
    """

    score_name = "-KL"

    def __init__(
        self,
        model,
        tokenizer,
        instruction: str,
        inputs: Sequence[str],
        template: Template | None = None,
        dev_inputs: Sequence[str] | None = None,
        fluency: float = 0.0,
        max_rows: int = 64,
        model_name: str | None = None,
    ):
        super().__init__(model, tokenizer, template or Template("{prompt}\n{text}"), fluency, max_rows, model_name)
        if not instruction.strip():
            raise PezError("the instruction to compress is empty")
        if not len(inputs):
            raise PezError("no inputs to compress the instruction over")
        self.instruction = instruction
        tok = self.path.tok
        self.instruction_ids = self.vocab.encode(instruction)  # as it tokenises where the prompt goes
        dev_inputs = inputs if dev_inputs is None or not len(dev_inputs) else dev_inputs
        self._data = {
            "train": [tok.encode(self.template.after(t)) for t in inputs],
            "dev": [tok.encode(self.template.after(t)) for t in dev_inputs],
        }
        if any(not x for x in self._data["train"] + self._data["dev"]):
            raise PezError("an input is empty")
        self._teacher_cache: dict[tuple[str, int], torch.Tensor] = {}

    def _n(self, split):
        return len(self._data[split])

    def _length(self, split, i):
        return len(self._data[split][i])

    def _logp(self, prompt: torch.Tensor, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """Next-token log-probs at every position of every row: (R, N, M, V), the valid mask (N, M), the run."""
        hidden = self.path.run(prompt, rows)
        r, length = prompt.shape[:2]
        n, m = len(rows), max(len(x) for x in rows)
        logp = self.path.log_softmax(self.path.logits(hidden[:, length:]))  # (R*N, M, V)
        valid = torch.tensor([[1] * len(x) + [0] * (m - len(x)) for x in rows], device=logp.device, dtype=torch.bool)
        return logp.view(r, n, m, -1), valid, (hidden, n)

    @torch.no_grad()
    def _teacher(self, split: str, index: Sequence[int]) -> torch.Tensor:
        """The instruction's distributions (N, M, V) for these examples; the dev set's are kept."""
        rows = [self._data[split][i] for i in index]
        key = (split, tuple(index))
        if key in self._teacher_cache:
            return self._teacher_cache[key]
        ids = torch.tensor([self.instruction_ids], device=self.path.device)
        self.counts["forward"] += len(rows)
        logp = self._logp(self.path.E[ids], rows)[0][0]
        if split == "dev":
            self._teacher_cache[key] = logp
        return logp

    def task_loss(self, embeds, split, index):
        teacher = self._teacher(split, index)  # (N, M, V)
        rows = [self._data[split][i] for i in index]
        self._count(embeds.shape[0] * len(rows))
        student, valid, run = self._logp(embeds, rows)  # (R, N, M, V)
        kl = (teacher.exp() * (teacher - student)).sum(-1)  # (R, N, M)
        kl = (kl * valid).sum(-1) / valid.sum(-1)  # (R, N)
        return kl.mean(1), run

    def _info(self):
        return {
            "task": "compression",
            "instruction": self.instruction,
            "train": self._n("train"),
            "dev": self._n("dev"),
        }
