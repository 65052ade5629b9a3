"""Language-model objectives: task prompts for classification, target completions, and prompt compression.

A hard prompt of L tokens is inserted into a template after a fixed text (``[prefix][prompt][row]``) and run
through any transformers causal LM from embeddings (``inputs_embeds``), so the same code serves gradients (PEZ,
HotFlip, GCG, ...) and exact scoring of token ids. Only the logits that a loss needs are computed: the final
hidden states are gathered at the answer positions and only those go through the output head. The fixed prefix
(special tokens such as BOS, and the template's text before the prompt) is run once; its key/value cache is
reused by every forward. All R prompts and B examples of a step share one right-padded batch of R*B rows.

Objectives (Wen et al. 2023, section 5; DESIGN.md):

- :class:`ClassificationObjective`: cross-entropy over the verbaliser's label scores at the answer position of
  ``"{prompt} {text} It was"``; a label word of several tokens scores by the sum of its tokens' log-probabilities.
- :class:`CompletionObjective`: negative log-likelihood (per token) of target completions after prompt + context.
- :class:`CompressionObjective`: KL between the model's next-token distributions with a long instruction and with
  the short hard prompt, over sampled inputs (the gist-token idea, with real tokens).
- ``fluency``: any of them adds ``fluency * NLL`` of the prompt's own tokens under the same LM (the paper: 0.003).
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from pez.errors import PezError
from pez.tasks import Task, Template
from pez.vocab import HFTokenizer, Vocabulary


class LMPath:
    """Run ``[prefix][prompt][row]`` through a causal LM from embeddings; logits only where asked.

    Args:
        model: a transformers ``AutoModelForCausalLM`` (its ``base_model`` gives hidden states, its output
            embeddings the logits).
        tokenizer: its tokenizer.
        before: the template's fixed text before the prompt (after the tokenizer's own prefix, e.g. BOS).
    """

    def __init__(self, model, tokenizer, before: str = ""):
        self.model = model
        self.tok = HFTokenizer(tokenizer)
        self.body = model.base_model
        self.head = model.get_output_embeddings()
        if self.head is None:
            raise PezError(f"{type(model).__name__} has no output head: use an AutoModelForCausalLM")
        self.E = model.get_input_embeddings().weight  # (V, D)
        self.device = self.E.device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        config = model.config
        self.softcap = getattr(config, "final_logit_softcapping", None)
        self.logit_scale = getattr(config, "logits_scaling", None)
        self.max_positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", 4096)
        self.prefix_ids = list(self.tok.prefix_ids) + (self.tok.encode(before) if before else [])
        self._prefix_cache = None
        self.prefix_logp = None  # (V,) next-token log-probs after the prefix: scores the prompt's first token
        if self.prefix_ids:
            with torch.no_grad():
                ids = torch.tensor([self.prefix_ids], device=self.device)
                out = self.body(input_ids=ids, use_cache=True)
                self._prefix_cache = out.past_key_values
                self.prefix_logp = self.log_softmax(self.logits(out.last_hidden_state[0, -1:]))[0]

    @property
    def n_prefix(self) -> int:
        return len(self.prefix_ids)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Output logits for hidden states (..., D) -> (..., V), with the model's logit scaling if it has one."""
        z = self.head(hidden)
        if self.logit_scale:
            z = z / self.logit_scale
        if self.softcap:
            z = torch.tanh(z / self.softcap) * self.softcap
        return z

    @staticmethod
    def log_softmax(z: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(z.float(), dim=-1)

    def run(self, prompt: torch.Tensor, rows: Sequence[Sequence[int]]) -> torch.Tensor:
        """Final hidden states of every prompt followed by every row.

        Args:
            prompt: prompt embeddings, shape (R, L, D) (L may be 0).
            rows: N token-id lists of any lengths (right-padded here).

        Returns:
            hidden states, shape (R * N, L + M, D); row n of prompt r is at index ``r * N + n``; M = longest row.
        """
        r, length, _ = prompt.shape
        n, m = len(rows), max(len(x) for x in rows)
        if self.n_prefix + length + m > self.max_positions:
            raise PezError(
                f"an input is too long for this model: {self.n_prefix + length + m} > {self.max_positions} tokens"
            )
        ids = torch.tensor([list(x) + [self.pad_id] * (m - len(x)) for x in rows], device=self.device)  # (N, M)
        keep = torch.tensor([[1] * len(x) + [0] * (m - len(x)) for x in rows], device=self.device)  # (N, M)
        x = torch.cat([prompt.to(self.E.dtype).repeat_interleave(n, 0), self.E[ids].repeat(r, 1, 1)], 1)  # (RN, L+M, D)
        mask = torch.cat([keep.new_ones(n, self.n_prefix + length), keep], 1).repeat(r, 1)  # (RN, P+L+M)
        pos = torch.arange(self.n_prefix, self.n_prefix + length + m, device=self.device).expand(r * n, -1)
        cache = None
        if self._prefix_cache is not None:
            cache = copy.deepcopy(self._prefix_cache)  # a forward appends to its cache: start from a copy
            cache.batch_repeat_interleave(r * n)
        out = self.body(inputs_embeds=x, attention_mask=mask, position_ids=pos, past_key_values=cache, use_cache=False)
        return out.last_hidden_state

    def prompt_nll(self, hidden: torch.Tensor, ids: torch.Tensor, n_rows: int) -> torch.Tensor:
        """Mean negative log-likelihood of each prompt's own tokens, shape (R,).

        Args:
            hidden: from :meth:`run`, (R * n_rows, L + M, D).
            ids: the prompt's token ids, (R, L).
            n_rows: rows per prompt in that run.
        """
        r, length = ids.shape
        h = hidden[::n_rows, : length - 1]  # (R, L-1, D): position l predicts token l+1 (causal: any row will do)
        nll = -self.log_softmax(self.logits(h)).gather(-1, ids[:, 1:, None]).squeeze(-1).sum(1)  # (R,)
        count = length - 1
        if self.prefix_logp is not None:
            nll = nll - self.prefix_logp[ids[:, 0]]
            count += 1
        return nll / max(count, 1)

    def nearest_ids(self, embeds: torch.Tensor) -> torch.Tensor:
        """The vocabulary rows nearest (L2) to embeddings (R, L, D) -> ids (R, L); exact for hard prompts."""
        flat = embeds.detach().reshape(-1, embeds.shape[-1]).to(self.E.dtype)
        e2 = (self.E.detach() ** 2).sum(-1)
        best = [(e2 - 2 * part @ self.E.detach().T).argmin(-1) for part in flat.split(1024)]
        return torch.cat(best).reshape(embeds.shape[:-1])


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
        self.path = LMPath(model, tokenizer, template.before())
        limit = self.path.max_positions - self.path.n_prefix - 1
        self.vocab = Vocabulary(self.path.tok, self.path.E, limit)
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
    def _with_fluency(self, embeds: torch.Tensor, split: str, index: Sequence[int]) -> torch.Tensor:
        loss, (hidden, rows_per_prompt) = self.task_loss(embeds, split, index)
        if self.fluency:
            ids = self.path.nearest_ids(embeds)
            loss = loss + self.fluency * self.path.prompt_nll(hidden, ids, rows_per_prompt)
        return loss

    def loss(self, embeds, group, batch_size, generator):
        n = self._n("train")
        if batch_size is None or batch_size >= n:
            index = list(range(n))
        else:
            index = torch.randperm(n, generator=generator, device=generator.device)[:batch_size].tolist()
        return self._with_fluency(embeds, "train", index), None

    @torch.no_grad()
    def eval_loss(self, embeds, group):
        n = self._n("dev")
        per = max(1, self.max_rows // max(1, embeds.shape[0]))  # examples per chunk, so a forward has <= max_rows
        total = torch.zeros(embeds.shape[0], device=embeds.device)
        for start in range(0, n, per):
            index = list(range(start, min(n, start + per)))
            total += self._with_fluency(embeds, "dev", index).float() * len(index)
        return total / n

    @torch.no_grad()
    def eval_loss_ids(self, ids, group):
        """Score prompts of any lengths (grouped by length, since one batch shares a prompt length)."""
        out = torch.empty(len(ids), device=self.path.device)
        by_len: dict[int, list[int]] = {}
        for k, x in enumerate(ids):
            by_len.setdefault(len(x), []).append(k)
        for _, ks in sorted(by_len.items()):
            t = torch.tensor([list(ids[k]) for k in ks], device=self.path.device, dtype=torch.long)
            out[ks] = self.eval_loss(self.path.E[t], group[: len(ks)]).float()
        return out

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


def _row_spots(after: list[int], conts: list[list[int]]) -> tuple[list[list[int]], list[tuple[int, int, int, int]]]:
    """Rows and scoring spots for one example whose answer is one of several continuations.

    Returns (rows, spots) with spots (row, position in row, token, continuation index). When every continuation
    is one token, one row serves them all (their logits share a position); otherwise one row per continuation,
    teacher-forced.
    """
    if all(len(c) == 1 for c in conts):
        return [after], [(0, len(after) - 1, c[0], k) for k, c in enumerate(conts)]
    rows, spots = [], []
    for k, c in enumerate(conts):
        rows.append(after + c[:-1])
        spots += [(len(rows) - 1, len(after) - 1 + j, t, k) for j, t in enumerate(c)]
    return rows, spots


class _SpotScorer:
    """Sum of log-probabilities at chosen (row, position, token) spots into slots, computing each position once."""

    def __init__(self, path: LMPath):
        self.path = path

    def __call__(self, prompt: torch.Tensor, examples: list[tuple[list[list[int]], list[tuple]]], n_slots: int):
        """Scores of shape (R, len(examples), n_slots) and (hidden, rows per prompt).

        Args:
            prompt: (R, L, D).
            examples: per example, (rows, spots) as from :func:`_row_spots`.
            n_slots: continuations per example.
        """
        rows, where, token, slot = [], [], [], []
        positions: dict[tuple[int, int], int] = {}
        for e, (ex_rows, spots) in enumerate(examples):
            base = len(rows)
            rows += ex_rows
            for row, pos, tok, k in spots:
                key = (base + row, pos)
                positions.setdefault(key, len(positions))
                where.append(positions[key])
                token.append(tok)
                slot.append(e * n_slots + k)
        r, length = prompt.shape[:2]
        hidden = self.path.run(prompt, rows)  # (R*N, L+M, D)
        dev = hidden.device
        n = len(rows)
        keys = list(positions)
        row_i = torch.tensor([k[0] for k in keys], device=dev)
        pos_i = torch.tensor([k[1] for k in keys], device=dev) + length
        flat = (torch.arange(r, device=dev)[:, None] * n + row_i).reshape(-1)  # (R*S,)
        h = hidden[flat, pos_i.repeat(r)]  # (R*S, D)
        logp = self.path.log_softmax(self.path.logits(h)).view(r, len(keys), -1)  # (R, S, V)
        where_t, token_t = torch.tensor(where, device=dev), torch.tensor(token, device=dev)
        vals = logp[:, where_t, token_t]  # (R, Q)
        out = torch.zeros(r, len(examples) * n_slots, device=dev).index_add_(1, torch.tensor(slot, device=dev), vals)
        return out.view(r, len(examples), n_slots), (hidden, n)


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
        self._data = {name: self._prepare(examples) for name, examples in (("train", train), ("dev", dev))}
        self._score = _SpotScorer(self.path)

    def _prepare(self, examples: Sequence) -> dict:
        v, tok = self.task.verbalizer, self.path.tok
        labels = [v.index(e.label) for e in examples]  # fails early on a label the verbaliser does not cover
        prepared = [_row_spots(tok.encode(self.template.after(e.text)), self.conts) for e in examples]
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
        ce = -F.log_softmax(scores, -1).gather(-1, y.expand(scores.shape[0], -1)[..., None]).squeeze(-1)  # (R, B)
        return ce.mean(1), run

    @torch.no_grad()
    def accuracy(self, ids: Sequence[int], split: str = "dev") -> float:
        """Accuracy of one prompt (token ids) on a split, inserted as ids (the optimiser's view)."""
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
        self._score = _SpotScorer(self.path)

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

    def task_loss(self, embeds, split, index):
        chosen = [self._data[split][i] for i in index]
        self._count(embeds.shape[0] * len(chosen))
        logp, run = self._score(embeds, [(rows, spots) for rows, spots, _ in chosen], 1)  # (R, B, 1)
        n_tok = torch.tensor([k for _, _, k in chosen], device=logp.device, dtype=logp.dtype)
        return (-logp[..., 0] / n_tok).mean(1), run

    def _info(self):
        return {"task": "completion", "train": self._n("train"), "dev": self._n("dev")}


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
        self.instruction_ids = tok.encode(instruction)
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


@torch.no_grad()
def sample_inputs(model, tokenizer, n: int, max_new_tokens: int = 24, seed: int = 0) -> list[str]:
    """Sample ``n`` short texts from the model itself (inputs for compression when no data is given)."""
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if start is None:
        raise PezError("this tokenizer has neither a BOS nor an EOS token to sample inputs from: pass --data")
    device = model.get_input_embeddings().weight.device
    gen = torch.Generator(device=device).manual_seed(seed)
    ids = torch.full((n, 1), start, device=device)
    past = None
    out = []
    for _ in range(max_new_tokens):
        res = model(input_ids=ids[:, -1:] if past is not None else ids, past_key_values=past, use_cache=True)
        past = res.past_key_values
        probs = F.softmax(res.logits[:, -1].float(), -1)
        nxt = torch.multinomial(probs, 1, generator=gen)
        ids = torch.cat([ids, nxt], 1)
    for row in ids[:, 1:].tolist():
        text = tokenizer.decode(row, skip_special_tokens=True).strip()
        out.append(text if text else "Hello")
    return out


def perplexity(path: LMPath, ids: Sequence[int]) -> float:
    """Perplexity of a prompt's own tokens under the model (how readable it is to the LM)."""
    t = torch.tensor([list(ids)], device=path.device)
    with torch.no_grad():
        hidden = path.run(path.E[t], [[path.pad_id]])
        return math.exp(float(path.prompt_nll(hidden, t, 1)[0]))
