"""Task objectives on a causal LM: few-shot classification with a verbaliser, and target completions
(Wen et al. 2023, section 5; docs/objectives.md#lm-objectives)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from pez.errors import PezError
from pez.objectives.lm.base import LMObjective
from pez.objectives.lm.labels import LabelScorer, answer_rows
from pez.text.templates import Task, Template


class ClassificationObjective(LMObjective):
    """Few-shot classification with a verbaliser: cross-entropy over label scores at the answer position.

    Args:
        model, tokenizer: a causal LM and its tokenizer.
        task: template + verbaliser.
        train: examples the gradient sees (objects with ``.text`` and ``.label``).
        dev: examples that choose the best prompt (default: ``train``).
        fluency: weight of the prompt's own NLL.
        max_rows: most sequences in one forward pass when evaluating.
        model_name: how the model is named in results.
    """

    score_name = "log p(label)"

    def __init__(
        self,
        model,
        tokenizer,
        task: Task,
        train: Sequence,
        dev: Sequence | None = None,
        fluency: float = 0.0,
        max_rows: int = 64,
        model_name: str | None = None,
    ):
        super().__init__(model, tokenizer, task.template, fluency, max_rows, model_name)
        if not len(train):
            raise PezError("no training examples: the data file has none")
        self.task = task
        dev = train if dev is None or not len(dev) else dev
        tok = self.path.tok
        self.conts = [tok.encode(task.continuation(c)) for c in range(len(task.verbalizer.labels))]
        self.examples = {"train": list(train), "dev": list(dev)}  # texts and labels (APE shows a few to its LM)
        self._data = {name: self._prepare(examples) for name, examples in self.examples.items()}
        self._score = LabelScorer(self.path)
        self._hits: torch.Tensor | None = None  # dev hits per prompt while eval_loss runs
        self._dev_accuracy: dict[tuple[int, ...], float] = {}  # prompt ids -> dev accuracy, from eval_loss's pass

    def _prepare(self, examples: Sequence) -> dict:
        v, tok = self.task.verbalizer, self.path.tok
        labels = [v.index(e.label) for e in examples]  # fails early on a label the verbaliser does not cover
        prepared = [answer_rows(tok.encode(self.template.after(e.text)), self.conts) for e in examples]
        return {"examples": prepared, "labels": torch.tensor(labels, device=self.path.device)}

    def _n(self, split):
        return len(self._data[split]["examples"])

    def label_scores(self, embeds: torch.Tensor, split: str, index: Sequence[int]):
        """Summed log-probability of each label's tokens, shape (R, len(index), C), and the run's hidden states."""
        data = self._data[split]
        chosen = [data["examples"][i] for i in index]
        self._count(embeds.shape[0] * sum(len(rows) for rows, _ in chosen))
        return self._score(embeds, chosen, len(self.conts))

    def task_loss(self, embeds, split, index):
        scores, run = self.label_scores(embeds, split, index)  # (R, B, C)
        y = self._data[split]["labels"][list(index)]  # (B,)
        if split == "dev" and self._hits is not None:
            self._hits += (scores.argmax(-1) == y).sum(-1).to(self._hits)
        ce = -F.log_softmax(scores, -1).gather(-1, y.expand(scores.shape[0], -1)[..., None]).squeeze(-1)  # (R, B)
        return ce.mean(1), run

    def _length(self, split, i):
        return max(len(row) for row in self._data[split]["examples"][i][0])

    def screen_index(self, rows: int) -> list[int]:
        """The first ``rows`` dev examples taking the labels in turn (a screen as balanced as dev allows)."""
        labels = self._data["dev"]["labels"].tolist()
        by_label = [[i for i, y in enumerate(labels) if y == c] for c in sorted(set(labels))]
        return [i for turn in itertools.zip_longest(*by_label) for i in turn if i is not None][:rows]

    @torch.no_grad()
    def eval_loss(self, embeds, group, ids=None, index=None):
        """As every LM objective's; a pass over all of dev also counts each hard prompt's dev hits, so that
        :meth:`accuracy` of a prompt just scored (APE's candidates, the readable search's) costs no second pass."""
        self._hits = torch.zeros(embeds.shape[0], device=embeds.device)
        try:
            loss = super().eval_loss(embeds, group, ids, index)
            if index is None and ids is not None and torch.equal(embeds, self.path.E[ids].to(embeds.dtype)):
                n = self._n("dev")
                for row, hits in zip(ids.tolist(), self._hits.tolist()):
                    self._dev_accuracy[tuple(row)] = hits / n
            return loss
        finally:
            self._hits = None

    @torch.no_grad()
    def accuracy(self, ids: Sequence[int], split: str = "dev") -> float:
        """Accuracy of one prompt (token ids) on a split, inserted as ids (the optimiser's view); on dev, the
        count :meth:`eval_loss` made when it scored the same ids, if it did."""
        if split == "dev" and tuple(ids) in self._dev_accuracy:
            return self._dev_accuracy[tuple(ids)]
        embeds = self.path.E[torch.tensor([list(ids)], device=self.path.device, dtype=torch.long)]
        n = self._n(split)
        hits = 0
        for start in range(0, n, self.max_rows):
            index = list(range(start, min(n, start + self.max_rows)))
            scores, _ = self.label_scores(embeds, split, index)
            hits += int((scores[0].argmax(-1) == self._data[split]["labels"][index]).sum())
        return hits / n

    def _info(self):
        v = self.task.verbalizer
        return {
            "task": "classification",
            "labels": list(v.labels),
            "words": list(v.words),
            "train": self._n("train"),
            "dev": self._n("dev"),
        }


class CompletionObjective(LMObjective):
    """Make given completions likely: mean per-token NLL of each target after prompt + context.

    Args:
        model, tokenizer: a causal LM and its tokenizer.
        examples: objects with ``.text`` (the context, may be empty) and ``.target`` (the completion).
        template: where prompt and context go (default ``"{prompt}{text}"``: the context follows the prompt).
        dev: examples that choose the best prompt (default: ``examples``).
    """

    score_name = "log p(target)/token"

    def __init__(
        self,
        model,
        tokenizer,
        examples: Sequence,
        template: Template | None = None,
        dev: Sequence | None = None,
        fluency: float = 0.0,
        max_rows: int = 64,
        model_name: str | None = None,
    ):
        super().__init__(model, tokenizer, template or Template("{prompt}{text}"), fluency, max_rows, model_name)
        if not len(examples):
            raise PezError("no completion examples given")
        dev = examples if dev is None or not len(dev) else dev
        self._data = {"train": self._prepare(examples), "dev": self._prepare(dev)}
        self._score = LabelScorer(self.path)

    def _prepare(self, examples: Sequence) -> list:
        tok, out = self.path.tok, []
        for e in examples:
            if not e.target:
                raise PezError("a completion example has no target text: give each row a target")
            context = tok.encode(self.template.after(e.text)) if e.text else []
            target = tok.encode(e.target)
            # position -1 of a row is the prompt's last token: with no context it predicts the first target token
            out.append(
                ([context + target[:-1]], [(0, len(context) - 1 + j, t, 0) for j, t in enumerate(target)], len(target))
            )
        return out

    def _n(self, split):
        return len(self._data[split])

    def _length(self, split, i):
        return len(self._data[split][i][0][0])

    def task_loss(self, embeds, split, index):
        chosen = [self._data[split][i] for i in index]
        self._count(embeds.shape[0] * len(chosen))
        logp, run = self._score(embeds, [(rows, spots) for rows, spots, _ in chosen], 1)  # (R, B, 1)
        n_tok = torch.tensor([k for _, _, k in chosen], device=logp.device, dtype=logp.dtype)
        return (-logp[..., 0] / n_tok).mean(1), run

    def _info(self):
        return {"task": "completion", "train": self._n("train"), "dev": self._n("dev")}
