"""Adapters over the models' own tokenizers (open_clip's CLIP BPE, Hugging Face WordPiece / BPE / SentencePiece).

Both give the same small surface the rest of pez uses: ``encode``, ``decode``, ``token_text``, ``is_word``,
``vocab_size`` and ``special_ids``.
"""

from __future__ import annotations

from collections.abc import Sequence

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
        # every id; the objectives cut to the context (and say so), so the library's length warning is not shown
        return self.tok(text, add_special_tokens=False, verbose=False)["input_ids"]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tok.decode(list(ids)).strip()

    def token_text(self, i: int) -> str:
        return self.tok.decode([i])

    @property
    def marker(self) -> str | None:
        """The word-start marker of byte-level BPE ("Ġ") or SentencePiece ("▁"); None for WordPiece."""
        return {"bytelevel": "\u0120", "sentencepiece": "\u2581"}.get(self.scheme)

    def is_word(self, i: int) -> bool:
        p = self.pieces[i] or ""
        if self.scheme == "wordpiece":
            return not p.startswith("##")
        return p.startswith(self.marker)

    def context(self, before: str) -> tuple[list[int], bool]:
        """How a prompt that follows ``before`` in a text is tokenised.

        Returns:
            (prefix, bare_start): the ids of ``before`` that no following word changes (``"Review: "`` gives
            the ids of ``"Review:"``: its space belongs to the prompt's first word), and whether the prompt's first
            word comes out without the word-start marker (a prompt that opens the text, or follows a newline).
        """
        a, b = self.encode(before + "hello"), self.encode(before + "the")
        n = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        marker = self.marker
        bare = marker is not None and n < len(a) and not (self.pieces[a[n]] or "").startswith(marker)
        return a[:n], bare

    def bare_form(self, i: int) -> int | None:
        """The id of a marked word token's form without the marker ("Ġgreat" -> "great"), if the vocabulary has it."""
        p = self.pieces[i] or ""
        if self.marker is None or not p.startswith(self.marker) or len(p) == 1:
            return None
        j = self.tok.convert_tokens_to_ids(p[1:])
        return j if isinstance(j, int) and j != self.tok.unk_token_id and self.pieces[j] == p[1:] else None


class HFClipTokenizer:
    """Adapter over a transformers CLIP tokenizer (the same BPE as open_clip's: words end with ``</w>``)."""

    def __init__(self, tokenizer):
        vocab = tokenizer.get_vocab()
        if tokenizer.bos_token_id is None or tokenizer.eos_token_id is None:
            raise PezError(f"{type(tokenizer).__name__} has no start/end-of-text tokens: pez needs CLIP's tokenizer")
        self.tok = tokenizer
        self.vocab_size = len(tokenizer)
        self.pieces = [""] * self.vocab_size
        for piece, i in vocab.items():
            if i < self.vocab_size:
                self.pieces[i] = piece
        self.special_ids = frozenset(tokenizer.all_special_ids)
        self.bos_id = tokenizer.bos_token_id
        self.eos_id = tokenizer.eos_token_id
        self.context_length = min(tokenizer.model_max_length, 77) if tokenizer.model_max_length else 77

    def encode(self, text: str) -> list[int]:
        # every id; the objectives cut to the context (and say so), so the library's length warning is not shown
        return self.tok(text, add_special_tokens=False, verbose=False)["input_ids"]

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(self.tok.decode(list(ids), skip_special_tokens=True).split())

    def token_text(self, i: int) -> str:
        return self.tok.decode([i])

    def is_word(self, i: int) -> bool:
        """True for tokens that end a word, so a run of them decodes to separate words."""
        return self.pieces[i].endswith("</w>")
