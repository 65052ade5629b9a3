"""Fine-tune a causal LM for gisting (Mu, Li & Goodman, NeurIPS 2023): one new token ``<GIST>``, repeated K times
after every instruction, and the decoder gist mask (:mod:`pez.gist.mask`), so that the output can only learn from
the instruction through the gist positions. Full fine-tuning, or LoRA through PEFT (the gist token's embedding row
trained with PEFT's trainable tokens), with checkpoints and resume.

Loss: cross-entropy of the output tokens (and the end-of-sequence token after them) only, as in the paper. The new
token's embedding starts at the mean of the vocabulary's rows (the paper's initialisation). AdamW at a constant
learning rate, gradient norm clipped at 1.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from pez.errors import PezError
from pez.gist.data import (
    GistData,
    GistExample,
    default_gist_data,
    output_text,
    read_gist_data,
    split_held_out,
    spread,
)
from pez.gist.mask import GIST_TOKEN, Layout, gist_mask, pack
from pez.gist.model import (
    GIST_FILE,
    GIST_FORMAT,
    TRAINING_FILE,
    context_length,
    encode,
    prefix_ids,
    signature,
    weights_fingerprint,
)
from pez.models.base import LoadedModel, peft_model, resolve_device
from pez.records.gist import GistTrainReport

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
LR = {"full": 5e-5, "lora": 1e-3}


@dataclass
class TrainProgress:
    """What the callback sees after each step."""

    step: int
    steps: int
    loss: float
    held_out_loss: float | None = None


def check_k(k, model=None) -> None:
    """K must be a whole number from 1 to the model's context (less room for at least one other token)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise PezError(f"--gist-tokens must be a whole number of at least 1, got {k!r}")
    if model is not None and k >= context_length(model):
        raise PezError(f"--gist-tokens {k} does not fit the model's context of {context_length(model)} tokens")


def add_gist_token(model, tokenizer) -> tuple[int, int]:
    """Add ``<GIST>`` to the tokenizer and a row for it to the (tied) embeddings, at the mean of the rows.

    Returns:
        (token id, the base model's vocabulary size: its number of output logits).
    """
    base_vocab = model.get_output_embeddings().weight.shape[0]
    tokenizer.add_tokens([GIST_TOKEN], special_tokens=True)
    token_id = tokenizer.convert_tokens_to_ids(GIST_TOKEN)
    if token_id >= model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(token_id + 1, mean_resizing=False)
    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        emb[token_id] = emb[:base_vocab].mean(0)
    return token_id, base_vocab


class Encoder:
    """Examples -> (ids, layout, number of output tokens): ``[prefix][instruction][gist x K][body][output][eos]``."""

    def __init__(self, tokenizer, gist_id: int, k: int, max_len: int):
        self.tok, self.gist_id, self.k, self.max_len = tokenizer, gist_id, k, max_len
        self.prefix = prefix_ids(tokenizer)
        self.eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def __call__(self, ex: GistExample):
        out = encode(self.tok, output_text(ex.output)) + self.eos
        instruction, body = encode(self.tok, ex.instruction), encode(self.tok, ex.body())
        ids, lay = pack(self.prefix, instruction, self.gist_id, self.k, body)
        if lay.length + len(out) > self.max_len:
            raise PezError(
                f"an example is {lay.length + len(out)} tokens with its {self.k} gist tokens, more than the model's "
                f"context of {self.max_len}: shorten it (instruction {ex.instruction[:40]!r}...)"
            )
        if not out:
            raise PezError("an example has an empty output and the tokenizer has no end-of-sequence token")
        return ids + out, lay, len(out)


def batch_nll(model, encoded: Sequence, pad: int, gist: bool = True) -> tuple[torch.Tensor, int]:
    """Summed NLL of the output tokens of a batch of encoded rows, and their number."""
    device = model.get_input_embeddings().weight.device
    t = max(len(ids) for ids, _, _ in encoded)
    ids = torch.tensor([list(i) + [pad] * (t - len(i)) for i, _, _ in encoded], device=device)  # (B, T)
    # the output is part of the body here: the mask hides the instruction from both
    full = [Layout(lay.n_prefix, lay.n_instruction, lay.k, lay.n_body + n) for (_, lay, n) in encoded]
    mask = gist_mask(full, t, model.dtype, device, gist=gist)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]  # (B, T-1, V)
    want = torch.zeros_like(ids, dtype=torch.bool)  # (B, T): output positions
    for r, (_, lay, n) in enumerate(encoded):
        want[r, lay.length : lay.length + n] = True
    want = want[:, 1:]
    nll = F.cross_entropy(logits[want].float(), ids[:, 1:][want], reduction="sum")
    return nll, int(want.sum())


@torch.no_grad()
def mean_loss(model, encoded: Sequence, pad: int, batch_size: int = 16) -> float:
    """Mean NLL per output token over examples (the held-out loss)."""
    was = model.training
    model.eval()
    total, count = 0.0, 0
    for s in range(0, len(encoded), batch_size):
        nll, n = batch_nll(model, encoded[s : s + batch_size], pad)
        total, count = total + float(nll), count + n
    model.train(was)
    return total / max(count, 1)


def _fingerprint(**parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _trainable(model) -> dict[str, torch.Tensor]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _save_checkpoint(path: Path, model, opt, gen, step: int, history: list, fingerprint: str) -> None:
    state = {
        "format": "pez-gist-checkpoint",
        "fingerprint": fingerprint,
        "step": step,
        "params": {n: p.detach().cpu() for n, p in _trainable(model).items()},
        "optimizer": opt.state_dict(),
        "generator": gen.get_state(),
        "history": history,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, model, opt, gen, fingerprint: str) -> tuple[int, list]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as e:
        why = (str(e).splitlines() or [type(e).__name__])[0][:100]
        raise PezError(f"cannot read checkpoint {path} ({why}): start without --resume") from None
    if not isinstance(state, dict) or state.get("format") != "pez-gist-checkpoint":
        raise PezError(f"{path} is not a pez gist checkpoint: start without --resume")
    if state["fingerprint"] != fingerprint:
        raise PezError(f"checkpoint {path} is from another run (model, data, K or options differ): start afresh")
    params = _trainable(model)
    with torch.no_grad():
        for name, value in state["params"].items():
            params[name].copy_(value)
    opt.load_state_dict(state["optimizer"])
    gen.set_state(state["generator"])
    return int(state["step"]), list(state["history"])


def _wrap_lora(model, token_id: int, rank: int):
    import peft

    config = peft.LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        lora_dropout=0.0,
        target_modules="all-linear",
        trainable_token_indices=[token_id],
        task_type=peft.TaskType.CAUSAL_LM,
    )
    return peft_model(model, config)


def gist_train(
    model: str | LoadedModel = "smollm2",
    data: str | os.PathLike | Sequence[GistExample] | GistData | None = None,
    k: int = 1,
    steps: int = 200,
    out: str | os.PathLike = "gist-model",
    lora: bool = False,
    lora_rank: int = 16,
    lr: float | None = None,
    batch_size: int = 8,
    eval_every: int = 25,
    checkpoint_every: int = 50,
    held_out: float = 0.1,
    max_held_out: int = 64,
    seed: int = 0,
    resume: bool = False,
    device: str | None = "auto",
    callback: Callable[[TrainProgress], None] | None = None,
) -> GistTrainReport:
    """Fine-tune a causal LM with K gist tokens and the gist mask; save it as a transformers folder.

    Args:
        model: the base model: ``smollm2``, a transformers folder or hub name, or a loaded model (copied, left as
            it was).
        data: a JSONL file (:mod:`pez.gist.data`), examples, a :class:`GistData`, or None for the embedded default.
        k: gist tokens per instruction.
        out: the folder for the model, its tokenizer, ``gist.json``, ``training.json`` and the checkpoint.
        held_out: fraction of a file's examples held out for the held-out loss.
        max_held_out: at most this many held-out (and unseen) examples are scored.
        resume: continue from ``out/checkpoint.pt`` (written every ``checkpoint_every`` steps and on Ctrl-C).

    Returns:
        A :class:`GistTrainReport` (also written to ``out/training.json``).
    """
    from pez.models.lm import load_lm

    check_k(k)
    for name, value in (("steps", steps), ("batch-size", batch_size), ("eval-every", eval_every),
                        ("checkpoint-every", checkpoint_every), ("lora-rank", lora_rank)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PezError(f"--{name} must be a positive whole number, got {value!r}")
    if lr is not None and not lr > 0:
        raise PezError(f"--lr must be positive, got {lr}")
    if not 0 <= held_out < 1:
        raise PezError(f"--held-out must be a fraction from 0 to 1, got {held_out}")
    folder = Path(os.path.expanduser(os.fspath(out)))
    if folder.exists() and not folder.is_dir():
        raise PezError(f"--out {out} is a file: give a folder for the gist model")
    if resume and not (folder / CHECKPOINT).exists():
        raise PezError(f"nothing to resume: {folder / CHECKPOINT} does not exist")
    dev = resolve_device(device)
    given = read_gist_data(data) if isinstance(data, str | os.PathLike) else data  # bad files fail before loading
    if isinstance(model, LoadedModel):
        lm = LoadedModel(model.spec, model.kind, copy.deepcopy(model.model).to(dev), copy.deepcopy(model.tokenizer))
    else:
        lm = load_lm(model, dev)
    if given is None:
        parts = default_gist_data(lm, seed=seed)
    elif isinstance(given, GistData):
        parts = given
    else:
        parts = split_held_out(list(given), held_out, seed)
    source = os.fspath(data) if isinstance(data, str | os.PathLike) else parts.source or "given examples"
    if not parts.train:
        raise PezError("no training examples: give a JSONL file with instruction, input and output rows")
    net, tok = lm.model, lm.tokenizer
    check_k(k, net)
    token_id, base_vocab = add_gist_token(net, tok)
    enc = Encoder(tok, token_id, k, context_length(net))
    train = [enc(e) for e in parts.train]
    held = [enc(e) for e in spread(parts.held_out, max_held_out)]
    unseen = [enc(e) for e in spread(parts.unseen, max_held_out)]
    lr = lr or LR["lora" if lora else "full"]
    net.requires_grad_(not lora)
    if lora:
        with torch.random.fork_rng(devices=[]):  # PEFT draws LoRA's A matrices from the global generator
            torch.manual_seed(seed)
            net = _wrap_lora(net, token_id, lora_rank)
    net.train()
    params = list(_trainable(net).values())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    data_hash = hashlib.sha256(json.dumps([e.to_dict() for e in parts.train]).encode()).hexdigest()
    fp = _fingerprint(model=lm.spec, k=k, lora=lora, rank=lora_rank, lr=lr, batch=batch_size, seed=seed, data=data_hash)
    folder.mkdir(parents=True, exist_ok=True)
    ckpt = folder / CHECKPOINT
    start, history = _load_checkpoint(ckpt, net, opt, gen, fp) if resume else (0, [])
    before = history[0]["held_out_loss"] if history else mean_loss(net, held, enc.pad) if held else math.nan
    unseen_before = (history[0].get("unseen_loss") if history else mean_loss(net, unseen, enc.pad)) if unseen else None
    if not history:
        history.append({"step": 0, "time_s": 0.0, "held_out_loss": before, "unseen_loss": unseen_before})
    t0 = time.perf_counter() - history[-1]["time_s"]
    step, updating = start, False
    try:
        for step in range(start + 1, steps + 1):
            pick = torch.randperm(len(train), generator=gen)[:batch_size].tolist()
            nll, n = batch_nll(net, [train[i] for i in pick], enc.pad)
            loss = nll / n
            opt.zero_grad(set_to_none=True)
            loss.backward()
            updating = True
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            updating = False
            entry = {"step": step, "time_s": time.perf_counter() - t0, "loss": loss.item()}
            if step % eval_every == 0 or step == steps:
                entry["held_out_loss"] = mean_loss(net, held, enc.pad) if held else math.nan
                if unseen:
                    entry["unseen_loss"] = mean_loss(net, unseen, enc.pad)
            history.append(entry)
            if step % checkpoint_every == 0 and step < steps:
                _save_checkpoint(ckpt, net, opt, gen, step, history, fp)
            if callback is not None:
                callback(TrainProgress(step, steps, entry["loss"], entry.get("held_out_loss")))
    except KeyboardInterrupt:
        if not updating and history[-1]["step"] == step:
            _save_checkpoint(ckpt, net, opt, gen, step, history, fp)
            log.warning("interrupted at step %d: resume with --resume (checkpoint %s)", step, ckpt)
        raise
    elapsed = time.perf_counter() - t0  # the whole run's, resumed parts included
    after = history[-1].get("held_out_loss", math.nan)
    final = net.merge_and_unload() if lora else net
    final.eval()
    final.save_pretrained(folder)
    tok.save_pretrained(folder)
    info = {
        "format": GIST_FORMAT,
        "version": 1,
        "gist_token": GIST_TOKEN,
        "gist_token_id": token_id,
        "k": k,
        "mask": "decoder",
        "base_model": lm.spec,
        "base_vocab": base_vocab,
        "row": "{instruction}" + GIST_TOKEN * k + "\nInput: {input}\nOutput: {output}",
        "lora": lora,
        "instructions": sorted({e.instruction for e in parts.train}),
        "rows_without_input": sum(not e.input for e in parts.train),
        "weights_sha256": weights_fingerprint(final),  # a copy with a weight changed is refused at load
    }
    info["signature"] = signature(info)  # K, the gist token and the fingerprint as written here
    (folder / GIST_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
    report = GistTrainReport(
        model=lm.spec,
        out=str(folder),
        k=k,
        steps=steps,
        lora=lora,
        lr=lr,
        batch_size=batch_size,
        data=source,
        n_train=len(train),
        n_held_out=len(held),
        n_unseen=len(unseen),
        held_out_before=before,
        held_out_after=after,
        unseen_before=unseen_before,
        unseen_after=history[-1].get("unseen_loss") if unseen else None,
        steps_done=steps,
        seconds_per_step=elapsed / steps,
        elapsed_s=elapsed,
        trainable_params=sum(p.numel() for p in params),
        history=history,
    )
    report.save(folder / TRAINING_FILE)
    ckpt.unlink(missing_ok=True)
    return report
