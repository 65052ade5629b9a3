"""Five ways to give a model an instruction, compared on the same held-out instructions and inputs: the full
instruction, ``pez compress`` (K real tokens), gist tokens (K gist positions of a gist model), PEFT prompt tuning
distilled to the instruction (K virtual tokens), and no instruction.

Per method and instruction: the KL from the base model's next-token distributions under the full instruction (at
every position of each input row, its output included), the label accuracy where the rows have choices, the context
tokens saved, the FLOPs and wall-clock per input, and whether the result is portable (only the hard prompt is text
another model can read). Every method is run the same way: its prefix (instruction, hard prompt, gist positions,
virtual tokens, or nothing) is computed once into a key/value cache and every input runs after it, so FLOPs and
seconds per input differ only by the context each input attends to; ``prefix_flops`` is the one-off cost of that
cache (a gist still needs one pass over the instruction).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from pez.errors import PezError
from pez.gist.cache import choice_rows, continuation_logp, gist_compress, label_accuracy
from pez.gist.data import GistExample, by_instruction, default_gist_data, read_gist_data
from pez.gist.distill import distill_prompt_tuning
from pez.gist.model import (
    GistModel,
    PrefixState,
    context_length,
    encode,
    load_gist_model,
    prefix_ids,
    run_prefix,
    score_rows,
)
from pez.models.base import LoadedModel, resolve_device
from pez.records.gist import METHODS, PORTABLE, CompressionComparison


def forward_flops(model, n_new: int, context: int) -> float:
    """Forward FLOPs of ``n_new`` tokens after ``context`` cached ones: 2 per weight per token (embeddings aside),
    the output head, and the attention's scores and weighted sums (4 * layers * hidden per key per query)."""
    config = model.config
    d, layers = config.hidden_size, config.num_hidden_layers
    emb = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    body = sum(p.numel() for p in model.parameters() if id(p) not in emb)
    vocab = model.get_output_embeddings().weight.shape[0]
    keys = n_new * context + n_new * (n_new + 1) / 2
    return 2.0 * (body + d * vocab) * n_new + 4.0 * layers * d * keys


def eval_groups(examples: Sequence[GistExample], seen: set[str], split: str | None, cap: int | None) -> list:
    """(split, instruction, examples) groups, classification and open instructions alternating, ``cap`` per split."""
    groups = by_instruction(examples)
    out = []
    for name in ("seen", "unseen"):
        part = [(i, g) for i, g in groups.items() if (split or ("seen" if i in seen else "unseen")) == name]
        labelled = [x for x in part if x[1][0].choices]
        other = [x for x in part if not x[1][0].choices]
        mixed = [x for pair in zip(labelled, other) for x in pair]
        mixed += labelled[len(other) :] + other[len(labelled) :]
        out += [(name, i, g) for i, g in mixed[:cap]]
    return out


def _hard_prompt(lm: LoadedModel, instruction: str, train: Sequence[GistExample], k: int, steps: int, batch: int,
                 device, seed: int) -> tuple[str, float]:  # fmt: skip
    """``pez.compress`` on the training rows (as ``text``: body and output without the leading line break)."""
    from pez.jobs.compress import compress  # pez's own call: an interrupted search comes back as a result

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rows.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for e in train:
                text = (e.body() + (" " + e.output if e.output else "")).lstrip("\n")
                f.write(json.dumps({"text": text, "label": "row"}) + "\n")
        t0 = time.perf_counter()
        report = compress(
            instruction,
            model=lm,
            data=path,
            prompt_len=k,
            steps=steps,
            batch_size=batch,
            n_inputs=len(train),
            test_size=None,
            seed=seed,
            device=device,
        )
    return report.prompt, time.perf_counter() - t0


@dataclass
class Made:
    """A method's prefix for one instruction: the model to run, its key/value state, the vocabulary to compare
    over, the tokens run to build the state, the hard prompt's text, and the training seconds."""

    net: object
    state: PrefixState
    vocab: int | None
    run: int
    prompt: str | None = None
    train_s: float | None = None


def _prefix(method: str, base: LoadedModel, gm: GistModel, instruction: str, full: PrefixState, train, s) -> Made:
    model, tok = base.model, base.tokenizer
    prefix, k = prefix_ids(tok), gm.k
    if method == "instruction":
        return Made(model, full, None, full.length)
    if method == "none":
        return Made(model, run_prefix(model, prefix), None, len(prefix))
    if method == "hard-prompt":
        prompt, train_s = _hard_prompt(base, instruction, train, k, s["hard_steps"], s["batch"], s["device"], s["seed"])
        ids = prefix + encode(tok, prompt)
        return Made(model, run_prefix(model, ids), None, len(ids), prompt, train_s)
    if method == "gist":
        state = gist_compress(gm, instruction).state.to(s["device"])
        return Made(gm.model, state, gm.base_vocab, full.length + k)
    rows = [r for r, spot in zip(*choice_rows(tok, train)) if spot.own]
    tuned = distill_prompt_tuning(model, tok, instruction, rows, k, s["tuning_steps"], 3e-2, s["batch"], s["seed"])
    return Made(model, tuned.state(model, tok), None, k + len(prefix), None, tuned.seconds)


@torch.no_grad()
def _score(made: Made, rows, spots, test, teacher, valid, pad: int, repeats: int = 2) -> dict:
    """KL to the instruction's distributions on the examples' own rows, over every position (``kl``) and over the
    positions that predict the output (``kl_output``); the label accuracy; seconds per input (the fastest of
    ``repeats`` timed passes: other processes only ever add time)."""
    own = [(r, s) for r, s in zip(rows, spots) if s.own]
    other = [(r, s) for r, s in zip(rows, spots) if not s.own]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        logp, _ = score_rows(made.net, made.state, [r for r, _ in own], pad, made.vocab)
        times.append((time.perf_counter() - t0) / len(own))
    per_pos = (teacher.exp() * (teacher - logp)).sum(-1)  # (N, M)
    kl = ((per_pos * valid).sum(-1) / valid.sum(-1)).mean().item()
    out = torch.zeros_like(valid)  # positions whose next token is an output token
    for i, (r, s) in enumerate(own):
        out[i, s.start - 1 : len(r) - 1] = True
    has = out.any(-1)
    kl_out = ((per_pos * out).sum(-1)[has] / out.sum(-1)[has]).mean().item() if has.any() else None
    scores = continuation_logp(logp, *zip(*own))
    if other:
        more, _ = score_rows(made.net, made.state, [r for r, _ in other], pad, made.vocab)
        scores += continuation_logp(more, *zip(*other))
    _, accuracy = label_accuracy(test, [s for _, s in own + other], scores)
    return {
        "kl": kl if math.isfinite(kl) else None,
        "kl_output": kl_out,
        "accuracy": accuracy,
        "wall_s_per_input": min(times),
    }


def compare_compression(
    gist_model: str | os.PathLike | GistModel,
    data: str | os.PathLike | Sequence[GistExample] | None = None,
    base_model: str | LoadedModel | None = None,
    methods: Sequence[str] = METHODS,
    instructions: int | None = 2,
    inputs: int = 8,
    train_inputs: int = 16,
    hard_steps: int = 20,
    tuning_steps: int = 30,
    batch_size: int = 8,
    seed: int = 0,
    device: str | None = "auto",
    callback: Callable[[int, int, str], None] | None = None,
) -> CompressionComparison:
    """Compare the five ways of giving an instruction (:data:`METHODS`) at the gist model's K.

    Args:
        gist_model: a folder from ``pez gist train`` (its K is the K of every method).
        data: held-out examples (JSONL file or list); an instruction the gist model was trained on is "seen", any
            other "unseen". Default: the embedded default set's held-out inputs of seen instructions and its
            unseen instructions.
        base_model: the model the instruction, hard prompt and virtual tokens run on (default: the gist model's
            base, from its ``gist.json``).
        instructions: at most this many instructions per split (None: all).
        inputs: held-out inputs per instruction; the next ``train_inputs`` examples train the hard prompt and
            the virtual tokens.
        hard_steps, tuning_steps: optimisation steps of ``pez compress`` and of prompt tuning.
        callback: called with (done, total, what) as the work goes.
    """
    from pez.models.lm import load_lm

    if not methods:
        raise PezError(f"--methods is empty: name one or more of {', '.join(METHODS)}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise PezError(f"unknown method {unknown[0]!r}: choose from {', '.join(METHODS)}")
    for name, value in (("inputs", inputs), ("train-inputs", train_inputs), ("hard-steps", hard_steps),
                        ("tuning-steps", tuning_steps), ("batch-size", batch_size)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PezError(f"--{name} must be a positive whole number, got {value!r}")
    if instructions is not None and (
        isinstance(instructions, bool) or not isinstance(instructions, int) or instructions < 1
    ):
        raise PezError(f"--instructions must be a positive whole number, got {instructions!r}")
    given = read_gist_data(data) if isinstance(data, str | os.PathLike) else data
    dev = resolve_device(device)
    gm = load_gist_model(gist_model, dev)
    k = gm.k
    if isinstance(base_model, LoadedModel):
        base = base_model
    else:
        base = load_lm(base_model or gm.info["base_model"], dev)
    if given is None:
        parts = default_gist_data(base, seed=seed)
        groups = eval_groups(parts.held_out, set(), "seen", instructions)
        groups += eval_groups(parts.unseen, set(), "unseen", instructions)
    else:
        groups = eval_groups(list(given), set(gm.info.get("instructions", [])), None, instructions)
    if not groups:
        raise PezError("no instructions to compare: give a JSONL file with instruction, input and output rows")
    model, tok = base.model, base.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    prefix, limit = prefix_ids(tok), context_length(model)
    settings = {
        "hard_steps": hard_steps,
        "tuning_steps": tuning_steps,
        "batch": batch_size,
        "seed": seed,
        "device": dev,
    }
    t_start, rows_out = time.perf_counter(), []
    total, done = len(groups) * len(methods), 0
    for split, instruction, examples in groups:
        test, train = examples[:inputs], examples[inputs : inputs + train_inputs]
        if {"hard-prompt", "prompt-tuning"} & set(methods) and not train:
            raise PezError(
                f"instruction {instruction[:40]!r} has {len(examples)} examples: the hard prompt and prompt tuning "
                f"need more than --inputs {inputs} (the rest train them)"
            )
        instr = encode(tok, instruction)
        rows, spots = choice_rows(tok, test)
        if len(prefix) + len(instr) + max(len(r) for r in rows) > limit:
            raise PezError(f"instruction {instruction[:40]!r} and its inputs do not fit the context of {limit}")
        with torch.no_grad():
            full = run_prefix(model, prefix + instr)
            teacher, valid = score_rows(model, full, [r for r, s in zip(rows, spots) if s.own], pad)
        for method in methods:
            made = _prefix(method, base, gm, instruction, full, train, settings)
            scored = _score(made, rows, spots, test, teacher, valid, pad)
            own = [r for r, s in zip(rows, spots) if s.own]
            rows_out.append(
                {
                    "split": split,
                    "instruction": instruction,
                    "method": method,
                    "k": k,
                    "n_inputs": len(test),
                    "instruction_tokens": len(instr),
                    "context_tokens": made.state.length,
                    "tokens_saved": len(prefix) + len(instr) - made.state.length,
                    **scored,
                    "flops_per_input": sum(forward_flops(made.net, len(r), made.state.length) for r in own) / len(own),
                    "prefix_flops": forward_flops(made.net, made.run, 0),
                    "train_s": made.train_s,
                    "portable": PORTABLE[method],
                    "prompt": made.prompt,
                }
            )
            done += 1
            if callback is not None:
                callback(done, total, f"{split} {method}")
    config = {"methods": list(methods), "instructions": instructions, "inputs": inputs, "train_inputs": train_inputs,
              "hard_steps": hard_steps, "tuning_steps": tuning_steps, "batch_size": batch_size, "seed": seed,
              "data": os.fspath(data) if isinstance(data, str | os.PathLike) else "embedded default" if data is None
              else "given examples"}  # fmt: skip
    return CompressionComparison(
        model=base.spec,
        gist_model=gm.lm.spec,
        k=k,
        rows=rows_out,
        config=config,
        elapsed_s=time.perf_counter() - t_start,
    )
