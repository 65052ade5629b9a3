"""PEFT prompt tuning (Lester et al., EMNLP 2021) distilled to an instruction: K virtual tokens trained so that the
model's next-token distributions after them match those after the instruction (the continuous counterpart of
``pez compress`` and of gisting, trained per instruction on the same inputs).

loss = KL(p(. | instruction, row) || p(. | virtual tokens, row)), averaged over every position of each row, over
rows, as :class:`pez.objectives.lm.CompressionObjective` defines it for hard prompts. The virtual tokens start from
the instruction's own embeddings (PEFT's TEXT initialisation) where the tokenizer is a local folder, else from
sampled vocabulary rows. They are vectors, not text: no other model can use them.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from pez.gist.model import PrefixState, prefix_ids, run_prefix, score_rows
from pez.models.base import peft_model


@dataclass
class Distilled:
    """Trained virtual tokens (K, D) and how training went."""

    embeds: torch.Tensor
    steps: int
    seconds: float
    history: list = field(default_factory=list)

    def state(self, model, tokenizer) -> PrefixState:
        """The keys and values of ``[virtual tokens][tokenizer prefix]``, where PEFT puts its tokens."""
        emb = model.get_input_embeddings().weight
        pre = emb[torch.tensor(prefix_ids(tokenizer), dtype=torch.long, device=emb.device)]
        return run_prefix(model, embeds=torch.cat([self.embeds.to(emb), pre]))


def kl_rows(teacher: torch.Tensor, student: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) per row: (N, M, V) log-probs, (N, M) valid -> (N,), the mean over valid positions."""
    kl = (teacher.exp() * (teacher - student)).sum(-1)  # (N, M)
    return (kl * valid).sum(-1) / valid.sum(-1)


def peft_config(k: int, instruction: str, tokenizer):
    import peft

    path = getattr(tokenizer, "name_or_path", "")
    if path and os.path.isdir(path):
        return peft.PromptTuningConfig(
            task_type=peft.TaskType.CAUSAL_LM,
            num_virtual_tokens=k,
            prompt_tuning_init=peft.PromptTuningInit.TEXT,
            prompt_tuning_init_text=instruction,
            tokenizer_name_or_path=path,
        )
    return peft.PromptTuningConfig(
        task_type=peft.TaskType.CAUSAL_LM, num_virtual_tokens=k, prompt_tuning_init=peft.PromptTuningInit.SAMPLE_VOCAB
    )


def distill_prompt_tuning(
    model,
    tokenizer,
    instruction: str,
    rows: Sequence[Sequence[int]],
    k: int,
    steps: int = 30,
    lr: float = 3e-2,
    batch_size: int = 8,
    seed: int = 0,
) -> Distilled:
    """Train K PEFT prompt-tuning tokens to reproduce the instruction's next-token distributions on ``rows``.

    Args:
        model, tokenizer: the base causal LM (copied; the caller's model is left as it was).
        instruction: the instruction to imitate.
        rows: token ids of the training rows (body and output), which follow the instruction.
        k: number of virtual tokens.
    """
    device = model.get_input_embeddings().weight.device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    prefix = prefix_ids(tokenizer)
    teacher_state = run_prefix(model, prefix + tokenizer(instruction, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        teachers = [score_rows(model, teacher_state, [r], pad)[0][0] for r in rows]  # each (M_i, V)
    with torch.random.fork_rng(devices=[]):  # PEFT draws its initial vectors from the global generator
        torch.manual_seed(seed)
        tuned = peft_model(copy.deepcopy(model), peft_config(k, instruction, tokenizer))
    trainable = [p for p in tuned.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    history, t0 = [], time.perf_counter()
    tuned.train()
    for step in range(1, steps + 1):
        pick = torch.randperm(len(rows), generator=gen)[:batch_size].tolist()
        batch = [prefix + list(rows[i]) for i in pick]
        m = max(len(r) for r in batch)
        ids = torch.tensor([r + [pad] * (m - len(r)) for r in batch], device=device)
        mask = torch.tensor([[1] * len(r) + [0] * (m - len(r)) for r in batch], device=device)
        logits = tuned(input_ids=ids, attention_mask=mask).logits[:, k + len(prefix) :]  # (B, M', V): row positions
        student = torch.log_softmax(logits.float(), -1)
        teacher = torch.zeros_like(student)
        valid = torch.zeros(student.shape[:2], dtype=torch.bool, device=device)
        for b, i in enumerate(pick):
            n = len(rows[i])
            teacher[b, :n], valid[b, :n] = teachers[i], True
        loss = kl_rows(teacher, student, valid).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append({"step": step, "time_s": time.perf_counter() - t0, "kl": loss.item()})
    embeds = tuned.get_prompt_embedding_to_save(adapter_name="default")  # (K, D)
    return Distilled(embeds, steps, time.perf_counter() - t0, history)
