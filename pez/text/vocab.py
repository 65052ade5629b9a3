"""Vocabulary: a model's tokenizer and embedding matrix, and the mask of tokens a prompt may use.

Every optimiser in pez searches over the rows of a model's token embedding matrix E (V x D). The allowed mask
never includes special tokens or junk (word-level tokens that do not come back as themselves); ASCII-only,
whole words and a blocklist are options (docs/defaults.md#readable-vocabulary).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from pez.cache import cache_dir
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
        _CLASSES[tok.tok] = _stored_token_classes(tok)
    return _CLASSES[tok.tok]


CLASSES_VERSION = 1  # bump when the classification changes: stored classes of older versions are not read


def _stored_token_classes(tok) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """The classes from pez's cache folder (:func:`pez.cache.cache_dir`), keyed by the tokenizer's token texts and
    special ids; computed and stored when they are not there. Tokenising every word-level token once costs
    seconds, the stored file milliseconds."""
    texts = [tok.token_text(i) for i in range(tok.vocab_size)]
    what = [CLASSES_VERSION, type(tok).__name__, sorted(tok.special_ids), texts]
    key = hashlib.sha256(json.dumps(what).encode()).hexdigest()[:40]
    try:
        path = cache_dir("vocab") / f"{key}.pt"
    except PezError:  # a read-only cache without this folder: computed every run, stored nowhere
        return (*_compute_token_classes(tok, texts), texts)
    try:
        got = torch.load(path, weights_only=True)
        if all(len(got[k]) == tok.vocab_size for k in ("never", "ascii", "word")):
            return got["never"], got["ascii"], got["word"], texts
    except (OSError, RuntimeError, KeyError, EOFError, pickle.UnpicklingError):
        pass  # not stored yet, or unreadable: compute it again
    never, ascii_ok, word = _compute_token_classes(tok, texts)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        torch.save({"never": never, "ascii": ascii_ok, "word": word}, tmp)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache folder only costs the next run the same seconds
    return never, ascii_ok, word, texts


def _compute_token_classes(tok, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    special = torch.zeros(tok.vocab_size, dtype=torch.bool)
    special[list(tok.special_ids)] = True
    ascii_ok = torch.tensor([t.strip() != "" and t.isascii() and t.strip().isprintable() for t in texts])
    word_level = torch.tensor([tok.is_word(i) for i in range(tok.vocab_size)]) & ~special
    word = torch.zeros(tok.vocab_size, dtype=torch.bool)
    for i in word_level.nonzero().squeeze(1).tolist():
        word[i] = tok.encode(texts[i]) == [i]
    # word-level tokens whose text does not come back as themselves are junk in any mode ([unused12], "A</w>")
    junk = word_level & ~word
    return special | junk, ascii_ok, word


_BARE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # library tokenizer -> _bare_forms


def _bare_forms(tok: HFTokenizer) -> torch.Tensor:
    """For every token, the id of its form without the word-start marker when that form is a token whose text
    tokenises back to it at the start of a text; -1 otherwise. Shape (V,), cached per tokenizer."""
    if tok.tok not in _BARE:
        bare = [tok.bare_form(i) for i in range(tok.vocab_size)]
        have = [j for j in bare if j is not None]
        texts = [tok.token_text(j) for j in have]
        back = tok.tok(texts, add_special_tokens=False)["input_ids"] if texts else []
        ok = {j for j, b in zip(have, back) if b == [j]}
        _BARE[tok.tok] = torch.tensor([j if j is not None and j in ok else -1 for j in bare])
    return _BARE[tok.tok]


_SENTENCE_START = re.compile(r"(^\W*|(?<=\w\w)[.!?]\s+)([a-z])")  # not after the e. of i.e.
_LONE_I = re.compile(r"(?<![\w'.])i(?![\w.])")  # i, i'd, i'm; not the i of i.e.


@dataclass
class Vocabulary:
    """A model's tokenizer and token embedding matrix, as the optimisers see them.

    Args:
        tokenizer: a :class:`ClipTokenizer` or :class:`HFTokenizer`.
        embeddings: the model's own input embedding weight, shape (V, D).
        max_len: the longest prompt (in tokens) the model can take.
        before: the text a prompt follows inside a filled template (LM tasks; ``""`` when it opens the text);
            None when the prompt is a text of its own (encoders). With it, :meth:`encode` gives the prompt's ids
            as the whole filled text tokenises, and :meth:`allowed_masks` gives the first position the tokens a
            first word really becomes there (without the word-start marker when nothing or a newline precedes it).
    """

    tokenizer: ClipTokenizer | HFTokenizer
    embeddings: torch.Tensor
    max_len: int
    before: str | None = None

    def __post_init__(self):
        self._cased: dict[str, str] = {}  # text -> its sentence case (a search meets the same texts again)
        self.prefix_ids: list[int] = []  # the ids of ``before`` that the prompt follows
        self.bare_start = False
        if self.before is not None and isinstance(self.tokenizer, HFTokenizer):
            self.prefix_ids, self.bare_start = self.tokenizer.context(self.before)

    def encode(self, text: str) -> list[int]:
        """The ids of a prompt's text, as they come out where the prompt sits (see ``before``)."""
        if self.before is None or not isinstance(self.tokenizer, HFTokenizer):
            return self.tokenizer.encode(text)
        full = self.tokenizer.encode(self.before + text)
        n = len(self.prefix_ids)
        return full[n:] if full[:n] == self.prefix_ids else full

    def decode(self, ids: Sequence[int]) -> str:
        """The text of a prompt's ids; -1 is no token (the padding of the methods that write texts shorter than
        the prompt length: APE, compose, VGD), so a padded row decodes to its text."""
        ids = ids.tolist() if hasattr(ids, "tolist") else ids
        return self.tokenizer.decode([t for t in ids if t >= 0])

    def word_id(self, piece: str, starts_word: bool = False) -> int | None:
        """This vocabulary's single token for another tokenizer's ``piece`` that is one alphabetic word (another
        model's token mapped here, e.g. an LM's proposal), or None; ``starts_word``: the piece must begin with a
        space (a whole word, not the end of one)."""
        word = piece.strip()
        if not word.isalpha() or (starts_word and not piece[:1].isspace()):
            return None
        ids = self.encode(word)
        return ids[0] if len(ids) == 1 else None

    @functools.cached_property
    def ignores_case(self) -> bool:
        """Whether the tokenizer lowercases what it reads (CLIP, uncased BERT): then a text's casing is free."""
        probe = "The Quick Fox. I Said"
        return self.encode(probe) == self.encode(probe.lower())

    def sentence_case(self, text: str) -> str:
        """``text`` as a sentence is written (its first letter, a letter after ``. ! ?`` and a lone ``i`` upper
        case), where the model reads both the same: the vocabulary ignores case and the cased text has the same
        ids. Otherwise ``text`` unchanged. A reader (and a judge LM) reads the cased text better; the score is
        that of the same ids."""
        if not self.ignores_case or not text:
            return text
        if text not in self._cased:
            if len(self._cased) > 100_000:
                self._cased.clear()
            cased = _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text)
            cased = _LONE_I.sub("I", cased)
            self._cased[text] = cased if cased == text or self.encode(cased) == self.encode(text) else text
        return self._cased[text]

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

    def _starts_cleanly(self, candidates: torch.Tensor) -> torch.Tensor:
        """Which tokens, as a prompt's first word right after ``before``, tokenise to themselves there (a bare ")"
        after "review." would merge into ".)"). Checked once per token in one batched call, then cached."""
        known = self.__dict__.setdefault("_clean_start", {})
        todo = [i for i in candidates.nonzero().squeeze(1).tolist() if i not in known]
        if todo:
            texts = [self.before + self.tokenizer.token_text(i) for i in todo]
            back = self.tokenizer.tok(texts, add_special_tokens=False)["input_ids"]
            for i, b in zip(todo, back):
                known[i] = b == self.prefix_ids + [i]
        ok = torch.zeros_like(candidates)
        ids = [i for i in candidates.nonzero().squeeze(1).tolist() if known[i]]
        ok[ids] = True
        return ok

    def allowed_masks(self, options: VocabOptions, length: int) -> torch.Tensor:
        """Boolean masks (L, V) of the tokens each prompt position may use.

        Every position takes :meth:`allowed_mask`, except a first position whose word comes out without its
        word-start marker (``bare_start``): it takes the unmarked forms of the allowed marked words (and, without
        ``whole_words``, the allowed unmarked tokens), so that the prompt's ids are those of its text.
        """
        rest = self.allowed_mask(options)
        masks = rest[None].repeat(length, 1)
        if self.bare_start:
            bare = _bare_forms(self.tokenizer)[: len(rest)]
            marked = torch.tensor([self.tokenizer.is_word(i) for i in range(len(bare))])
            first = torch.zeros_like(rest)
            src = rest[: len(bare)] & marked & (bare >= 0)
            first[bare[src]] = True
            if not options.whole_words:
                first[: len(bare)] |= rest[: len(bare)] & ~marked
            first &= self._starts_cleanly(first)
            if not first.any():
                raise PezError("no token can start this template's prompt: use another template or vocabulary options")
            masks[0] = first
        return masks
