"""The objective protocol, and the embedding-similarity objective shared by CLIP and sentence encoders
(docs/objectives.md).

An objective turns prompt embeddings into a loss (lower is better) and knows how to score a prompt given as
token ids, so that the score shown to the user is the score of the text they get. The score is ``-loss``.

Prompts are grouped: prompt r belongs to group ``group[r]``, and each group has its own targets. Restarts are R
prompts in one group; inverting a folder puts one image in each group.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F

from pez.errors import PezError
from pez.text.vocab import Vocabulary

log = logging.getLogger(__name__)


@runtime_checkable
class Objective(Protocol):
    """What every optimiser needs from a task. Lower loss is better; score = -loss."""

    vocab: Vocabulary
    n_groups: int
    score_name: str
    # sequences run through the model so far, {"forward": n, "backward": n}: one prompt through an encoder is
    # one sequence; for LM tasks, one prompt with one example is one. The comparison harness budgets by it.
    counts: dict[str, int]

    def loss(
        self,
        embeds: torch.Tensor,
        group: torch.Tensor,
        batch_size: int | None,
        generator: torch.Generator,
        ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Loss for the gradient and, when the same forward gives it, the loss on all evaluation targets.

        Args:
            embeds: prompt token embeddings, shape (R, L, D): the hard rows E[ids], or a soft prompt.
            group: the group of each prompt, shape (R,).
            batch_size: targets (or examples) per prompt for this step; None means all.
            generator: draws the batch.
            ids: the hard ids of the prompts, shape (R, L): the tokens ``embeds`` are (or project to, for a soft
                prompt). Objectives that score the prompt's own tokens (fluency) need them; others ignore them.

        Returns:
            (loss, eval_loss), each of shape (R,); eval_loss is None when the step saw only a sample.
        """
        ...

    def eval_loss(self, embeds: torch.Tensor, group: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        """Loss on all evaluation targets, shape (R,) (``ids`` as in :meth:`loss`)."""
        ...

    def eval_loss_ids(self, ids: Sequence[Sequence[int]], group: torch.Tensor) -> torch.Tensor:
        """Loss on all evaluation targets of prompts given as token ids of any lengths, shape (N,)."""
        ...

    def target_scores(self, ids: Sequence[int], group: int = 0) -> list[dict]:
        """Per-target scores of one prompt's text ids, for the result (an empty list where there are none)."""
        ...

    def describe(self) -> dict:
        """A JSON-able description of the task (model, targets), stored in results and checkpoints."""
        ...


_ONE_TOKEN: dict = {}  # the latest one-token features: key, the token embeddings they came from, features (A, F)


class EmbeddingObjective(ABC):
    """loss = -sum_j w_j cos(f(prompt), t_j) / sum_j |w_j| over the targets of the prompt's group.

    Subclasses provide the encoder: :meth:`encode_embeds` for a batch of prompt embeddings and
    :meth:`encode_ids` for prompts given as token ids.

    Args:
        vocab: the model's vocabulary.
        targets: target features, shape (T, F) (normalised here).
        weights: per-group target weights, shape (G, T); negative weights push away; zero means "not mine".
        info: description of the targets for results.
    """

    score_name = "cosine"

    def __init__(self, vocab: Vocabulary, targets: torch.Tensor, weights: torch.Tensor, info: dict):
        if targets.shape[0] == 0:
            raise PezError("no targets given: pass at least one image or --text")
        if not (weights > 0).any(dim=1).all():
            raise PezError("every prompt needs at least one positive target, not only negative ones")
        self.vocab = vocab
        self.targets = F.normalize(targets.detach().float(), dim=-1)  # (T, F)
        self.info = info
        self.counts = {"forward": 0, "backward": 0}
        self.set_groups(weights)

    def set_groups(self, weights: torch.Tensor) -> None:
        """Give each group its own targets: weights of shape (G, T), zero where a target is not the group's.

        E.g. ``torch.eye(T)`` optimises one prompt per target (batch inversion of a folder).
        """
        if weights.ndim != 2 or weights.shape[1] != self.targets.shape[0]:
            raise ValueError(f"weights must have shape (groups, {self.targets.shape[0]}), got {tuple(weights.shape)}")
        self.weights = weights.to(self.targets)  # (G, T)
        self.n_groups = weights.shape[0]
        # known on the host, so that the step never asks the device whether to sample
        self.max_targets = int((weights != 0).sum(1).max())

    # -- to be provided by the encoder ------------------------------------------------------------------
    @abstractmethod
    def encode_embeds(self, embeds: torch.Tensor) -> torch.Tensor:
        """Features of prompts given as embeddings (R, L, D) -> (R, F)."""

    @abstractmethod
    def encode_ids(self, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        """Features of prompts given as token ids of any lengths -> (N, F)."""

    # -- the objective ----------------------------------------------------------------------------------
    def similarities(self, feats: torch.Tensor) -> torch.Tensor:
        """Cosine of each prompt feature with each target, shape (R, T)."""
        return F.normalize(feats.float(), dim=-1) @ self.targets.T

    def _weighted(self, sims: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return -(sims * w).sum(-1) / w.abs().sum(-1)

    def _count(self, n: int) -> None:
        self.counts["forward"] += n
        if torch.is_grad_enabled():
            self.counts["backward"] += n

    def loss(self, embeds, group, batch_size, generator, ids=None):
        self._count(embeds.shape[0])
        sims = self.similarities(self.encode_embeds(embeds))  # (R, T)
        w = self.weights[group]  # (R, T)
        full = self._weighted(sims, w)
        if batch_size is None or self.max_targets <= batch_size:
            return full, full.detach()
        # each prompt draws its own batch_size targets among those of its group
        u = torch.rand(w.shape, generator=generator, device=w.device).masked_fill(w == 0, 2.0)
        picked = torch.zeros_like(w, dtype=torch.bool).scatter_(1, u.topk(batch_size, largest=False).indices, True)
        return self._weighted(sims, w * picked), full.detach()

    @torch.no_grad()
    def eval_loss(self, embeds, group, ids=None):
        self._count(embeds.shape[0])
        return self._weighted(self.similarities(self.encode_embeds(embeds)), self.weights[group])

    @torch.no_grad()
    def eval_loss_ids(self, ids, group):
        self._count(len(ids))
        return self._weighted(self.similarities(self.encode_ids(ids)), self.weights[group])

    @torch.no_grad()
    def one_token_losses(self, ids: torch.Tensor, chunk: int) -> torch.Tensor:
        """The loss of each one-token prompt ``ids`` (A,) for every group, shape (G, A), encoded ``chunk`` at a time.

        The features of one-token prompts do not depend on the targets: the process keeps the latest set, so the
        next objective on the same model and tokens (the next image of a folder, the next target of a benchmark)
        scores them without encoding them again. The forwards are counted when they run."""
        emb = self.vocab.embeddings  # kept with the features: its address cannot be reused while they are kept
        key = (type(self), emb.data_ptr(), tuple(emb.shape), tuple(ids.tolist()))
        if _ONE_TOKEN.get("key") != key:
            one = [[t] for t in ids.tolist()]
            feats = [self.encode_ids(one[i : i + chunk]).float() for i in range(0, len(one), chunk)]
            self._count(len(one))
            _ONE_TOKEN.update(key=key, embeddings=emb, feats=torch.cat(feats))
        sims = self.similarities(_ONE_TOKEN["feats"])  # (A, T)
        return -(self.weights @ sims.T) / self.weights.abs().sum(-1, keepdim=True)

    @torch.no_grad()
    def target_scores(self, ids: Sequence[int], group: int = 0) -> list[dict]:
        """Per-target cosine of one prompt: [{"target": ..., "weight": w, "cosine": c}, ...] for its group."""
        sims = self.similarities(self.encode_ids([ids]))[0].tolist()
        out = []
        for j, (name, w) in enumerate(zip(self.info["targets"], self.weights[group].tolist())):
            if w != 0:
                out.append({"target": name, "weight": w, "cosine": sims[j]})
        return out

    def describe(self) -> dict:
        return dict(self.info)


def check_negative_weight(weight: float) -> None:
    """A negative target's weight is a positive, finite number (its sign is applied here, not by the user)."""
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not (math.isfinite(weight) and weight > 0):
        raise PezError(
            f"--negative-weight must be a positive number (how strongly to move away), got {weight!r}: "
            "leave out the negative targets instead of giving 0"
        )


def check_init_fits(objective, text: str | None, prompt_len: int) -> None:
    """The init text's tokens (as the objective reads it where the prompt goes) fit ``prompt_len``."""
    n = len(objective.vocab.encode(text)) if text else 0
    if n > prompt_len:
        raise PezError(f"--init-text is {n} tokens under this model, more than --prompt-len {prompt_len}: raise "
                       f"--prompt-len or shorten the text")  # fmt: skip


def target_weights(n_pos: int, n_neg: int, negative_weight: float) -> torch.Tensor:
    """One group's weights, shape (1, n_pos + n_neg): +1 for each positive, -negative_weight for each negative."""
    check_negative_weight(negative_weight)
    return torch.tensor([[1.0] * n_pos + [-negative_weight] * n_neg])


def warn_if_cut(lengths: Sequence[int], kept: int, context: int) -> None:
    """One warning when target texts (their token counts ``lengths``) are longer than the ``kept`` tokens the
    encoder reads (``context`` with its start and end tokens): the encoder sees only their beginning, so the
    prompt is searched for that part alone."""
    cut = [n for n in lengths if n > kept]
    if cut:
        given = ", ".join(str(n) for n in cut)
        what = "a target text is" if len(cut) == 1 else f"{len(cut)} target texts are"
        log.warning(
            "%s longer than the encoder reads: %d tokens kept of %s given (its limit is %d with the start and end "
            "tokens); the rest is ignored",
            what,
            kept,
            given,
            context,
        )
