"""Gist models and the runs every method shares: a prefix's key/value states, rows scored after them, greedy
generation after them (transformers' ``DynamicCache``, the model's own attention).

A *prefix state* is what a method leaves for the input to attend to: the instruction's keys and values (the full
instruction), a hard prompt's, the K gist positions' (gisting: the instruction's positions are dropped), PEFT's
virtual tokens', or only the tokenizer's own prefix (no instruction). Rows then run after it with position ids that
continue where the prefix ended (``offset``), so a gist state, which keeps K of the ``offset`` positions, gives the
rows the same rotary positions as the full masked sequence does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from pez.errors import PezError
from pez.gist.mask import GIST_TOKEN, Layout, gist_mask
from pez.models.base import LoadedModel

log = logging.getLogger(__name__)

GIST_FILE = "gist.json"  # written beside the weights by `pez gist train`
GIST_FORMAT = "pez-gist-model"
TRAINING_FILE = "training.json"  # the training run's report, beside gist.json
SAMPLE = 8192  # values of each parameter tensor in the weights' fingerprint (evenly spaced, ends included)
SIGNED = ("k", "gist_token", "gist_token_id", "base_vocab", "mask", "weights_sha256")  # gist.json's signed fields


def context_length(model) -> int:
    """The most positions the model takes (``max_position_embeddings`` or GPT-2's ``n_positions``)."""
    config = model.config
    return int(getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or 2048)


def prefix_ids(tokenizer) -> list[int]:
    """The special tokens the tokenizer puts before a text (e.g. BOS; none for SmolLM2)."""
    full = tokenizer("a")["input_ids"]
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    at = next(i for i in range(len(full)) if full[i : i + len(bare)] == bare)
    return list(full[:at])


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def cache_kw(model, cache) -> dict:
    """The cache as the model's forward names it: ``cache`` (transformers 5.x) or ``past_key_values`` (4.x)."""
    import inspect

    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    return {name: cache}


def cache_of(out):
    """The key/value cache a forward returned (``out.cache`` in transformers 5.x, ``past_key_values`` before)."""
    found = getattr(out, "cache", None)
    return found if found is not None else out.past_key_values


@dataclass
class PrefixState:
    """Keys and values of a prefix, one (1, H, P, D) pair per layer, and the position id of the next token.

    ``offset`` equals the number of kept positions for a plain prefix; a gist state keeps fewer positions than
    ``offset`` (the instruction's are dropped).
    """

    keys: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)
    offset: int = 0

    @property
    def length(self) -> int:
        return self.keys[0].shape[-2] if self.keys else 0

    def cache(self, batch: int, config=None):
        """A transformers ``DynamicCache`` holding this prefix for ``batch`` rows (None for an empty prefix)."""
        from transformers import DynamicCache

        if not self.length:
            return None
        data = [(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in zip(self.keys, self.values)]
        return DynamicCache(data, config=config)

    def to(self, device) -> PrefixState:
        return PrefixState([k.to(device) for k in self.keys], [v.to(device) for v in self.values], self.offset)


@torch.no_grad()
def run_prefix(
    model,
    ids: Sequence[int] = (),
    embeds: torch.Tensor | None = None,
    layout: Layout | None = None,
    keep: Sequence[int] | None = None,
) -> PrefixState:
    """Run a prefix once and keep its keys and values.

    Args:
        model: a transformers causal LM.
        ids: the prefix's token ids (or ``embeds``, (P, D), e.g. PEFT's virtual tokens before the tokenizer prefix).
        layout: the gist layout of ``ids`` (the gist mask is applied; it changes nothing before the body).
        keep: the positions whose keys and values are kept (default all), e.g. the prefix and gist positions.
    """
    device = model.get_input_embeddings().weight.device
    n = len(ids) if embeds is None else embeds.shape[0]
    if n == 0:
        return PrefixState()
    kwargs = {"inputs_embeds": embeds[None]} if embeds is not None else {"input_ids": torch.tensor([list(ids)])}
    kwargs = {k: v.to(device) for k, v in kwargs.items()}
    if layout is not None:
        kwargs["attention_mask"] = gist_mask([layout], n, model.dtype, device)
    out = model(**kwargs, use_cache=True, logits_to_keep=1)
    index = torch.tensor(list(range(n)) if keep is None else list(keep), device=device)
    keys, values = [], []
    for k, v, *_ in cache_of(out):
        keys.append(k.index_select(-2, index))  # (1, H, P', D)
        values.append(v.index_select(-2, index))
    return PrefixState(keys, values, n)


def score_rows(model, state: PrefixState, rows: Sequence[Sequence[int]], pad_id: int, vocab: int | None = None):
    """Next-token log-probabilities at every position of every row run after the prefix state.

    Returns:
        logp: (N, M, V) float32 log-probabilities over the first ``vocab`` entries (renormalised there: a gist
            model's extra token is left out when it is compared with its base model), right-padded rows.
        valid: (N, M) bool, False at padding.
    """
    device = model.get_input_embeddings().weight.device
    n, m = len(rows), max(len(r) for r in rows)
    ids = torch.tensor([list(r) + [pad_id] * (m - len(r)) for r in rows], device=device)  # (N, M)
    valid = torch.tensor([[True] * len(r) + [False] * (m - len(r)) for r in rows], device=device)
    mask = torch.cat([torch.ones(n, state.length, dtype=torch.long, device=device), valid.long()], 1)
    pos = (state.offset + torch.arange(m, device=device)).expand(n, m)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, **cache_kw(model, state.cache(n, model.config)))
    logits = out.logits[..., :vocab] if vocab else out.logits
    return F.log_softmax(logits.float(), -1), valid


@torch.no_grad()
def greedy(
    model,
    state: PrefixState,
    bodies: Sequence[Sequence[int]],
    max_new_tokens: int,
    pad_id: int,
    stop_id: int | None = None,
    ban: Sequence[int] = (),
) -> list[list[int]]:
    """Greedy continuations of several bodies after one prefix state (left-padded inside the body segment).

    Returns the new ids of each row, cut after ``stop_id`` (which is kept out).
    """
    device = model.get_input_embeddings().weight.device
    n, m = len(bodies), max(len(b) for b in bodies)
    pads = [m - len(b) for b in bodies]
    ids = torch.tensor([[pad_id] * p + list(b) for p, b in zip(pads, bodies)], device=device)  # (N, M)
    pad = torch.tensor(pads, device=device)[:, None]  # (N, 1)
    j = torch.arange(m, device=device)[None]  # (1, M)
    mask = torch.cat([torch.ones(n, state.length, dtype=torch.long, device=device), (j >= pad).long()], 1)
    pos = state.offset + (j - pad).clamp(min=0)  # (N, M): each body's positions start right after the prefix
    cache = state.cache(n, model.config)
    out_ids, done = [[] for _ in range(n)], [False] * n
    for _ in range(max_new_tokens):
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, **cache_kw(model, cache))
        cache = cache_of(out)
        logits = out.logits[:, -1].float()  # (N, V)
        if ban:
            logits[:, list(ban)] = -torch.inf
        nxt = logits.argmax(-1)  # (N,)
        for i, t in enumerate(nxt.tolist()):
            if not done[i]:
                if t == stop_id:
                    done[i] = True
                else:
                    out_ids[i].append(t)
        if all(done):
            break
        ids = nxt[:, None]
        mask = torch.cat([mask, torch.ones(n, 1, dtype=torch.long, device=device)], 1)
        pos = pos[:, -1:] + 1
    return out_ids


@dataclass
class GistModel:
    """A causal LM fine-tuned for gisting: the model, its tokenizer (with the gist token), its ``gist.json``."""

    lm: LoadedModel
    token_id: int
    k: int
    info: dict

    @property
    def model(self):
        return self.lm.model

    @property
    def tokenizer(self):
        return self.lm.tokenizer

    @property
    def base_vocab(self) -> int:
        """The base model's vocabulary size: the gist model's logits beyond it (the gist token) are dropped."""
        return int(self.info["base_vocab"])

    def identity(self) -> dict:
        """What a gist file must match: name, hidden size, layers, K, gist token id, a hash of the gist embedding
        and the fingerprint of every weight (:func:`weights_fingerprint`)."""
        return model_identity(self.lm.spec, self.model, self.token_id, self.k)


def model_identity(name: str, model, token_id: int, k: int) -> dict:
    row = model.get_input_embeddings().weight[token_id].detach().float().cpu().contiguous()
    config = model.config
    return {
        "name": os.path.basename(os.path.normpath(name)) or name,
        "hidden_size": int(config.hidden_size),
        "num_layers": int(config.num_hidden_layers),
        "k": int(k),
        "gist_token_id": int(token_id),
        "gist_embedding_sha256": hashlib.sha256(row.numpy().tobytes()).hexdigest(),
        "weights_sha256": weights_fingerprint(model),
    }


@torch.no_grad()
def weights_fingerprint(model, sample: int = SAMPLE) -> str:
    """sha256 of every parameter tensor's name, shape, dtype and :data:`SAMPLE` evenly spaced values (all of a
    smaller tensor): a copy with any weight matrix replaced, retrained or rescaled differs, and a 135M-parameter
    model is fingerprinted in milliseconds (a hash of every byte would read them all). Exact: the same weights
    in the same dtype give the same digest on any device."""
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        flat = p.detach().reshape(-1)  # (N,)
        n = flat.numel()
        idx = torch.linspace(0, n - 1, min(n, sample), dtype=torch.float64).round().long().to(flat.device)
        h.update(f"{name}|{tuple(p.shape)}|{p.dtype}|".encode())
        h.update(flat[idx].float().cpu().numpy().tobytes())
    return h.hexdigest()


def signature(info: dict) -> str:
    """sha256 of gist.json's :data:`SIGNED` fields: K, the gist token, the base vocabulary, the mask and the
    weights' fingerprint, as ``pez gist train`` wrote them (an edited field no longer matches)."""
    text = json.dumps({k: info.get(k) for k in SIGNED}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def read_gist_info(spec: str | os.PathLike) -> dict:
    """A gist model folder's ``gist.json``, checked for its format (no weights are read).

    Raises:
        PezError: the folder does not exist, or it is not a gist model.
    """
    folder = Path(os.path.expanduser(os.fspath(spec)))
    if not folder.is_dir():
        raise PezError(f"no gist model folder at {spec}: train one with `pez gist train --out DIR`")
    meta = folder / GIST_FILE
    if not meta.is_file():
        raise PezError(f"{spec} is not a gist model (no {GIST_FILE}): train one with `pez gist train --out DIR`")
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PezError(f"cannot read {meta} ({e}): train the gist model again") from None
    if not isinstance(info, dict) or info.get("format") != GIST_FORMAT:
        raise PezError(f"{meta} is not a pez gist model description: train the gist model again")
    if isinstance(info.get("k"), bool) or not isinstance(info.get("k"), int) or info["k"] < 1:
        raise PezError(f"{meta}: k must be a whole number of gist tokens, got {info.get('k')!r}: train again")
    trained = _training_k(folder / TRAINING_FILE)
    if trained is not None and trained != info["k"]:
        raise PezError(
            f"{meta} says k {info['k']} but the training run ({TRAINING_FILE}) used {trained} gist tokens: "
            f"{GIST_FILE} was edited; put k back to {trained} (K is fixed when the model is trained)"
        )
    return info


def _training_k(path: Path) -> int | None:
    """K of the training run's report, or None when there is no readable report."""
    try:
        k = json.loads(path.read_text(encoding="utf-8")).get("k")
    except (OSError, ValueError, AttributeError):
        return None
    return k if isinstance(k, int) and not isinstance(k, bool) else None


def check_weights(spec, info: dict, model) -> None:
    """The weights must be the ones ``gist.json`` was signed for, and its signed fields as written.

    Raises:
        PezError: a weight changed since training (a copy with a matrix replaced), or a signed field was edited.
    """
    if "signature" not in info:  # written before pez signed gist models: nothing to check against
        log.warning("%s: %s has no signature (an older pez wrote it): its weights cannot be checked", spec, GIST_FILE)
        return
    if signature(info) != info["signature"]:
        raise PezError(
            f"{spec}: {GIST_FILE} was edited after training (its K, gist token, vocabulary or fingerprint no longer "
            "match its signature): restore it, or train the gist model again"
        )
    if weights_fingerprint(model) != info["weights_sha256"]:
        raise PezError(
            f"{spec}: its weights are not the ones {GIST_FILE} was written for (changed since `pez gist train`): "
            "use the folder as training wrote it, or train the gist model again"
        )


def load_gist_model(spec: str | os.PathLike | GistModel, device: str | torch.device | None = "cpu") -> GistModel:
    """Load a folder written by ``pez gist train`` (a transformers folder with ``gist.json``), checked: its K
    against the training run's, ``gist.json`` against its signature, the weights against their fingerprint.

    Raises:
        PezError: the folder does not exist, it is not a gist model, or it is not as training left it.
    """
    if isinstance(spec, GistModel):
        return spec
    from pez.models.lm import load_lm

    info = read_gist_info(spec)
    folder = Path(os.path.expanduser(os.fspath(spec)))
    lm = load_lm(str(folder), device)
    token_id = lm.tokenizer.convert_tokens_to_ids(info.get("gist_token", GIST_TOKEN))
    if token_id != info.get("gist_token_id") or token_id >= lm.model.get_input_embeddings().weight.shape[0]:
        raise PezError(f"{spec}: its tokenizer's gist token does not match {GIST_FILE}: train the gist model again")
    check_weights(spec, info, lm.model)
    return GistModel(lm, int(token_id), int(info["k"]), info)
