"""CLIP objective: make a prompt's text features match image and text targets (open_clip models).

The text path is rebuilt from open_clip's public attributes (token embedding, positional embedding, causal
transformer, final layer norm, pooling at end-of-text, projection), so gradients flow to the prompt embeddings.
Under the causal mask the end-of-text feature depends only on the first L + 2 positions (start, prompt, end), so
only those are computed: the official PEZ code runs all 77. A prompt's step goes further
(:meth:`ClipTextPath.encode_embeds`): the start token attends only to itself, so its input to every block is the
same for every prompt and is computed once; and the last block's MLP runs only where the feature is pooled. Both
are exact (tests/test_parity.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from pez.errors import PezError
from pez.images.load import load_image
from pez.objectives.base import EmbeddingObjective, target_weights, warn_if_cut
from pez.text.tokenizers import ClipTokenizer
from pez.text.vocab import Vocabulary


class ClipTextPath(nn.Module):
    """open_clip's ``encode_text`` taken apart so that it accepts token embeddings.

    Args:
        model: an open_clip ``CLIP`` or ``CustomTextCLIP`` whose text tower is open_clip's causal
            ``TextTransformer``.
        tokenizer: the model's open_clip tokenizer.
    """

    def __init__(self, model: nn.Module, tokenizer):
        super().__init__()
        tower = model.text if hasattr(model, "text") else model
        pool = getattr(tower, "text_pool_type", None) or getattr(tower, "pool_type", None)
        needed = ("token_embedding", "positional_embedding", "transformer", "ln_final", "attn_mask")
        if not all(hasattr(tower, a) for a in needed):
            raise PezError(
                f"{type(tower).__name__} text towers are not supported: pez needs open_clip's causal TextTransformer"
            )
        if tower.attn_mask is None or getattr(tower, "cls_emb", None) is not None or pool not in ("argmax", "eos"):
            raise PezError("this open_clip text tower is not causal with end-of-text pooling, which pez needs")
        self.tower = tower
        self.tok = ClipTokenizer(tokenizer)
        self.context_length = min(tower.positional_embedding.shape[0], self.tok.context_length)
        self.fast = _plain_blocks(tower.transformer)  # whether encode_embeds may take the pruned path
        self._start = None  # (key, each block's normalised start-token input (n_blocks, D)), see _start_states

    @property
    def token_embedding(self) -> torch.Tensor:
        return self.tower.token_embedding.weight  # (V, D)

    def forward(self, x: torch.Tensor, eot_pos: torch.Tensor) -> torch.Tensor:
        """Text features of full sequences given as embeddings.

        Args:
            x: embeddings of start + tokens + end (+ anything after), shape (N, S, D).
            eot_pos: position of the end-of-text token in each row, shape (N,).

        Returns:
            unnormalised text features, shape (N, F).
        """
        t = self.tower
        s = x.shape[1]
        cast = t.transformer.get_cast_dtype()
        x = x.to(cast) + t.positional_embedding[:s].to(cast)
        x = t.transformer(x, attn_mask=t.attn_mask[:s, :s])  # (N, S, D)
        return self._project(t.ln_final(x[torch.arange(x.shape[0], device=x.device), eot_pos]))  # (N, F)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        proj = self.tower.text_projection
        if proj is None:
            return x
        return proj(x) if isinstance(proj, nn.Linear) else x @ proj

    def encode_embeds(self, embeds: torch.Tensor) -> torch.Tensor:
        """Features of prompts given as embeddings (R, L, D): start + prompt + end, L + 2 positions."""
        r, length, _ = embeds.shape
        w = self.token_embedding
        eot = w[self.tok.eos_id].expand(r, 1, -1)
        if self.fast:
            return self._pruned(torch.cat([embeds.to(w.dtype), eot], dim=1))
        sot = w[self.tok.bos_id].expand(r, 1, -1)
        x = torch.cat([sot, embeds.to(w.dtype), eot], dim=1)  # (R, L + 2, D)
        return self(x, torch.full((r,), length + 1, device=embeds.device))

    def _pruned(self, x: torch.Tensor) -> torch.Tensor:
        """``forward`` of start + ``x`` (R, S, D) pooled at the last position, without recomputing the start token
        (its per-block inputs are cached) and with the last block run at the pooled position only."""
        t = self.tower
        r, s, _ = x.shape
        cast = t.transformer.get_cast_dtype()
        x = x.to(cast) + t.positional_embedding[1 : s + 1].to(cast)
        blocks = t.transformer.resblocks
        start = self._start_states()
        last = len(blocks) - 1
        for k, block in enumerate(blocks):
            attn = block.attn
            h = torch.cat([start[k].to(x.dtype).expand(r, 1, -1), block.ln_1(x)], dim=1)  # start + all: (R, S+1, D)
            heads = attn.num_heads
            qkv = F.linear(h, attn.in_proj_weight, attn.in_proj_bias).view(r, s + 1, 3, heads, -1)
            q, k_, v = qkv.permute(2, 0, 3, 1, 4)  # each (R, heads, S+1, D/heads)
            o = F.scaled_dot_product_attention(q, k_, v, is_causal=True)  # open_clip's causal mask, as a kernel flag
            o = o.transpose(1, 2)[:, -1:] if k == last else o.transpose(1, 2)[:, 1:]  # not the start token's row
            x = x[:, -1:] if k == last else x  # past the last attention only the pooled position is needed
            x = x + block.ls_1(F.linear(o.reshape(r, x.shape[1], -1), attn.out_proj.weight, attn.out_proj.bias))
            x = x + block.ls_2(block.mlp(block.ln_2(x)))
        return self._project(t.ln_final(x[:, -1]))

    @torch.no_grad()
    def _start_states(self) -> torch.Tensor:
        """The start token's normalised input to each block, shape (n_blocks, D): the same for every prompt."""
        t = self.tower
        w = self.token_embedding
        key = (w.device, w.dtype, w._version)
        if self._start is None or self._start[0] != key:
            x = (w[self.tok.bos_id] + t.positional_embedding[0]).to(t.transformer.get_cast_dtype())[None, None]
            states = []
            for block in t.transformer.resblocks:
                states.append(block.ln_1(x)[0, 0])
                x = block(x)
            self._start = (key, torch.stack(states))
        return self._start[1]

    def encode_ids(self, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        """Features of prompts given as token ids of any lengths (each cut to the context)."""
        ids = [list(i)[: self.context_length - 2] for i in ids]
        s = max(len(i) for i in ids) + 2
        rows = [[self.tok.bos_id, *i, self.tok.eos_id] + [0] * (s - len(i) - 2) for i in ids]
        t = torch.tensor(rows, device=self.token_embedding.device)
        eot = torch.tensor([len(i) + 1 for i in ids], device=t.device)
        return self(self.tower.token_embedding(t), eot)


class CLIPObjective(EmbeddingObjective):
    """Match CLIP image and text targets, and push away from negative ones.

    Its loss on a prompt's embeddings runs on the device alone (no host copies, no data-dependent shapes), so a
    PEZ step on it can be captured as a CUDA graph (``graph_safe``); transformers CLIP paths are not checked for
    that and run eagerly.

    Args:
        model: an open_clip model (its device and dtype are followed).
        tokenizer: ``open_clip.get_tokenizer(name)``.
        images: target images (file paths or PIL images).
        texts: target texts.
        negative_images, negative_texts: targets to move away from.
        negative_weight: weight of each negative target relative to a positive one.
        preprocess: image transform; default: the model's own evaluation transform.
        model_name: how the model is named in results.
        path: the text path (default: open_clip's, :class:`ClipTextPath`; transformers CLIP models bring theirs).
        warn_cut: warn when a target text is longer than the encoder reads (it is cut to the context length).
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        images: Sequence = (),
        texts: Sequence[str] = (),
        negative_images: Sequence = (),
        negative_texts: Sequence[str] = (),
        negative_weight: float = 1.0,
        preprocess=None,
        model_name: str | None = None,
        path: nn.Module | None = None,
        warn_cut: bool = True,
    ):
        if not len(images) and not len(texts):
            raise PezError("no targets given: pass at least one image or --text")
        self.path = path if path is not None else ClipTextPath(model, tokenizer)
        if warn_cut:
            lengths = [len(self.path.tok.encode(t)) for t in [*texts, *negative_texts]]
            warn_if_cut(lengths, self.path.context_length - 2, self.path.context_length)
        self.model = model
        self.tokenizer = tokenizer
        self.preprocess = preprocess or _eval_transform(model)
        pos = self._encode_targets(images, texts)
        neg = self._encode_targets(negative_images, negative_texts)
        feats = torch.cat([pos, neg]) if len(neg) else pos
        names = _names(images, texts) + _names(negative_images, negative_texts)
        info = {
            "kind": "clip",
            "model": model_name or type(model).__name__,
            "targets": names,
            "negatives": len(neg),
            "negative_weight": negative_weight,
        }
        vocab = Vocabulary(self.path.tok, self.path.token_embedding, self.path.context_length - 2)
        self.graph_safe = isinstance(self.path, ClipTextPath)
        super().__init__(vocab, feats, target_weights(len(pos), len(neg), negative_weight), info)

    @torch.no_grad()
    def _encode_targets(self, images: Sequence, texts: Sequence[str]) -> torch.Tensor:
        device = self.path.token_embedding.device
        feats = []
        if len(images):
            if self.preprocess is None:
                raise PezError("this model has no image tower: give text targets, or use a CLIP model for images")
            pixels = torch.stack([self.preprocess(load_image(im)) for im in images])
            feats.append(self.image_features(pixels.to(device)).float())
        if len(texts):
            ids = [self.path.tok.encode(t) for t in texts]
            feats.append(self.path.encode_ids(ids).float())
        return torch.cat(feats) if feats else torch.zeros(0, 1, device=device)

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Image features of preprocessed pixels (N, 3, H, W) -> (N, F)."""
        if not hasattr(self.model, "encode_image"):
            raise PezError("this model has no image tower: give text targets, or use a CLIP model for images")
        return self.model.encode_image(pixels.to(next(self.model.visual.parameters()).dtype))

    def encode_embeds(self, embeds):
        return self.path.encode_embeds(embeds)

    def encode_ids(self, ids):
        return self.path.encode_ids(ids)


def _plain_blocks(transformer: nn.Module) -> bool:
    """Whether a text transformer is a batch-first stack of open_clip's plain residual attention blocks (the
    pruned prompt path runs their parts itself; other block kinds take the full path)."""
    from open_clip.transformer import ResidualAttentionBlock

    blocks = getattr(transformer, "resblocks", ())
    return (
        getattr(transformer, "batch_first", False)
        and not getattr(transformer, "grad_checkpointing", False)
        and len(blocks) > 0
        and all(
            type(b) is ResidualAttentionBlock
            and not hasattr(b, "ln_1_kv")
            and isinstance(b.attn, nn.MultiheadAttention)
            and b.attn.batch_first
            and b.attn._qkv_same_embed_dim  # one packed in-projection, no extra key/value biases
            and b.attn.bias_k is None
            and not b.attn.add_zero_attn
            for b in blocks
        )
    )


def _eval_transform(model: nn.Module):
    import open_clip

    cfg = getattr(getattr(model, "visual", None), "preprocess_cfg", None)
    if cfg is None:
        return None
    return open_clip.image_transform(
        cfg["size"],
        is_train=False,
        mean=cfg["mean"],
        std=cfg["std"],
        resize_mode=cfg.get("resize_mode"),
        interpolation=cfg.get("interpolation"),
        fill_color=cfg.get("fill_color", 0),
    )


def _names(images: Sequence, texts: Sequence[str]) -> list[str]:
    def name(i: int, im) -> str:
        if isinstance(im, str) or hasattr(im, "__fspath__"):
            return str(im)
        return str(getattr(im, "info", {}).get("source") or f"<image {i}>")  # a file loaded by load_image

    names = [name(i, im) for i, im in enumerate(images)]
    return [f"image:{n}" for n in names] + [f"text:{t}" for t in texts]
