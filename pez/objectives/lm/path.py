"""Run ``[prefix][prompt][row]`` through any transformers causal LM from embeddings (docs/objectives.md#lm-path).

The same code serves gradients (PEZ, HotFlip, GCG, ...) and exact scoring of token ids. Only the logits that a
loss needs are computed: callers gather the final hidden states at the positions they score and only those go
through the output head. The fixed prefix (special tokens such as BOS, and the template's text before the prompt)
is run once; its key/value cache is reused by every forward. All R prompts and N rows of a call share one
right-padded batch of R*N rows. The prompt itself is run once per prompt, not once per row: attention is causal,
so its positions do not depend on the row after it; its key/value cache (which carries the gradient to the prompt)
is repeated for the N rows, which then run after it.
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from pez.errors import PezError
from pez.text.tokenizers import HFTokenizer

logger = logging.getLogger(__name__)


class LMPath:
    """Run ``[prefix][prompt][row]`` through a causal LM from embeddings; logits only where asked.

    Args:
        model: a transformers ``AutoModelForCausalLM`` (its ``base_model`` gives hidden states, its output
            embeddings the logits).
        tokenizer: its tokenizer.
        before_ids: the ids of the template's fixed text before the prompt (after the tokenizer's own prefix, e.g.
            BOS), as :meth:`pez.text.tokenizers.HFTokenizer.context` gives them.
        tok: the tokenizer's adapter, when the caller has one already.

    Attributes:
        shared_prompt: run each prompt once and its N rows after its key/value cache (the default), rather than
            ``[prompt][row]`` in full for every row; both give the same hidden states. Turned off by itself for a
            model whose cache cannot be shared this way (e.g. sliding-window or recurrent layers).
    """

    def __init__(self, model, tokenizer, before_ids: Sequence[int] = (), tok: HFTokenizer | None = None):
        self.model = model
        self.tok = tok if tok is not None else HFTokenizer(tokenizer)
        self.body = model.base_model
        self.head = model.get_output_embeddings()
        if self.head is None:
            raise PezError(f"{type(model).__name__} has no output head: use an AutoModelForCausalLM")
        self.E = model.get_input_embeddings().weight  # (V, D)
        self.device = self.E.device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        config = model.config
        self.softcap = getattr(config, "final_logit_softcapping", None)
        self.logit_scale = getattr(config, "logits_scaling", None)
        self.max_positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", 4096)
        self.prefix_ids = list(self.tok.prefix_ids) + list(before_ids)
        self.shared_prompt = True
        self.cache_kw = cache_kwarg(self.body)  # the modern name where the model takes it: no deprecation notes
        self._prefix_cache = None
        self.prefix_logp = None  # (V,) next-token log-probs after the prefix: scores the prompt's first token
        if self.prefix_ids:
            with torch.no_grad():
                ids = torch.tensor([self.prefix_ids], device=self.device)
                out = self.body(input_ids=ids, use_cache=True)
                self._prefix_cache = cache_of(out)
                self.prefix_logp = self.log_softmax(self.logits(out.last_hidden_state[0, -1:]))[0]
            self.shared_prompt = _shareable(self._prefix_cache)  # else found out at the first shared run

    @property
    def n_prefix(self) -> int:
        return len(self.prefix_ids)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Output logits for hidden states (..., D) -> (..., V), with the model's logit scaling if it has one."""
        z = self.head(hidden)
        if self.logit_scale:
            z = z / self.logit_scale
        if self.softcap:
            z = torch.tanh(z / self.softcap) * self.softcap
        return z

    @staticmethod
    def log_softmax(z: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(z.float(), dim=-1)

    def run(self, prompt: torch.Tensor, rows: Sequence[Sequence[int]]) -> torch.Tensor:
        """Final hidden states of every prompt followed by every row.

        Args:
            prompt: prompt embeddings, shape (R, L, D) (L may be 0).
            rows: N token-id lists of any lengths (right-padded here).

        Returns:
            hidden states, shape (R * N, L + M, D); row n of prompt r is at index ``r * N + n``; M = longest row.
        """
        r, length, _ = prompt.shape
        n, m = len(rows), max(len(x) for x in rows)
        if self.n_prefix + length + m > self.max_positions:
            raise PezError(
                f"an input is too long for this model: {self.n_prefix + length + m} > {self.max_positions} tokens"
            )
        ids = torch.tensor([list(x) + [self.pad_id] * (m - len(x)) for x in rows], device=self.device)  # (N, M)
        keep = torch.tensor([[1] * len(x) + [0] * (m - len(x)) for x in rows], device=self.device)  # (N, M)
        if self.shared_prompt and length > 0 and n > 1:
            hidden = self._run_shared(prompt, ids, keep)
            if hidden is not None:
                return hidden
        return self._run_each(prompt, ids, keep)

    def _prefix_copy(self, batch: int):
        """A copy of the prefix cache for ``batch`` rows (a forward appends to its cache), or None."""
        if self._prefix_cache is None:
            return None
        cache = copy.deepcopy(self._prefix_cache)
        cache.batch_repeat_interleave(batch)
        return cache

    def _run_each(self, prompt: torch.Tensor, ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """:meth:`run` with ``[prompt][row]`` in full for every (prompt, row) pair: (R*N, L+M, D)."""
        (r, length, _), (n, m) = prompt.shape, ids.shape
        x = torch.cat([prompt.to(self.E.dtype).repeat_interleave(n, 0), self.E[ids].repeat(r, 1, 1)], 1)  # (RN, L+M, D)
        mask = torch.cat([keep.new_ones(n, self.n_prefix + length), keep], 1).repeat(r, 1)  # (RN, P+L+M)
        pos = torch.arange(self.n_prefix, self.n_prefix + length + m, device=self.device).expand(r * n, -1)
        cache = self._prefix_copy(r * n)
        out = self.body(
            inputs_embeds=x, attention_mask=mask, position_ids=pos, **{self.cache_kw: cache}, use_cache=False
        )
        return out.last_hidden_state

    def _run_shared(self, prompt: torch.Tensor, ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor | None:
        """:meth:`run` with each prompt run once and its rows after its cache; None where that cannot be done."""
        (r, length, _), (n, m) = prompt.shape, ids.shape
        start = self.n_prefix + length
        pos = torch.arange(self.n_prefix, start, device=self.device).expand(r, -1)  # (R, L)
        out = self.body(
            inputs_embeds=prompt.to(self.E.dtype),
            attention_mask=keep.new_ones(r, start),
            position_ids=pos,
            **{self.cache_kw: self._prefix_copy(r)},
            use_cache=True,
        )
        cache = cache_of(out)  # keys and values of prefix + prompt, (R, heads, P+L, d) per layer
        if not _shareable(cache):
            logger.info("a %s cannot be shared across rows: each row runs its prompt again", type(cache).__name__)
            self.shared_prompt = False
            return None
        cache.batch_repeat_interleave(n)  # (RN, heads, P+L, d): row n of prompt r at r * N + n
        mask = torch.cat([keep.new_ones(n, start), keep], 1).repeat(r, 1)  # (RN, P+L+M)
        pos = torch.arange(start, start + m, device=self.device).expand(r * n, -1)  # (RN, M)
        x = self.E[ids].repeat(r, 1, 1)  # (RN, M, D)
        rest = self.body(
            inputs_embeds=x, attention_mask=mask, position_ids=pos, **{self.cache_kw: cache}, use_cache=False
        )
        return torch.cat([out.last_hidden_state.repeat_interleave(n, 0), rest.last_hidden_state], 1)

    def prompt_nll(self, hidden: torch.Tensor, ids: torch.Tensor, n_rows: int) -> torch.Tensor:
        """Mean negative log-likelihood of each prompt's own tokens, shape (R,).

        Args:
            hidden: from :meth:`run`, (R * n_rows, L + M, D).
            ids: the prompt's token ids, (R, L).
            n_rows: rows per prompt in that run.
        """
        r, length = ids.shape
        h = hidden[::n_rows, : length - 1]  # (R, L-1, D): position l predicts token l+1 (causal: any row will do)
        nll = -self.log_softmax(self.logits(h)).gather(-1, ids[:, 1:, None]).squeeze(-1).sum(1)  # (R,)
        count = length - 1
        if self.prefix_logp is not None:
            nll = nll - self.prefix_logp[ids[:, 0]]
            count += 1
        return nll / max(count, 1)


def cache_kwarg(model) -> str:
    """The name a model's forward takes its key/value cache by: ``cache`` (transformers 5.x, where the old
    ``past_key_values`` prints a deprecation note at every run) or ``past_key_values`` (4.x)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def cache_of(out):
    """The key/value cache a forward returned: ``out.cache`` (transformers 5.x; reading ``past_key_values`` there
    prints a deprecation note) or ``out.past_key_values`` (4.x)."""
    found = getattr(out, "cache", None)
    return found if found is not None else out.past_key_values


def _shareable(cache) -> bool:
    """Whether a cache can be repeated across rows and extended: a plain DynamicCache of full-attention layers."""
    from transformers import DynamicCache

    if type(cache) is not DynamicCache:
        return False
    layers = getattr(cache, "layers", None)  # transformers < 4.56 keeps plain lists of tensors
    return layers is None or all(type(layer).__name__ == "DynamicLayer" for layer in layers)


@torch.no_grad()
def sample_inputs(model, tokenizer, n: int, max_new_tokens: int = 24, seed: int = 0) -> list[str]:
    """Sample ``n`` short texts from the model itself (inputs for compression when no data is given)."""
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if start is None:
        raise PezError("this tokenizer has neither a BOS nor an EOS token to sample inputs from: pass --data")
    device = model.get_input_embeddings().weight.device
    gen = torch.Generator(device=device).manual_seed(seed)
    ids = torch.full((n, 1), start, device=device)
    past = None
    out = []
    kw = cache_kwarg(model)
    for _ in range(max_new_tokens):
        res = model(input_ids=ids[:, -1:] if past is not None else ids, **{kw: past}, use_cache=True)
        past = cache_of(res)
        probs = F.softmax(res.logits[:, -1].float(), -1)
        nxt = torch.multinomial(probs, 1, generator=gen)
        ids = torch.cat([ids, nxt], 1)
    for row in ids[:, 1:].tolist():
        text = tokenizer.decode(row, skip_special_tokens=True).strip()
        out.append(text if text else "Hello")
    return out


def perplexity(path: LMPath, ids: Sequence[int]) -> float:
    """Perplexity of a prompt's own tokens under the model (how readable it is to the LM)."""
    t = torch.tensor([list(ids)], device=path.device)
    with torch.no_grad():
        hidden = path.run(path.E[t], [[path.pad_id]])
        return math.exp(float(path.prompt_nll(hidden, t, 1)[0]))
