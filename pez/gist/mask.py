"""The gist attention mask for decoder-only models (Mu, Li & Goodman, "Learning to Compress Prompts with Gist
Tokens", NeurIPS 2023, the "decoder" mask of its Figure 2).

A row is laid out as ``[prefix][instruction][gist x K][body]``: the prefix is what the tokenizer puts before any
text (e.g. BOS; empty for SmolLM2), the body is the input and the output. Attention is causal, except that body
positions may not see the instruction: everything the body needs from it must pass through the K gist positions.
The gist positions see the instruction. The prefix carries no instruction, so the body may see it (models use BOS
as an attention sink).

The mask goes to a transformers causal LM as a custom 4D ``attention_mask`` of shape (B, 1, T, T), which
transformers passes to the attention as it is (``masking_utils._preprocess_mask_arguments``: "If the mask is
already 4D, simply return as-is"). It is additive (0 where attention is allowed, the dtype's lowest value where it is
not), which the eager and the SDPA attentions of Llama (SmolLM2) and GPT-2 both add to their scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

GIST_TOKEN = "<GIST>"


@dataclass(frozen=True)
class Layout:
    """Where the parts of one row sit: ``[prefix][instruction][gist x k][body]``, right-padded after ``length``."""

    n_prefix: int
    n_instruction: int
    k: int
    n_body: int

    @property
    def gist_start(self) -> int:
        return self.n_prefix + self.n_instruction

    @property
    def gist_end(self) -> int:
        return self.gist_start + self.k

    @property
    def length(self) -> int:
        return self.gist_end + self.n_body


def pack(prefix: Sequence[int], instruction: Sequence[int], gist_id: int, k: int, body: Sequence[int]):
    """The ids of one row and its :class:`Layout`."""
    ids = [*prefix, *instruction, *([gist_id] * k), *body]
    return ids, Layout(len(prefix), len(instruction), k, len(body))


def allowed(layouts: Sequence[Layout], length: int, gist: bool = True, device=None) -> torch.Tensor:
    """Which key each query may attend to: a boolean tensor (B, T, T), True where attention is allowed.

    Causal, no padded keys, and with ``gist`` no body query on an instruction key.
    """
    pos = torch.arange(length, device=device)
    q, k = pos[:, None], pos[None, :]  # (T, 1), (1, T)
    rows = []
    for lay in layouts:
        ok = (k <= q) & (k < lay.length)  # (T, T)
        if gist:
            blocked = (q >= lay.gist_end) & (k >= lay.n_prefix) & (k < lay.gist_start)
            ok = ok & ~blocked
        rows.append(ok)
    return torch.stack(rows)


def gist_mask(
    layouts: Sequence[Layout], length: int, dtype: torch.dtype = torch.float32, device=None, gist: bool = True
) -> torch.Tensor:
    """The additive 4D attention mask (B, 1, T, T) for a batch of rows: 0 where allowed, the lowest value of
    ``dtype`` where not. Pass it as ``attention_mask`` to a transformers causal LM (with ``gist=False``: the plain
    causal mask with padding, in the same form)."""
    ok = allowed(layouts, length, gist, device)  # (B, T, T)
    mask = torch.zeros(ok.shape, dtype=dtype, device=device)
    return mask.masked_fill_(~ok, torch.finfo(dtype).min)[:, None]
