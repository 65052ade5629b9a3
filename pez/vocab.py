"""Vocabulary: tokenizers, allowed-token masks and the nearest-neighbour projection.

Every optimiser in pez searches over the rows of a model's token embedding matrix E (V x D). This module holds
what is shared by all of them: a small adapter over the model's own tokenizer (open_clip's BPE or a Hugging
Face tokenizer), the mask of tokens a prompt may use (never special tokens; ASCII-only, whole words and a
blocklist on request), and the projection of continuous embeddings onto their nearest allowed rows by cosine
(PEZ, Wen et al. 2023, eq. 1).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pez.errors import PezError


class ClipTokenizer:
    """Adapter over open_clip's ``SimpleTokenizer`` (CLIP byte-level BPE, words end with ``</w>``)."""

    def __init__(self, tokenizer):
        if not all(hasattr(tokenizer, a) for a in ("encoder", "decoder", "sot_token_id", "eot_token_id")):
            raise PezError(f"{type(tokenizer).__name__} is not open_clip's CLIP BPE tokenizer, which pez needs here")
        self.tok = tokenizer
        self.vocab_size = len(tokenizer.encoder)
        self.special_ids = frozenset(tokenizer.all_special_ids)
        self.bos_id = tokenizer.sot_token_id
        self.eos_id = tokenizer.eot_token_id
        self.context_length = tokenizer.context_length

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(self.tok.decode(list(ids)).split())

    def token_text(self, i: int) -> str:
        return self.tok.decode([i])

    def is_word(self, i: int) -> bool:
        """True for tokens that end a word, so a run of them decodes to separate words."""
        return self.tok.decoder[i].endswith("</w>")


class HFTokenizer:
    """Adapter over a Hugging Face tokenizer (WordPiece, byte-level BPE or SentencePiece)."""

    def __init__(self, tokenizer):
        self.tok = tokenizer
        self.vocab_size = len(tokenizer)
        self.special_ids = frozenset(tokenizer.all_special_ids)
        pieces = tokenizer.convert_ids_to_tokens(list(range(self.vocab_size)))
        self.pieces = pieces
        # Which marker tells a word-initial piece: WordPiece marks continuations with "##", byte-level BPE and
        # SentencePiece mark word starts with "Ġ" / "▁".
        n_cont = sum(p.startswith("##") for p in pieces if p)
        n_g = sum(p.startswith("\u0120") for p in pieces if p)
        n_sp = sum(p.startswith("\u2581") for p in pieces if p)
        self.scheme = max((n_cont, "wordpiece"), (n_g, "bytelevel"), (n_sp, "sentencepiece"))[1]
        full = tokenizer("a")["input_ids"]
        bare = tokenizer("a", add_special_tokens=False)["input_ids"]
        at = next(i for i in range(len(full)) if full[i : i + len(bare)] == bare)
        self.prefix_ids = list(full[:at])  # special tokens the tokenizer puts before a text, e.g. [CLS]
        self.suffix_ids = list(full[at + len(bare) :])  # and after it, e.g. [SEP]

    def encode(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tok.decode(list(ids)).strip()

    def token_text(self, i: int) -> str:
        return self.tok.decode([i])

    def is_word(self, i: int) -> bool:
        p = self.pieces[i] or ""
        if self.scheme == "wordpiece":
            return not p.startswith("##")
        return p.startswith("\u0120" if self.scheme == "bytelevel" else "\u2581")


@dataclass(frozen=True)
class VocabOptions:
    """Which tokens a prompt may use. Special and padding tokens are never allowed."""

    ascii_only: bool = True
    whole_words: bool = False
    blocklist: tuple[str, ...] = ()


_CLASSES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # library tokenizer -> _token_classes


def _token_classes(tok) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """Per-token facts that do not depend on the options: (never, ascii, word, texts), cached per tokenizer.

    ``never`` marks special tokens and junk: word-level tokens that do not survive tokenisation on their own.
    ``word`` marks tokens that start a word and come back unchanged when their text is tokenised alone; the
    word-level tokens that do not (BERT's ``[unused12]``, CLIP's upper-case letters, lower-cased on encoding)
    are junk.
    """
    if tok.tok not in _CLASSES:
        _CLASSES[tok.tok] = _compute_token_classes(tok)
    return _CLASSES[tok.tok]


def _compute_token_classes(tok) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    texts = [tok.token_text(i) for i in range(tok.vocab_size)]
    special = torch.zeros(tok.vocab_size, dtype=torch.bool)
    special[list(tok.special_ids)] = True
    ascii_ok = torch.tensor([t.strip() != "" and t.isascii() and t.strip().isprintable() for t in texts])
    word_level = torch.tensor([tok.is_word(i) for i in range(tok.vocab_size)]) & ~special
    word = torch.zeros(tok.vocab_size, dtype=torch.bool)
    for i in word_level.nonzero().squeeze(1).tolist():
        word[i] = tok.encode(texts[i]) == [i]
    # word-level tokens whose text does not come back as themselves are junk in any mode ([unused12], "A</w>")
    junk = word_level & ~word
    return special | junk, ascii_ok, word, texts


@dataclass
class Vocabulary:
    """A model's tokenizer and token embedding matrix, as the optimisers see them.

    Args:
        tokenizer: a :class:`ClipTokenizer` or :class:`HFTokenizer`.
        embeddings: the model's own input embedding weight, shape (V, D).
        max_len: the longest prompt (in tokens) the model can take.
    """

    tokenizer: ClipTokenizer | HFTokenizer
    embeddings: torch.Tensor
    max_len: int

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids)

    def allowed_mask(self, options: VocabOptions) -> torch.Tensor:
        """Boolean mask (V,) of tokens a prompt may use under ``options``.

        Raises:
            PezError: when the options leave no token allowed.
        """
        never, ascii_ok, word, texts = _token_classes(self.tokenizer)
        allowed = ~never
        n_rows = self.embeddings.shape[0]
        if n_rows < len(allowed):  # embedding matrices never index past their rows
            allowed = allowed[:n_rows]
            ascii_ok, word = ascii_ok[:n_rows], word[:n_rows]
        elif n_rows > len(allowed):  # padded embedding rows that no text can produce
            pad = torch.zeros(n_rows - len(allowed), dtype=torch.bool)
            allowed, ascii_ok, word = (torch.cat([t, pad]) for t in (allowed, ascii_ok, word))
        if options.ascii_only:
            allowed &= ascii_ok
        if options.whole_words:
            allowed &= word
        blocked = [b.lower() for b in options.blocklist if b.strip()]
        if blocked:
            hit = torch.tensor([any(b in t.lower() for b in blocked) for t in texts[: len(allowed)]])
            allowed[: len(hit)] &= ~hit
        if not allowed.any():
            raise PezError(
                "the vocabulary options leave no token allowed: "
                "shorten the blocklist, or use --no-whole-words / --no-ascii-only"
            )
        return allowed


class Projector:
    """Nearest allowed vocabulary row by cosine similarity (the PEZ projection).

    Args:
        embeddings: E, shape (V, D).
        allowed: boolean mask, shape (V,).
    """

    def __init__(self, embeddings: torch.Tensor, allowed: torch.Tensor):
        self.allowed_ids = allowed.nonzero().squeeze(1).to(embeddings.device)  # (A,)
        self.normed = F.normalize(embeddings.detach()[self.allowed_ids].float(), dim=-1)  # (A, D)

    @torch.no_grad()
    def __call__(self, soft: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
        """Project soft embeddings of shape (..., D) to token ids of shape (...).

        Queries go in chunks of ``chunk`` rows so the (rows, A) similarity matrix stays small.
        """
        q = F.normalize(soft.float(), dim=-1).reshape(-1, soft.shape[-1])  # (N, D)
        best = [(part @ self.normed.T).argmax(-1) for part in q.split(chunk)]  # (n, A) -> (n,)
        return self.allowed_ids[torch.cat(best)].reshape(soft.shape[:-1])
