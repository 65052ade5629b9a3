"""APE: Automatic Prompt Engineer (Zhou et al., "Large Language Models Are Human-Level Prompt Engineers", ICLR 2023,
arXiv 2211.01910), the instruction-proposal baseline of LM tasks (docs/algorithms.md#baselines).

An LM, the proposer (the task's own model by default), sees a few labelled training examples and writes candidate
instructions ("forward generation": the examples, then "write the instruction"); every candidate is scored exactly
on the dev split (the objective's ``eval_loss_ids``, as every method's prompts are), and later steps resample the
best ones as variations ("Generate a variation of the following instruction while keeping the semantic meaning",
the paper's iterative Monte Carlo search), with a share of fresh proposals from new examples. No gradient.
A person's instruction (``init_text``) is scored first and enters the pool as step 0, so the first step already
writes variations of it (and keeps it unless a candidate scores better on dev). With ``max_nll_rise`` the pool keeps
only texts that read at most that much worse (mean NLL per token under ``prior``) than the person's: a variation that
scores better on dev but reads worse is scored and listed (``pooled`` False), never resampled or returned.

In pez's loop: a step proposes ``instructions`` per prompt (sampled with the run's seeded
``torch.Generator``), scores them all, and reports the best of the step as the encoder ids of its text (padded
with -1); every scored candidate, its dev score and its dev accuracy go to ``extras["candidates"]``. A proposer
without a chat template gets the same request as plain text (said once in the log and in ``extras``). An
instruction longer than ``prompt_len`` tokens is cut at its last sentence end (or word) that fits.
"""

from __future__ import annotations

import copy
import inspect
import logging
from dataclasses import dataclass

import torch

from pez.errors import PezError
from pez.objectives.lm.path import cache_of
from pez.optim.config import CandidateConfig, check_nonnegative, check_positive, config_field
from pez.optim.loop import PromptOptimizer

log = logging.getLogger(__name__)

INDUCE = (
    "Here are examples of a task: each input and its answer.\n\n{demos}\n\n"
    "Write the instruction that tells someone how to answer, in one short sentence."
)
PARAPHRASE = "Rewrite this instruction in a few words, keeping its meaning:\n\n{instruction}"
VARY = (
    "Generate a variation of the following instruction while keeping the semantic meaning.\n\n"
    "Instruction: {instruction}"
)
SYSTEM = "You write short instructions for a language model. Answer with the instruction only."
PAD = -1
PERSON = "your instruction (--init-text)"  # the origin of a person's instruction in APE's rows
ENDS = ".?!:"


@dataclass
class APEConfig(CandidateConfig):
    """APE's forward generation and iterative resampling, on a local proposer."""

    proposer: str | None = config_field(None, "causal LM that writes the instructions (None: the task's own model)")
    demos: int = config_field(5, "labelled training examples shown in each proposal request")
    instructions: int = config_field(8, "instructions APE proposes and scores per prompt per step")
    keep: int = config_field(4, "best instructions so far that later steps resample as variations")
    fresh: float = config_field(0.25, "share of a later step's instructions proposed from new examples (0 to 1)")
    temperature: float = config_field(0.9, "sampling temperature of the proposer")
    top_p: float = config_field(0.95, "nucleus sampling: the smallest set of tokens with this probability")
    max_new_tokens: int | None = config_field(None, "proposer tokens per instruction at most (None: 3 x prompt-len)")
    induce_request: str = config_field(INDUCE, "APE's proposal request; {demos} is replaced by the examples")
    paraphrase_request: str = config_field(PARAPHRASE, "APE's request on a compression; {instruction}: the long one")
    variation_request: str = config_field(VARY, "APE's variation request; {instruction}: the one to vary")
    system_prompt: str = config_field(SYSTEM, "the proposer's system message ('' for none)")
    max_nll_rise: float | None = config_field(
        None,
        "with --init-text: keep out of the pool every instruction whose mean NLL per token under --prior "
        "exceeds the init text's by more (scored and listed all the same; None: any)",
    )

    def __post_init__(self):
        super().__post_init__()
        check_positive(self, "demos", "instructions", "keep", "temperature", "top_p", "max_new_tokens")
        check_nonnegative(self, "max_nll_rise", allow_none=True)
        if not 0 <= self.fresh <= 1:
            raise PezError(f"--fresh must be from 0 to 1 (a share of the candidates), got {self.fresh}")
        if self.top_p > 1:
            raise PezError(f"--top-p must be at most 1, got {self.top_p}")
        if "{demos}" not in self.induce_request:
            raise PezError("induce-request must contain {demos} (where the labelled examples go)")
        for name in ("variation_request", "paraphrase_request"):
            if "{instruction}" not in getattr(self, name):
                raise PezError(f"{name.replace('_', '-')} must contain {{instruction}} (where the instruction goes)")
        if self.proposer is not None and (not isinstance(self.proposer, str) or not self.proposer.strip()):
            raise PezError(f"proposer must name a causal LM (or be left out), got {self.proposer!r}")


def check_task_objective(obj) -> None:
    """APE writes instructions from labelled training examples (an LM classification task that keeps them) or, for
    ``pez compress``, short paraphrases of the long instruction (an objective with an ``instruction``)."""
    examples = getattr(obj, "examples", None)
    labelled = isinstance(examples, dict) and examples.get("train") and getattr(obj, "task", None) is not None
    if not labelled and not isinstance(getattr(obj, "instruction", None), str):
        raise PezError(f"ape writes instructions from labelled examples: {type(obj).__name__} has none "
                       "(use it on an LM task: pez discover, pez compress, pez compare --data)")  # fmt: skip


class APE(PromptOptimizer):
    name = "ape"
    config_class = APEConfig

    def __init__(self, objective, config: APEConfig):
        check_task_objective(objective)
        if config.proposer is None:
            self.lm_model, self.lm_tok = objective.model, objective.path.tok.tok
        else:
            from pez.models.lm import load_text_lm

            prior = load_text_lm(config.proposer, objective.vocab.embeddings.device)
            self.lm_model, self.lm_tok = prior.model, prior.tokenizer
        self.chat = bool(getattr(self.lm_tok, "chat_template", None))
        if not self.chat:
            log.warning("the proposer %s has no chat template: its requests go as plain text",
                        config.proposer or "(the task's model)")  # fmt: skip
        params = inspect.signature(self.lm_model.forward).parameters
        self.cache_kw = "cache" if "cache" in params else "past_key_values"
        self.last_only = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
        self.n_vocab = len(self.lm_tok)
        super().__init__(objective, config)

    # -- state ------------------------------------------------------------------------------------------------
    def init(self, ids: torch.Tensor) -> None:  # the loop's random ids are not used: APE starts from examples
        r = self.n_prompts
        self.pool: list[list[tuple[float, str]]] = [[] for _ in range(r)]  # (dev loss, text), best first
        self.scored: list[list[dict]] = [[] for _ in range(r)]  # every candidate scored, in order
        self._texts: dict[tuple[int, ...], str] = {}  # encoder ids -> the text they were made from
        self.bound: float | None = None  # with init_text and max_nll_rise: the most mean NLL a pooled text has
        self._nll: dict[str, float] = {}  # text -> mean NLL per prior token (the texts the bound was checked on)
        if self.cfg.init_text:
            self.seed_pool(self.cfg.init_text)

    def seed_pool(self, text: str) -> None:
        """Score a person's instruction as every candidate is scored and put it in every prompt's pool (step 0);
        with ``max_nll_rise``, its mean NLL under the prior plus the rise bounds every text the pool keeps."""
        found = self.clean(text)
        if found is None:
            raise PezError(f"--init-text {text!r} leaves no instruction APE can use (blocked words, or nothing left "
                           "after ascii-only): give another text")  # fmt: skip
        if self.cfg.max_nll_rise is not None:
            self.bound = self.text_nll([found[0]])[0] + self.cfg.max_nll_rise
        first: dict[int, int] = {}  # group -> the row that scored the text (its dev split is the group's)
        for r, g in enumerate(self.group.tolist()):
            if g not in first:
                first[g] = r
                self.add(r, 0, {found[0]: (found[1], PERSON)})
                continue
            row = dict(self.scored[first[g]][0])  # the same text on the same split: its row, not a second scoring
            self.scored[r].append(row)
            if row["pooled"]:
                self.pool[r].append((-row["score"], row["text"]))

    def text_nll(self, texts: list[str]) -> list[float]:
        """Mean NLL per token of each text under the prior LM (``--prior``), as readable mode measures it."""
        from pez.models.lm import load_text_lm
        from pez.objectives.prior import mean_nll

        return mean_nll(load_text_lm(self.cfg.prior, self.device), texts, self._nll)

    def state_dict(self) -> dict:
        return {"pool": self.pool, "scored": self.scored, "texts": [[list(k), v] for k, v in self._texts.items()]}

    def load_state_dict(self, state: dict) -> None:
        self.pool = [[tuple(p) for p in pool] for pool in state["pool"]]
        self.scored = state["scored"]
        self._texts = {tuple(k): v for k, v in state["texts"]}

    def decode(self, ids: list[int]) -> str:
        return self._texts.get(tuple(ids)) or super().decode(ids)

    def result_extras(self, group: int) -> dict:
        rows = [c for r, g in enumerate(self.group.tolist()) if g == group for c in self.scored[r]]
        return {"candidates": rows, "request_format": "chat template" if self.chat else "plain text (no chat template)"}

    # -- proposing ----------------------------------------------------------------------------------------------
    def prefix_ids(self, request: str) -> list[int]:
        tok, cfg = self.lm_tok, self.cfg
        if self.chat:
            system = [{"role": "system", "content": cfg.system_prompt}] if cfg.system_prompt else []
            text = tok.apply_chat_template([*system, {"role": "user", "content": request}], tokenize=False,
                                           add_generation_prompt=True)  # fmt: skip
            return tok(text, add_special_tokens=False)["input_ids"]
        text = "\n\n".join(t for t in (cfg.system_prompt, request) if t) + "\nInstruction:"
        return tok(text)["input_ids"]

    def induce_request(self) -> str:
        """The proposal request with ``demos`` training examples drawn with the run's generator (a compression
        task: the paraphrase request of its instruction)."""
        if getattr(self.obj, "instruction", None) is not None and not getattr(self.obj, "examples", None):
            return self.cfg.paraphrase_request.replace("{instruction}", self.obj.instruction)
        train, v = self.obj.examples["train"], self.obj.task.verbalizer
        k = min(self.cfg.demos, len(train))
        pick = torch.randperm(len(train), generator=self.gen, device=self.gen.device)[:k].tolist()
        demos = "\n\n".join(
            f"Input: {train[i].text.strip()}\nAnswer: {v.words[v.index(train[i].label)].strip()}" for i in pick
        )
        return self.cfg.induce_request.replace("{demos}", demos)

    @torch.no_grad()
    def sample(self, request: str, n: int) -> list[str]:
        """``n`` texts the proposer writes after ``request``, sampled (temperature, nucleus) with the run's
        generator; each stops at the end of the turn or a newline."""
        cfg, model, tok = self.cfg, self.lm_model, self.lm_tok
        dev = model.get_input_embeddings().weight.device
        x = torch.tensor([self.prefix_ids(request)], device=dev)
        with self.autocast():
            out = model(x, use_cache=True, **self.last_only)
        self.obj.counts["forward"] += 1
        cache = cache_of(out)  # not out.get("past_key_values"): a deprecation note in 5.x
        logits = out.logits[:, -1, : self.n_vocab].float().expand(n, -1)
        if cache is not None:
            cache = copy.deepcopy(cache)
            cache.batch_repeat_interleave(n)
        stop = {t for t in (tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")) if isinstance(t, int)}
        rows: list[list[int]] = [[] for _ in range(n)]
        done = [False] * n
        steps: list[torch.Tensor] = []  # every sampled token (n, 1), for a model without a cache
        for _ in range(cfg.max_new_tokens or 3 * cfg.prompt_len):
            probs = (logits / cfg.temperature).softmax(-1)
            top, order = probs.sort(-1, descending=True)
            top[(top.cumsum(-1) - top) > cfg.top_p] = 0  # the nucleus (the most likely token always stays)
            nxt = order.gather(-1, torch.multinomial(top, 1, generator=self.gen))  # (n, 1)
            for b, t in enumerate(nxt[:, 0].tolist()):
                if not done[b]:
                    done[b] = t in stop or "\n" in tok.decode([t])
                    if not done[b]:
                        rows[b].append(t)
            if all(done):
                break
            steps.append(nxt)
            self.obj.counts["forward"] += n
            with self.autocast():
                if cache is None:
                    out = model(torch.cat([x.expand(n, -1), *steps], 1), **self.last_only)
                else:
                    out = model(nxt, **{self.cache_kw: cache}, use_cache=True, **self.last_only)
            logits = out.logits[:, -1, : self.n_vocab].float()
        return [tok.decode(r, skip_special_tokens=True) for r in rows]

    def clean(self, text: str) -> tuple[str, list[int]] | None:
        """The instruction in a proposer's answer, cut to ``prompt_len`` encoder tokens (at its last sentence end,
        else its last whole word, that fits), with its ids; None when nothing usable is left."""
        text = text.strip().strip("\"'` ").strip()
        for lead in ("Instruction:", "instruction:", "Output:"):
            if text.startswith(lead):
                text = text[len(lead) :].strip().strip("\"'` ")
        if self.cfg.ascii_only:
            text = text.encode("ascii", "ignore").decode()
        if not text or any(b.lower() in text.lower() for b in self.cfg.blocklist):
            return None
        vocab, n = self.obj.vocab, self.cfg.prompt_len
        ids = vocab.encode(text)
        if len(ids) > n:
            cut = vocab.decode(ids[:n])
            ends = [i for i, c in enumerate(cut) if c in ENDS]
            cut = cut[: ends[-1] + 1] if ends else cut.rsplit(" ", 1)[0] if " " in cut.strip() else cut
            text = cut.strip()
            ids = vocab.encode(text)
        if not ids or len(ids) > n:
            return None
        return text, ids

    # -- the step ----------------------------------------------------------------------------------------------
    def requests(self, r: int) -> list[tuple[str, int, str]]:
        """This step's requests for prompt ``r``: (request, samples, origin)."""
        cfg, pool = self.cfg, self.pool[r]
        n_fresh = cfg.instructions if not pool else round(cfg.instructions * cfg.fresh)
        origin = "proposed from examples" if getattr(self.obj, "examples", None) else "paraphrase of the instruction"
        out = [(self.induce_request(), n_fresh, origin)] if n_fresh else []
        parents = [t for _, t in pool[: cfg.keep]]
        n_var = cfg.instructions - n_fresh
        for i, parent in enumerate(parents):
            k = n_var // len(parents) + (i < n_var % len(parents)) if parents else 0
            if k:
                out.append((cfg.variation_request.replace("{instruction}", parent), k, f"variation of: {parent}"))
        return out

    def step(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        n, r_all = self.cfg.prompt_len, self.n_prompts
        out_ids = torch.full((r_all, n), PAD, dtype=torch.long, device=self.device)
        out_loss = torch.full((r_all,), float("inf"), device=self.device)
        for r in range(r_all):
            seen = {c["text"] for c in self.scored[r]}
            new: dict[str, tuple[list[int], str]] = {}
            for request, k, origin in self.requests(r):
                for raw in self.sample(request, k):
                    found = self.clean(raw)
                    if found and found[0] not in seen and found[0] not in new:
                        new[found[0]] = (found[1], origin)
            self.add(r, step + 1, new)
            if self.pool[r]:  # the best so far: the loop keeps the best of all steps
                loss, text = self.pool[r][0]
                ids = self.obj.vocab.encode(text)[:n]
                self._texts.setdefault(tuple(ids), text)
                out_ids[r, : len(ids)] = torch.tensor(ids, device=self.device)
                out_loss[r] = loss
        return out_ids, out_loss

    def add(self, r: int, step: int, new: dict[str, tuple[list[int], str]]) -> None:
        """Score ``new`` candidates (text -> (ids, origin)) of prompt ``r`` on dev and add them to its pool (those
        within the readability bound, when there is one: ``nll`` and ``pooled`` in their rows say)."""
        if not new:
            return
        texts = list(new)
        ids = [new[t][0] for t in texts]
        losses = self.score(ids, int(self.group[r]))
        nlls = self.text_nll(texts) if self.bound is not None else [None] * len(texts)
        for t, i, loss, nll in zip(texts, ids, losses, nlls):
            self._texts[tuple(i)] = t
            acc = self.obj.accuracy(i, "dev") if hasattr(self.obj, "accuracy") else None
            pooled = nll is None or nll <= self.bound
            self.scored[r].append({"step": step, "text": t, "score": -loss, "dev_accuracy": acc,
                                   "origin": new[t][1], "nll": nll, "pooled": pooled})  # fmt: skip
            if pooled:
                self.pool[r].append((loss, t))
        self.pool[r].sort(key=lambda p: p[0])

    def score(self, ids: list[list[int]], group: int) -> list[float]:
        """Dev loss of prompts of any lengths, exactly as every method's prompts are scored, in chunks."""
        out, chunk = [], self.cfg.eval_chunk
        for s in range(0, len(ids), chunk):
            part = ids[s : s + chunk]
            g = torch.full((len(part),), group, dtype=torch.long, device=self.device)
            with torch.no_grad(), self.autocast():
                out += self.obj.eval_loss_ids(part, g).float().tolist()
        return out
