"""Label scoring: the summed log-probability of each answer's tokens after a text (docs/objectives.md#labels).

One scorer serves the classification objective, local evaluation of a text prompt and the PEFT baselines:

- :func:`answer_rows` lays out one example: the rows to run and the (row, position, token, answer) spots whose
  log-probabilities add up to each answer's score.
- :func:`gather_spots` merges many examples into one batch, asking for each (row, position) only once.
- :func:`sum_spots` adds the log-probabilities at the spots into per-answer scores.
- :class:`LabelScorer` does all three through an :class:`~pez.objectives.lm.path.LMPath`, with a prompt given as
  embeddings in front of the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from pez.objectives.lm.path import LMPath

Spot = tuple[int, int, int, int]  # (row, position in row, token, answer index)


def answer_rows(after: list[int], answers: list[list[int]]) -> tuple[list[list[int]], list[Spot]]:
    """Rows and scoring spots for one example whose answer is one of several token sequences.

    When every answer is one token, one row serves them all (their logits share a position); otherwise one row
    per answer, teacher-forced.

    Args:
        after: the example's tokens up to the answer.
        answers: each answer's tokens.
    """
    if all(len(c) == 1 for c in answers):
        return [after], [(0, len(after) - 1, c[0], k) for k, c in enumerate(answers)]
    rows, spots = [], []
    for k, c in enumerate(answers):
        rows.append(after + c[:-1])
        spots += [(len(rows) - 1, len(after) - 1 + j, t, k) for j, t in enumerate(c)]
    return rows, spots


@dataclass
class SpotBatch:
    """Many examples' rows in one batch.

    ``keys`` are the distinct (row, position) pairs whose next-token log-probabilities are needed; spot q reads
    key ``where[q]`` at token ``token[q]`` and adds into slot ``slot[q]`` (example * n_answers + answer).
    """

    rows: list[list[int]]
    keys: list[tuple[int, int]]
    where: list[int]
    token: list[int]
    slot: list[int]
    n_examples: int
    n_answers: int


def gather_spots(examples: Sequence[tuple[list[list[int]], list[Spot]]], n_answers: int) -> SpotBatch:
    """One batch from per-example (rows, spots) as :func:`answer_rows` gives them."""
    rows: list[list[int]] = []
    where, token, slot = [], [], []
    positions: dict[tuple[int, int], int] = {}
    for e, (ex_rows, spots) in enumerate(examples):
        base = len(rows)
        rows += ex_rows
        for row, pos, tok, k in spots:
            key = (base + row, pos)
            positions.setdefault(key, len(positions))
            where.append(positions[key])
            token.append(tok)
            slot.append(e * n_answers + k)
    return SpotBatch(rows, list(positions), where, token, slot, len(examples), n_answers)


def sum_spots(logp: torch.Tensor, batch: SpotBatch) -> torch.Tensor:
    """Per-answer scores from log-probabilities at the batch's keys.

    Args:
        logp: log-probabilities, shape (R, len(keys), V).

    Returns:
        scores, shape (R, n_examples, n_answers).
    """
    dev = logp.device
    where, token = torch.tensor(batch.where, device=dev), torch.tensor(batch.token, device=dev)
    vals = logp[:, where, token]  # (R, Q)
    out = torch.zeros(logp.shape[0], batch.n_examples * batch.n_answers, device=dev, dtype=vals.dtype)
    out.index_add_(1, torch.tensor(batch.slot, device=dev), vals)
    return out.view(logp.shape[0], batch.n_examples, batch.n_answers)


class LabelScorer:
    """Answer scores of examples after a prompt given as embeddings, computing each position once."""

    def __init__(self, path: LMPath):
        self.path = path

    def __call__(self, prompt: torch.Tensor, examples: Sequence[tuple[list[list[int]], list[Spot]]], n_answers: int):
        """Scores of shape (R, len(examples), n_answers), and (hidden, rows per prompt) of the run.

        Args:
            prompt: (R, L, D); L may be 0 when the whole text is in the rows.
            examples: per example, (rows, spots) as from :func:`answer_rows`.
            n_answers: answers per example.
        """
        batch = gather_spots(examples, n_answers)
        r, length = prompt.shape[:2]
        hidden = self.path.run(prompt, batch.rows)  # (R*N, L+M, D)
        dev, n = hidden.device, len(batch.rows)
        row_i = torch.tensor([k[0] for k in batch.keys], device=dev)
        pos_i = torch.tensor([k[1] for k in batch.keys], device=dev) + length
        flat = (torch.arange(r, device=dev)[:, None] * n + row_i).reshape(-1)  # (R*S,)
        h = hidden[flat, pos_i.repeat(r)]  # (R*S, D)
        logp = self.path.log_softmax(self.path.logits(h)).view(r, len(batch.keys), -1)  # (R, S, V)
        return sum_spots(logp, batch), (hidden, n)
