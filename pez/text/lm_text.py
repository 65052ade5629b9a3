"""A causal LM that reads decoded TEXT with its own tokenizer: a fluency prior and a readability judge for any
encoder.

An encoder's prompt (CLIP's BPE ids, say) is decoded to text; :class:`TextLM` re-tokenises that text with the
LM's own tokenizer and scores it, so no shared vocabulary is needed (the VGD recipe, Kim et al., ICLR 2025; see
DESIGN.md "Readable inversion"). Each text is scored as the start of a document: the tokenizer's BOS token (else
its EOS token, the document separator) is put in front, so the first word gets a log-probability too; a
tokenizer with ``<|endoftext|>`` starts after that instead (:func:`document_start`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pez.errors import PezError

PROBE = "a photo of a dog"  # any plain text: a tokenizer that cannot encode it has no usable vocabulary


DOCUMENT_SEPARATOR = "<|endoftext|>"  # between the documents of GPT-2's, SmolLM's, Qwen's... pre-training data


def document_start(tok) -> int | None:
    """The token a document starts after: the tokenizer's ``<|endoftext|>`` where it has one (a chat model's BOS,
    SmolLM2's ``<|im_start|>`` say, starts a chat turn, not a document), else its BOS, else its EOS."""
    sep = tok.convert_tokens_to_ids(DOCUMENT_SEPARATOR) if DOCUMENT_SEPARATOR in tok.get_vocab() else None
    for candidate in (sep, tok.bos_token_id, tok.eos_token_id):
        if candidate is not None:
            return candidate
    return None


class TextLM:
    """Log-probabilities of texts under a causal LM, each text tokenised by the LM's own tokenizer.

    Args:
        loaded: a :class:`~pez.models.LoadedModel` of kind "lm" (from :func:`pez.models.load_lm`; any object with its
            ``spec``, ``kind``, ``model`` and ``tokenizer``: the text floor imports no model loader, and
            :func:`pez.models.lm.load_text_lm` loads one by spec, once per process).
        start_id: the token put before every text; default :func:`document_start` (``<|endoftext|>``, else the BOS
            id, else the EOS id).

    Attributes:
        name: the model spec.
        start_id: the token every text is scored after.
        calls: forward passes run so far (one per chunk).
        sequences: texts scored by a forward pass so far (empty texts cost nothing and are not counted).

    Raises:
        PezError: not a causal LM, a tokenizer that cannot encode text, or no start token.
    """

    def __init__(self, loaded, start_id: int | None = None):
        if loaded.kind != "lm" or loaded.tokenizer is None:
            raise PezError(f"{loaded.spec!r} is a {loaded.kind} model: a text scorer needs a causal language model")
        self.name = loaded.spec
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.vocab_size = self.model.get_input_embeddings().num_embeddings
        self.start_id = self._start_id(start_id)
        self.max_len = getattr(self.model.config, "max_position_embeddings", None) or getattr(
            self.model.config, "n_positions", None
        )
        self.calls = 0
        self.sequences = 0

    def _start_id(self, start_id: int | None) -> int:
        tok = self.tokenizer
        try:
            probe = tok(PROBE, add_special_tokens=False)["input_ids"]
            back = tok.decode(probe)
        except Exception as e:  # tokenizers raise many types for a missing vocabulary; all mean the same here
            probe, back = [], f"({type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''})"
        if not probe or back.split() != PROBE.split():
            raise PezError(
                f"the tokenizer of {self.name!r} cannot encode and decode plain text ({PROBE!r} gave {back!r}): "
                "the model folder needs its tokenizer's vocabulary files"
            )
        if start_id is None:
            start_id = document_start(tok)
        if start_id is None:
            raise PezError(
                f"the tokenizer of {self.name!r} has neither a BOS nor an EOS token to start a text after: "
                "pass start_id"
            )
        if not 0 <= start_id < self.vocab_size:
            raise PezError(f"start token id {start_id} is outside the vocabulary of {self.name!r} ({self.vocab_size})")
        return int(start_id)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids under the LM's tokenizer, without special tokens (no BOS)."""
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not one string")
        if not texts:
            return []
        return [list(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    @torch.no_grad()
    def token_logprobs(self, texts: Sequence[str], chunk: int = 64) -> list[torch.Tensor]:
        """Log-probability of each token of each text, the text read as the start of a document.

        Args:
            texts: N texts; an empty text is allowed.
            chunk: texts per forward pass (right-padded, with an attention mask).

        Returns:
            N float32 CPU tensors, the i-th of shape (T_i,) with T_i the number of tokens of text i
            (``log p(t_j | start, t_1 .. t_{j-1})``); shape (0,) for an empty text.
        """
        if chunk < 1:
            raise PezError(f"chunk must be positive, got {chunk}")
        ids = self.encode(texts)
        self._check(ids, texts)
        out: list[torch.Tensor] = [torch.zeros(0) for _ in ids]
        order = sorted((i for i in range(len(ids)) if ids[i]), key=lambda i: len(ids[i]))  # less padding
        for s in range(0, len(order), chunk):
            rows = order[s : s + chunk]
            for i, lp in zip(rows, self._forward([ids[i] for i in rows])):
                out[i] = lp
        return out

    def _check(self, ids: list[list[int]], texts: Sequence[str]) -> None:
        for i, row in enumerate(ids):
            if row and max(row) >= self.vocab_size:
                raise PezError(
                    f"the tokenizer of {self.name!r} gives id {max(row)} for text {i} ({texts[i][:40]!r}), "
                    f"outside the model's {self.vocab_size} embeddings: the tokenizer does not match the model"
                )
            if self.max_len is not None and len(row) + 1 > self.max_len:
                raise PezError(
                    f"text {i} is {len(row)} tokens long under {self.name!r}, over the model's "
                    f"{self.max_len - 1}-token limit: score shorter texts"
                )

    def _run(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """One right-padded forward pass over ``rows`` (B token lists), each after the start token: the logits
        (B, T, V) in fp32, the input ids (B, T) and each row's length with its start token."""
        dev = self.model.get_input_embeddings().weight.device
        lengths = [len(r) + 1 for r in rows]
        T = max(lengths)
        inp = torch.full((len(rows), T), self.start_id, dtype=torch.long)  # pad with any valid id: masked
        mask = torch.zeros((len(rows), T), dtype=torch.long)
        for b, (r, n) in enumerate(zip(rows, lengths)):
            inp[b, 1:n] = torch.tensor(r, dtype=torch.long)
            mask[b, :n] = 1
        inp, mask = inp.to(dev), mask.to(dev)
        self.calls += 1
        return self.model(input_ids=inp, attention_mask=mask).logits.float(), inp, lengths

    @torch.no_grad()
    def next_logits(self, texts: Sequence[str]) -> torch.Tensor:
        """The logits of the token after each text (an empty text: the first token of a document), shape (N, V),
        in one batched pass."""
        logits, _, lengths = self._run(self.encode(texts))
        return logits[torch.arange(len(lengths)), torch.tensor(lengths) - 1]  # (N, V)

    @torch.no_grad()
    def next_logits_along(self, prefixes: Sequence[str]) -> torch.Tensor:
        """:meth:`next_logits` of growing prefixes of one text (each a prefix of the next, the last the whole text),
        read from ONE forward pass of the last: a causal LM's logits after a prefix do not depend on what follows.
        Where the tokenizer splits a prefix otherwise than inside the whole text, every prefix is run, as
        :meth:`next_logits` does. Shape (N, V)."""
        ids = self.encode(prefixes)
        whole = ids[-1] if ids else []
        if not whole or any(row != whole[: len(row)] for row in ids):
            return self.next_logits(prefixes)
        logits, _, _ = self._run([whole])
        return logits[0, torch.tensor([len(row) for row in ids])]  # position k reads the start token + k tokens

    def _forward(self, rows: list[list[int]]) -> list[torch.Tensor]:
        """One right-padded forward pass over ``rows`` (B token lists, none empty); their log-probs on the CPU."""
        logits, inp, lengths = self._run(rows)
        logits = logits[:, :-1]  # (B, T-1, V)
        target = inp[:, 1:]  # (B, T-1): token j+1 is predicted at position j
        lp = logits.gather(-1, target[..., None])[..., 0] - torch.logsumexp(logits, dim=-1)  # (B, T-1)
        self.sequences += len(rows)
        lp = lp.cpu()
        return [lp[b, : n - 1].clone() for b, n in enumerate(lengths)]

    def logprob(self, texts: Sequence[str], chunk: int = 64) -> torch.Tensor:
        """Sum of each text's token log-probabilities (the prior's term).

        Returns:
            float32 CPU tensor of shape (N,); 0 for an empty text.
        """
        lps = self.token_logprobs(texts, chunk)
        return torch.stack([lp.sum() for lp in lps]) if lps else torch.zeros(0)

    def perplexity(self, texts: Sequence[str], chunk: int = 64) -> list[float]:
        """``exp(-mean token log-probability)`` of each text; nan for an empty text."""
        lps = self.token_logprobs(texts, chunk)
        return [float(torch.exp(-lp.mean())) if lp.numel() else float("nan") for lp in lps]

    def __repr__(self) -> str:
        return f"TextLM({self.name!r}, start_id={self.start_id}, calls={self.calls}, sequences={self.sequences})"
