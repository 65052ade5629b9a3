"""VGD: Visually Guided Decoding (Kim, Bae, Shim and Shim, "Visually Guided Decoding: Gradient-Free Hard Prompt
Inversion with Language Models", ICLR 2025, arXiv 2505.08622).

Gradient-free beam search. A causal LM, the proposer, is asked (chat template when it has one) to write a prompt,
with the allowed encoder token of best one-token score put in the request as a keyword (``first_word``). Each
step every beam proposes its ``candidates`` most likely next tokens; the text of each continuation is encoded
with the objective's own tokenizer and scored (``-eval_loss_ids``, a cosine), and beams are kept by

    lm_weight * cumulative log p_LM(continuation) + clip_weight * log_softmax(logit_scale * score)

with the log-softmax taken over all the step's continuations of that prompt. The encoder never proposes tokens,
it re-ranks the proposer's, so the text stays fluent. A continuation is dropped when it ends (end of sequence or
a newline) before ``min_tokens``, when its text takes more than ``prompt_len`` encoder tokens, or when it breaks
``ascii_only`` / ``blocklist``. A search ends after ``max_tokens`` proposer tokens, when no beam is left, or once
more than ``beams`` continuations have ended; VGD's own pick of it (best kept or ended beam by that score over
the paper's length penalty ``((5 + n) / 6) ** length_penalty``) goes to ``extras["searches"]``.

In pez's loop: a step extends every prompt's beams by one token and reports, per prompt, its kept or ended beam
of best score as the encoder ids of its text (padded with -1); :meth:`VGD.decode` gives back the proposer's text
of those ids, and the loop keeps the best and scores that text honestly. When a search ends the next step starts
another from the next keyword (``init_text`` first, then the allowed tokens by one-token score; restart r of R
takes every R-th), until ``searches`` are done (``stopped_by`` "finished"), ``steps`` or a budget. The keyword
ranking (one encoder pass per allowed token) runs in the first step; proposer forwards add one sequence per beam
to the objective's pass counts. Nothing is random: the seed changes nothing.
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
from dataclasses import dataclass

import torch

from pez.errors import PezError
from pez.objectives.lm.path import cache_of
from pez.optim.config import CandidateConfig, check_nonnegative, check_positive, config_field
from pez.optim.loop import PromptOptimizer

log = logging.getLogger(__name__)

REQUEST = "Describe the picture in one sentence for an image generator: its objects, people, background and style."
SYSTEM = "You write prompts for text-to-image models. Answer with one sentence and nothing else."
MAX_CONTINUATIONS = 4096  # beams x candidates scored per prompt per step
PAD = -1


def load_proposer(spec: str, device: torch.device | str):
    """The proposer LM ``spec`` on ``device``: the process's one cache of causal LMs
    (:func:`pez.models.lm.load_text_lm`), shared with the prior and the judge, so one LM loads once."""
    from pez.models.lm import load_text_lm

    return load_text_lm(spec, device)


@dataclass
class VGDConfig(CandidateConfig):
    """VGD with the paper's defaults (10 beams x 10 candidates, weights 1.0 and 1.5, CLIP's logit scale 100)."""

    proposer: str = config_field("smollm2", "causal LM that proposes the tokens (smollm2, a folder or a hub name)")
    beams: int = config_field(10, "beams kept per prompt")
    candidates: int = config_field(10, "next tokens each beam proposes per step")
    lm_weight: float = config_field(1.0, "weight of a beam's cumulative log-probability under the proposer")
    clip_weight: float = config_field(1.5, "weight of the log-softmax, over a step's continuations, of their logit")
    logit_scale: float = config_field(100.0, "logit = logit-scale x score (CLIP's 100)")
    first_word: bool = config_field(True, "put the allowed token of best one-token score in the request")
    request: str = config_field(REQUEST, "what the proposer is asked for (its user message)")
    system_prompt: str = config_field(SYSTEM, "the proposer's system message ('' for none)")
    answer_start: str = config_field("", "text the proposer's answer starts with (not part of the prompt)")
    max_tokens: int | None = config_field(None, "proposer tokens per search at most (None: prompt-len)")
    min_tokens: int | None = config_field(None, "proposer tokens before a beam may end (None: half of max-tokens)")
    length_penalty: float = config_field(1.2, "exponent a of VGD's own pick: score / ((5 + n) / 6) ** a")
    searches: int | None = config_field(None, "beam searches per prompt, each from the next keyword (None: no limit)")

    def __post_init__(self):
        super().__post_init__()
        check_positive(self, "beams", "candidates", "logit_scale", "max_tokens", "min_tokens", "searches")
        if self.beams * self.candidates > MAX_CONTINUATIONS:
            raise PezError(
                f"beams x candidates must be at most {MAX_CONTINUATIONS}, got {self.beams * self.candidates}"
            )
        check_nonnegative(self, "lm_weight", "clip_weight", "length_penalty", "logit_scale")
        if self.lm_weight == 0 and self.clip_weight == 0:
            raise PezError("lm-weight and clip-weight are both 0: nothing would rank the beams")
        if not isinstance(self.proposer, str) or not self.proposer.strip():
            raise PezError(f"proposer must name a causal LM (smollm2, a folder or a hub name), got {self.proposer!r}")
        if not isinstance(self.request, str) or not self.request.strip():
            raise PezError("request must say what the proposer should write, got an empty text")
        if self.min_tokens is not None and self.min_tokens > self.max_new:
            raise PezError(f"min-tokens ({self.min_tokens}) must be at most max-tokens ({self.max_new})")
        if self.restarts > 1 and not self.first_word:
            raise PezError("restarts > 1 needs first-word: without keywords every restart runs the same search")

    @property
    def max_new(self) -> int:
        return self.max_tokens or self.prompt_len

    @property
    def min_new(self) -> int:
        return self.min_tokens or max(1, self.max_new // 2)


def check_text_objective(obj) -> None:
    """VGD scores decoded text as a cosine: the objective needs ``vocab.encode``, ``eval_loss_ids``, cosines."""
    scores_text = callable(getattr(getattr(obj, "vocab", None), "encode", None)) and callable(
        getattr(obj, "eval_loss_ids", None)
    )
    if not scores_text or getattr(obj, "score_name", None) != "cosine":
        raise PezError(
            f"vgd ranks texts by an encoder's cosine: {type(obj).__name__} is not one (use a CLIP or sentence encoder)"
        )


class VGD(PromptOptimizer):
    name = "vgd"
    config_class = VGDConfig

    def __init__(self, objective, config: VGDConfig):
        check_text_objective(objective)
        self.lm = load_proposer(config.proposer, objective.vocab.embeddings.device)
        tok = self.lm.tokenizer
        self.n_vocab = len(tok)  # logits past the tokenizer's ids (padded rows) are never proposed
        if config.candidates > self.n_vocab:
            raise PezError(f"candidates ({config.candidates}) exceeds the proposer's vocabulary ({self.n_vocab})")
        self.special = set(tok.all_special_ids)
        params = inspect.signature(self.lm.model.forward).parameters
        self.cache_kw = "cache" if "cache" in params else "past_key_values"  # transformers >= 5 says "cache"
        self.last_only = {"logits_to_keep": 1} if "logits_to_keep" in params else {}  # no logits for the rest
        super().__init__(objective, config)

    # -- state ------------------------------------------------------------------------------------------------
    def init(self, ids: torch.Tensor) -> None:  # the loop's random initial ids are not used: VGD starts from nothing
        r = self.n_prompts
        self.group_list = self.group.tolist()
        self.started = [0] * r  # searches started per prompt
        self.keyword: list[str | None] = [None] * r  # the keyword of each prompt's current search
        self.beams: list[list[dict] | None] = [None] * r  # {"ids", "lm", "score", "total"}; None: start a search
        self.ended: list[list[dict]] = [[] for _ in range(r)]  # continuations that ended in the current search
        self.picks: list[list[dict]] = [[] for _ in range(r)]  # VGD's own pick of each finished search
        self.report: list[dict | None] = [None] * r  # {"ids", "text", "lm_ids", "loss"}: each prompt's last report
        self.texts: dict[tuple[int, ...], str] = {}  # encoder ids reported -> the proposer's text (the first seen)
        self.done = [False] * r
        self._prefix: dict[int, tuple] = {}  # prompt -> (keyword, request ids, their cache, first-token log p)
        self._chunk_cap = math.inf
        # set-up, like the encoder's target features: one pass over the allowed tokens, before the first step (the
        # first step must not be a hundred times the cost of the next); a budget of seconds counts it
        self.ranked = self.rank_first_words() if self.cfg.first_word else None

    @property
    def finished(self) -> bool:
        return all(self.done)

    def state_dict(self) -> dict:
        keys = ("ranked", "started", "keyword", "beams", "ended", "picks", "report", "done")
        return {k: getattr(self, k) for k in keys} | {"texts": [[list(k), v] for k, v in self.texts.items()]}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)
        self.ranked = None if self.ranked is None else [t.cpu() for t in self.ranked]
        self.texts = {tuple(k): v for k, v in state["texts"]}
        self._prefix = {}

    def result_extras(self, group: int) -> dict:
        return {"searches": [p for r, g in enumerate(self.group_list) if g == group for p in self.picks[r]]}

    # -- text --------------------------------------------------------------------------------------------------
    def decode(self, ids: list[int]) -> str:
        """The proposer's text that a reported prompt's encoder ids came from (the encoder's own decoding of ids
        never reported, which the loop then scores afresh)."""
        return self.texts.get(tuple(ids)) or self.obj.vocab.decode(ids)

    def text_of(self, lm_ids: list[int]) -> str:
        """The prompt text of proposer ids: decoded without special tokens, up to a newline, stripped."""
        return self.lm.tokenizer.decode(lm_ids, skip_special_tokens=True).split("\n")[0].strip()

    def keyword_of(self, r: int, search: int) -> str | None:
        """The keyword of prompt ``r``'s search number ``search`` ("" for none), or None when no search is left."""
        cfg = self.cfg
        if cfg.searches is not None and search >= cfg.searches:
            return None
        i = search * cfg.restarts + r % cfg.restarts
        first = [cfg.init_text] if cfg.init_text else []
        if i < len(first):
            return first[i]
        if not cfg.first_word:
            return "" if i == 0 else None
        ranked = self.ranked[self.group_list[r]]
        j = i - len(first)
        return self.obj.vocab.decode([ranked[j].item()]).strip() if j < len(ranked) else None

    def prefix_ids(self, keyword: str) -> list[int]:
        """The proposer's input before the prompt: system message, request (with the keyword), answer start."""
        tok, cfg = self.lm.tokenizer, self.cfg
        request = f"{cfg.request} Keyword: {keyword}" if keyword else cfg.request
        if getattr(tok, "chat_template", None):
            system = [{"role": "system", "content": cfg.system_prompt}] if cfg.system_prompt else []
            messages = [*system, {"role": "user", "content": request}]
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return tok(text + cfg.answer_start, add_special_tokens=False)["input_ids"]
        text = "\n\n".join(t for t in (cfg.system_prompt, request) if t) + "\n" + cfg.answer_start
        return tok(text)["input_ids"]

    # -- scoring -----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def losses(self, ids: list[list[int]], group: list[int]) -> list[float]:
        """Eval loss of prompts given as encoder ids, in forwards of at most ``eval_chunk`` (halved on CUDA OOM)."""
        out, start, g = [], 0, torch.tensor(group, device=self.device)
        while start < len(ids):
            n = min(self.cfg.eval_chunk, self._chunk_cap, len(ids) - start)
            try:
                with self.autocast():
                    out += self.obj.eval_loss_ids(ids[start : start + n], g[start : start + n]).float().tolist()
            except torch.OutOfMemoryError:
                if n == 1:
                    raise
                self._chunk_cap = n // 2
                torch.cuda.empty_cache()
                log.warning("out of memory scoring texts: %d per forward from now on", self._chunk_cap)
                continue
            start += n
        return out

    def rank_first_words(self) -> list[torch.Tensor]:
        """Per group, the allowed tokens (of a prompt's first position) by one-token score, best first."""
        allowed = self.allowed[0].nonzero().squeeze(1).cpu()  # (A,)
        if hasattr(self.obj, "one_token_losses"):  # an encoder: the tokens encoded once, for every group
            with self.autocast():
                loss = self.obj.one_token_losses(allowed.to(self.device), self.cfg.eval_chunk).float().cpu()
            return [allowed[row.argsort(stable=True)] for row in loss]
        one = [[t] for t in allowed.tolist()]
        ranked = []
        for g in range(self.obj.n_groups):
            loss = torch.tensor(self.losses(one, [g] * len(one)))
            ranked.append(allowed[loss.argsort(stable=True)])
        return ranked

    @torch.no_grad()
    def next_logp(self, r: int, beams: list[list[int]]) -> torch.Tensor:
        """log p of the proposer's next token after each beam of prompt ``r``, shape (B, V) in fp32.

        The request's keys and values are computed once per search; each step runs every beam's tokens on a copy
        of them, so a step's numbers depend only on the beams (a resumed run computes the same)."""
        model, key = self.lm.model, self.keyword[r]
        if r not in self._prefix or self._prefix[r][0] != key:
            x = torch.tensor([self.prefix_ids(key)], device=self.device)
            with self.autocast():
                out = model(x, use_cache=True, **self.last_only)
            self.obj.counts["forward"] += 1
            cache = cache_of(out)  # not out.get("past_key_values"): a deprecation note in 5.x
            self._prefix[r] = (key, x, cache, out.logits[:, -1, : self.n_vocab].float().log_softmax(-1))
        _, x, cache, first = self._prefix[r]
        if not beams[0]:  # a new search: one beam, nothing generated yet
            return first
        gen = torch.tensor(beams, device=self.device)  # (B, t)
        self.obj.counts["forward"] += len(beams)
        with self.autocast():
            if cache is None:  # a model without a cache runs the request too
                logits = model(torch.cat([x.expand(len(beams), -1), gen], 1), **self.last_only).logits
            else:
                c = copy.deepcopy(cache)
                c.batch_repeat_interleave(len(beams))
                logits = model(gen, **{self.cache_kw: c}, use_cache=True, **self.last_only).logits
        return logits[:, -1, : self.n_vocab].float().log_softmax(-1)

    # -- the step ----------------------------------------------------------------------------------------------
    def step(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Extend every prompt's beams by one proposer token (a new search first where the last one ended)."""
        cfg, vocab = self.cfg, self.obj.vocab
        props = {}  # prompt -> its continuations: {"ids", "lm", "end", "text"}, then "score", "fits", "total"
        for r in range(self.n_prompts):
            if self.done[r]:
                continue
            if self.beams[r] is None:  # a new search
                self.keyword[r] = self.keyword_of(r, self.started[r])
                self.started[r] += 1
                self.beams[r], self.ended[r] = [{"ids": [], "lm": 0.0, "score": math.nan, "total": 0.0}], []
            beams = self.beams[r]
            top = self.next_logp(r, [b["ids"] for b in beams]).topk(cfg.candidates, dim=-1)  # (B, k)
            props[r] = []
            for b, values, tokens in zip(beams, top.values.tolist(), top.indices.tolist()):
                for lp, t in zip(values, tokens):
                    ids = [*b["ids"], t]
                    text = self.text_of(ids)
                    end = t in self.special or "\n" in self.lm.tokenizer.decode([t])
                    props[r].append({"ids": ids, "lm": b["lm"] + lp, "end": end, "text": text})
        flat = [(r, c) for r, cs in props.items() for c in cs]
        enc = [vocab.encode(c["text"]) for _, c in flat]
        losses = self.losses([e[: vocab.max_len] for e in enc], [self.group_list[r] for r, _ in flat])
        for (_, c), e, loss in zip(flat, enc, losses):
            c["score"], c["fits"], c["enc"] = -loss, len(e) <= cfg.prompt_len, e[: vocab.max_len]
        for r, cs in props.items():
            self.select(r, cs)
        return self.reported()

    def select(self, r: int, cs: list[dict]) -> None:
        """Keep prompt ``r``'s best ``beams`` continuations; record ended ones; end the search when it is over."""
        cfg = self.cfg
        logit = torch.tensor([c["score"] for c in cs], dtype=torch.float64) * cfg.logit_scale
        for c, ls in zip(cs, logit.log_softmax(0).tolist()):
            c["total"] = cfg.lm_weight * c["lm"] + cfg.clip_weight * ls
        n = len(cs[0]["ids"])  # tokens generated, the same for every continuation
        blocked = [b.lower() for b in cfg.blocklist if b.strip()]

        def valid(c):
            clean = (c["text"].isascii() or not cfg.ascii_only) and not any(b in c["text"].lower() for b in blocked)
            return c["fits"] and clean and (n > cfg.min_new or not c["end"])

        ok = [c for c in cs if valid(c)]
        keep = sorted((c for c in ok if not c["end"]), key=lambda c: -c["total"])[: cfg.beams]
        ended = [c for c in ok if c["end"]]
        for c in ended:  # an ended beam's text is that of its ids without a final special token
            c["ids"] = c["ids"][:-1] if c["ids"][-1] in self.special else c["ids"]
        self.ended[r] += [{k: c[k] for k in ("ids", "lm", "score", "total")} | {"n": n} for c in ended]
        self.beams[r] = [{k: c[k] for k in ("ids", "lm", "score", "total")} for c in keep]
        shown = keep + ended or ([] if self.report[r] else cs)  # a prompt always reports something
        if shown:
            best = max(shown, key=lambda c: c["score"])
            self.report[r] = {"ids": best["enc"], "text": best["text"], "lm_ids": best["ids"], "loss": -best["score"]}
            self.texts.setdefault(tuple(best["enc"]), best["text"])
        if not keep or n >= cfg.max_new or len(self.ended[r]) > cfg.beams:
            self.finish(r)

    def finish(self, r: int) -> None:
        """End prompt ``r``'s search: VGD's own pick (score over the length penalty) into ``picks``."""
        last = [b | {"n": len(b["ids"])} for b in self.beams[r][:1]]
        pool = self.ended[r] + last
        if pool:
            penalised = [b["total"] / ((5 + b["n"]) / 6) ** self.cfg.length_penalty for b in pool]
            i = max(range(len(pool)), key=penalised.__getitem__)
            text = self.text_of(pool[i]["ids"])
            self.picks[r].append(
                {"keyword": self.keyword[r], "text": text, "score": pool[i]["score"], "vgd": penalised[i]}
            )
        self.beams[r], self.ended[r] = None, []
        self.done[r] = self.keyword_of(r, self.started[r]) is None

    def reported(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each prompt's latest report: the encoder ids of its text padded with -1 (R, max_len), their loss (R,)."""
        ids = torch.full((self.n_prompts, self.obj.vocab.max_len), PAD, dtype=torch.long)
        for r, rep in enumerate(self.report):
            ids[r, : len(rep["ids"])] = torch.tensor(rep["ids"], dtype=torch.long)
        loss = torch.tensor([rep["loss"] for rep in self.report])
        return ids.to(self.device), loss.to(self.device)
