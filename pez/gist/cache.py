"""Compress an instruction once into its gist tokens' keys and values, save them, and reuse them (Mu, Li & Goodman,
NeurIPS 2023, "gist caching").

``gist_compress`` runs ``[prefix][instruction][gist x K]`` through a gist model in one forward pass and keeps the
keys and values of the prefix and gist positions only; the instruction's are dropped. ``gist_generate`` and
``gist_evaluate`` run inputs after them in a transformers ``DynamicCache``, with position ids that continue after
the instruction, which is exactly what the same model computes with the instruction and gist tokens in place under
the gist mask. A gist file records the model it came from (name, hidden size, layers, K, gist token id, a hash of
the gist embedding and a fingerprint of every weight tensor, :func:`pez.gist.model.weights_fingerprint`), and is
refused by any other model, a copy with one weight matrix changed included.
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from pez.errors import PezError
from pez.gist.data import GistExample, output_text, read_gist_data
from pez.gist.mask import pack
from pez.gist.model import (
    GistModel,
    PrefixState,
    context_length,
    encode,
    greedy,
    load_gist_model,
    prefix_ids,
    read_gist_info,
    run_prefix,
    score_rows,
)
from pez.records.gist import GistEval

GIST_CACHE_FORMAT = "pez-gist-cache"


@dataclass
class GistCache:
    """An instruction compressed into K gist positions: their keys and values, and the model they belong to."""

    instruction: str
    k: int
    state: PrefixState
    identity: dict
    n_instruction: int = 0

    def save(self, path: str | os.PathLike) -> None:
        """Write the cache with ``torch.save`` (atomically)."""
        path = os.fspath(path)
        data = {
            "format": GIST_CACHE_FORMAT,
            "version": 2,  # 2: the identity holds K and the weights' fingerprint
            "instruction": self.instruction,
            "k": self.k,
            "n_instruction": self.n_instruction,
            "offset": self.state.offset,
            "keys": [t.detach().cpu() for t in self.state.keys],
            "values": [t.detach().cpu() for t in self.state.values],
            "identity": self.identity,
        }
        tmp = f"{path}.tmp"
        torch.save(data, tmp)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> GistCache:
        """Read a file written by :meth:`save`.

        Raises:
            PezError: the file is missing or is not a gist cache.
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise PezError(f"no gist file at {path}: make one with `pez gist compress --out FILE`")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError):
            raise PezError(f"{path} is not a gist file: make one with `pez gist compress --out FILE`") from None
        if not isinstance(data, dict) or data.get("format") != GIST_CACHE_FORMAT:
            raise PezError(f"{path} is not a gist file: make one with `pez gist compress --out FILE`")
        state = PrefixState(list(data["keys"]), list(data["values"]), int(data["offset"]))
        return cls(data["instruction"], int(data["k"]), state, dict(data["identity"]), int(data["n_instruction"]))


def _model(model, device) -> GistModel:
    from pez.models.base import resolve_device

    return load_gist_model(model, resolve_device(device))


def _check(cache: GistCache, gm: GistModel) -> None:
    """The gist file must come from this model: same hidden size, layers, K, gist token id, gist embedding and
    weights (the name is only reported: a renamed folder holds the same model)."""
    mine, theirs = gm.identity(), cache.identity
    if "weights_sha256" not in theirs:
        raise PezError(
            "the gist file was made by an older pez, which did not record the model's weights: compress the "
            "instruction again (`pez gist compress`)"
        )
    diff = [k for k in mine if k != "name" and theirs.get(k) != mine[k]]
    if diff:
        what = ", ".join(f"{k} {str(theirs.get(k))[:12]} vs {str(mine[k])[:12]}" for k in diff[:2])
        raise PezError(
            f"the gist file was made by another model ({theirs.get('name')!r}, not {mine['name']!r}: {what}): "
            "compress the instruction again with this model"
        )


def gist_compress(
    model: str | os.PathLike | GistModel,
    instruction: str,
    out: str | os.PathLike | None = None,
    device: str | None = "auto",
) -> GistCache:
    """Compress ``instruction`` into the gist model's K gist positions in one forward pass.

    Args:
        model: a gist model folder (``pez gist train``) or a loaded :class:`GistModel`.
        instruction: the instruction text.
        out: where to save the cache (optional).

    Raises:
        PezError: the instruction is empty or does not fit the context, or the folder is not a gist model.
    """
    if not instruction or not instruction.strip():
        raise PezError("the instruction is empty: pass --instruction TEXT")
    gm = _model(model, device)
    tok = gm.tokenizer
    prefix, ids = prefix_ids(tok), encode(tok, instruction.strip())
    row, lay = pack(prefix, ids, gm.token_id, gm.k, [])
    limit = context_length(gm.model)
    if len(row) >= limit:
        raise PezError(
            f"the instruction is {len(ids)} tokens: with {gm.k} gist tokens it leaves no room in the model's context "
            f"of {limit}: shorten it"
        )
    keep = [*range(lay.n_prefix), *range(lay.gist_start, lay.gist_end)]
    state = run_prefix(gm.model, row, layout=lay, keep=keep)
    cache = GistCache(instruction.strip(), gm.k, state.to("cpu"), gm.identity(), len(ids))
    if out is not None:
        cache.save(out)
    return cache


def _cache(gist: str | os.PathLike | GistCache) -> GistCache:
    return gist if isinstance(gist, GistCache) else GistCache.load(gist)


def gist_generate(
    model: str | os.PathLike | GistModel,
    gist: str | os.PathLike | GistCache,
    input: str = "",
    max_new_tokens: int = 64,
    device: str | None = "auto",
) -> str:
    """The gist model's greedy output for ``input`` after a saved gist (no instruction in the context).

    Raises:
        PezError: the gist file belongs to another model, the input is empty for a model trained only on rows
            with inputs, or the input does not fit the context.
    """
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise PezError(f"--max-new-tokens must be a positive whole number, got {max_new_tokens!r}")
    if not isinstance(input, str):
        raise PezError(f"the input must be text, got {type(input).__name__}")
    info = model.info if isinstance(model, GistModel) else read_gist_info(model)
    if not input.strip() and not info.get("rows_without_input"):
        raise PezError(
            "--input is empty, and every row this gist model was trained on has an input: give --input TEXT (an "
            "instruction without an input needs a gist model trained on such rows)"
        )
    cache = _cache(gist)  # a bad file is refused before the model loads
    gm = _model(model, device)
    _check(cache, gm)
    tok = gm.tokenizer
    body = encode(tok, GistExample(cache.instruction, input.strip()).body())
    if cache.state.offset + len(body) + max_new_tokens > context_length(gm.model):
        raise PezError(f"the input and {max_new_tokens} new tokens do not fit the model's context: shorten the input")
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    state = cache.state.to(gm.model.get_input_embeddings().weight.device)
    (ids,) = greedy(gm.model, state, [body], max_new_tokens, pad, tok.eos_token_id, ban=[gm.token_id])
    return tok.decode(ids, skip_special_tokens=True).strip()


@dataclass(frozen=True)
class Spot:
    """What a scored row is: its example, its choice (None without choices), where the continuation starts, and
    whether it is the example's own output."""

    example: int
    choice: int | None
    start: int
    own: bool


def choice_rows(tok, examples: Sequence[GistExample]) -> tuple[list[list[int]], list[Spot]]:
    """Rows to score: each example's body with its own output, then with each of its other choices."""
    rows, spots = [], []
    for i, e in enumerate(examples):
        body = encode(tok, e.body())
        options = [(e.choices.index(e.output) if e.choices else None, e.output, True)]
        options += [(c, x, False) for c, x in enumerate(e.choices) if x != e.output]
        for c, text, own in options:
            rows.append(body + encode(tok, output_text(text)))
            spots.append(Spot(i, c, len(body), own))
    return rows, spots


def continuation_logp(logp: torch.Tensor, rows: Sequence[Sequence[int]], spots: Sequence[Spot]) -> list[float]:
    """Summed log-probability of each row's continuation (its tokens after the body), from (N, M, V) log-probs
    of the rows run after a prefix (the body is never empty, so every continuation token has a distribution)."""
    out = []
    for r, (row, spot) in enumerate(zip(rows, spots)):
        idx = torch.tensor(row[spot.start :], dtype=torch.long, device=logp.device)
        out.append(float(logp[r, spot.start - 1 : len(row) - 1].gather(-1, idx[:, None]).sum()))
    return out


def label_accuracy(examples: Sequence[GistExample], spots: Sequence[Spot], scores: Sequence[float]):
    """The predicted choice of each labelled example (highest summed log-probability) and the accuracy (None
    without labelled examples)."""
    best: dict[int, tuple[float, int]] = {}
    for spot, sc in zip(spots, scores):
        if spot.choice is not None and (spot.example not in best or sc > best[spot.example][0]):
            best[spot.example] = (sc, spot.choice)
    preds = {i: examples[i].choices[c] for i, (_, c) in best.items()}
    if not preds:
        return preds, None
    return preds, sum(p == examples[i].output for i, p in preds.items()) / len(preds)


@torch.no_grad()
def gist_evaluate(
    model: str | os.PathLike | GistModel,
    gist: str | os.PathLike | GistCache,
    data: str | os.PathLike | Sequence[GistExample],
    batch_size: int = 16,
    device: str | None = "auto",
) -> GistEval:
    """Score outputs after a saved gist: the NLL of each example's output, and with ``choices`` the label
    accuracy (the choice with the highest summed log-probability), as ``pez evaluate`` scores a prompt."""
    cache = _cache(gist)
    examples = read_gist_data(data) if isinstance(data, str | os.PathLike) else list(data)
    gm = _model(model, device)
    _check(cache, gm)
    tok = gm.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    state = cache.state.to(gm.model.get_input_embeddings().weight.device)
    rows, spots = choice_rows(tok, examples)
    if cache.state.offset + max(len(r) for r in rows) > context_length(gm.model):
        raise PezError("an example does not fit the model's context after the gist: shorten it")
    scores = []
    for s in range(0, len(rows), batch_size):
        logp, _ = score_rows(gm.model, state, rows[s : s + batch_size], pad, gm.base_vocab)
        scores += continuation_logp(logp, rows[s : s + batch_size], spots[s : s + batch_size])
    own = [(sc, len(rows[r]) - spot.start) for r, (spot, sc) in enumerate(zip(spots, scores)) if spot.own]
    count = sum(n for _, n in own)
    preds, accuracy = label_accuracy(examples, spots, scores)
    return GistEval(
        model=gm.lm.spec,
        instruction=cache.instruction,
        k=cache.k,
        n=len(examples),
        nll=-sum(sc for sc, _ in own) / count if count else math.nan,
        accuracy=accuracy,
        n_labelled=len(preds),
        predictions=[preds[i] for i in sorted(preds)],
    )
