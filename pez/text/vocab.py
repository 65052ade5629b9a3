"""Vocabulary: a model's tokenizer and embedding matrix, and the mask of tokens a prompt may use.

Every optimiser in pez searches over the rows of a model's token embedding matrix E (V x D). The allowed mask
never includes special tokens or junk (word-level tokens that do not come back as themselves); ASCII-only,
whole words and a blocklist are options (docs/defaults.md#readable-vocabulary).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from pez.errors import PezError
from pez.text.tokenizers import ClipTokenizer, HFTokenizer


@dataclass(frozen=True)
class VocabOptions:
    """Which tokens a prompt may use. Special and padding tokens are never allowed."""

    ascii_only: bool = True
    whole_words: bool = True
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
