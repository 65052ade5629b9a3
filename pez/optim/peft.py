"""Continuous upper bounds for LM tasks, trained with the PEFT library: prompt tuning (Lester et al. 2021),
prefix tuning (Li & Liang 2021) and P-tuning (Liu et al. 2021).

They learn vectors, not words: their accuracy bounds what a prompt of that length could do on this model, but
nothing of it can be pasted into another model or an API. They are trained on the same examples, the same
template and verbaliser, and the same loss (cross-entropy over label scores) as :func:`pez.discover`, and
scored on the same held-out examples. PEFT puts its virtual tokens before the whole input, which is where the
template's ``{prompt}`` slot sits when nothing precedes it.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from pez.errors import PezError
from pez.models.base import peft_model
from pez.objectives.lm.labels import answer_rows, gather_spots, sum_spots
from pez.quiet import quiet_deprecations
from pez.records import ContinuousResult
from pez.text.templates import Task

# name -> (PEFT config class name, default AdamW learning rate)
PEFT_METHODS = {
    "prompt-tuning": ("PromptTuningConfig", 3e-2),
    "prefix-tuning": ("PrefixTuningConfig", 1e-2),
    "p-tuning": ("PromptEncoderConfig", 1e-3),
}


def _peft_config(method: str, n_tokens: int, model):
    import peft

    if method not in PEFT_METHODS:
        raise PezError(f"unknown PEFT method {method!r}: choose from {', '.join(PEFT_METHODS)}")
    cls = getattr(peft, PEFT_METHODS[method][0])
    kw = {"task_type": peft.TaskType.CAUSAL_LM, "num_virtual_tokens": n_tokens}
    if method == "p-tuning":
        kw["encoder_hidden_size"] = model.config.hidden_size
    return cls(**kw)


class PeftScorer:
    """Label scores (B, C) under a PEFT model: the summed log-probability of each label's tokens
    (:mod:`pez.objectives.lm.labels`, with the PEFT model's own forward)."""

    def __init__(self, model, tokenizer, task: Task):
        self.model, self.tok, self.task = model, tokenizer, task
        enc = self._encode
        self.conts = [enc(task.continuation(c)) for c in range(len(task.verbalizer.labels))]
        self.prefix = tokenizer("a")["input_ids"][: -len(enc("a"))] if enc("a") else []
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.device = model.get_input_embeddings().weight.device

    def _encode(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def __call__(self, examples: Sequence) -> torch.Tensor:
        fill = self.task.template.fill
        batch = gather_spots(
            [answer_rows(self.prefix + self._encode(fill("", ex.text)), self.conts) for ex in examples], len(self.conts)
        )
        rows, m = batch.rows, max(len(r) for r in batch.rows)
        ids = torch.tensor([r + [self.pad] * (m - len(r)) for r in rows], device=self.device)
        mask = torch.tensor([[1] * len(r) + [0] * (m - len(r)) for r in rows], device=self.device)
        with quiet_deprecations():  # prefix tuning's own forward passes `past_key_values`
            logits = self.model(input_ids=ids, attention_mask=mask).logits[:, -m:]  # virtual positions dropped
        row, pos = (torch.tensor(x, device=self.device) for x in zip(*batch.keys))
        logp = F.log_softmax(logits[row, pos].float(), -1)  # (S, V)
        return sum_spots(logp[None], batch)[0]  # (B, C)

    @torch.no_grad()
    def accuracy(self, examples: Sequence, batch_size: int = 32) -> float:
        v = self.task.verbalizer
        hits = 0
        for s in range(0, len(examples), batch_size):
            chunk = examples[s : s + batch_size]
            pred = self(chunk).argmax(-1).tolist()
            hits += sum(p == v.index(e.label) for p, e in zip(pred, chunk))
        return hits / len(examples)


def tune_continuous(
    method: str,
    model,
    tokenizer,
    task: Task,
    train: Sequence,
    dev: Sequence,
    test: Sequence,
    num_virtual_tokens: int = 10,
    steps: int = 100,
    batch_size: int = 16,
    lr: float | None = None,
    seed: int = 0,
    budget_seconds: float | None = None,
    model_name: str = "",
) -> ContinuousResult:
    """Train a PEFT continuous prompt on a classification task and report its held-out accuracy.

    The model is copied, so the caller's model is left as it was. Training stops after ``steps`` or when
    ``budget_seconds`` (wall-clock, training only) are spent, whichever comes first.
    """
    lr = PEFT_METHODS[method][1] if lr is None and method in PEFT_METHODS else lr
    config = _peft_config(method, num_virtual_tokens, model)
    torch.manual_seed(seed)  # PEFT initialises its vectors from the global generator
    tuned = peft_model(copy.deepcopy(model), config)  # without peft's own deprecation notes
    trainable = [p for p in tuned.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=lr)
    score = PeftScorer(tuned, tokenizer, task)
    v = task.verbalizer
    gen = torch.Generator().manual_seed(seed)
    history, done, t0 = [], 0, time.perf_counter()
    tuned.train()
    for step in range(steps):
        if budget_seconds is not None and time.perf_counter() - t0 >= budget_seconds:
            break
        pick = torch.randperm(len(train), generator=gen)[:batch_size].tolist()
        batch = [train[i] for i in pick]
        y = torch.tensor([v.index(e.label) for e in batch], device=score.device)
        loss = F.cross_entropy(score(batch), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done = step + 1
        history.append({"step": done, "time_s": time.perf_counter() - t0, "loss": loss.item()})
    elapsed = time.perf_counter() - t0
    tuned.eval()
    return ContinuousResult(
        method=method,
        model=model_name,
        accuracy=score.accuracy(test),
        dev_accuracy=score.accuracy(dev) if len(dev) else math.nan,
        n_test=len(test),
        num_virtual_tokens=num_virtual_tokens,
        trainable_params=sum(p.numel() for p in trainable),
        steps_done=done,
        seconds_per_step=elapsed / done if done else math.nan,
        elapsed_s=elapsed,
        lr=lr,
        seed=seed,
        history=history,
    )
