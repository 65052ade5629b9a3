"""Compose: PEZ's words rewritten into a phrase by exact edits under the LM prior (docs/algorithms.md#compose).

PEZ finds the words an encoder wants but not their order, nor the small words between them; a swap search that
keeps the prompt's length cannot turn "dusk man riding beach sun horse on sunset" into "A man rides a horse at
sunset". This method edits whole texts, their length included. Each prompt keeps a beam of ``beam`` texts (lists
of whole-word encoder tokens, at most ``prompt_len``); a step builds every text one edit away from each of them:

- **delete** a word;
- **insert** a word: one of the ``words`` (the content to compose from, e.g. PEZ's prompts, not yet in the text),
  a connector (:data:`CONNECTORS`: the commonest articles, prepositions and conjunctions, a comma), or one of the
  ``lm_k`` words the prior LM proposes after the text before that place;
- **replace** a word by any of those;
- **move** a word to another place (reordering).

Every neighbour is scored exactly by the encoder in batched forwards (cheap: hundreds per forward); the ``scored``
best of them by that score, spread over the kinds of edit so that a readable edit that costs a little score is
still read, are scored with the prior (``prior_weight`` x mean NLL per token of the text as the user gets it,
followed by ``prior_end``: a text that stops mid-phrase reads worse before a full stop). The beam moves to the
``beam`` best texts by score + prior among itself and its neighbours; the search ends (``finished``) when the beam
no longer changes. The result's score is the encoder's alone, on the returned text (:mod:`pez.objectives.prior`).

Start from PEZ's prompt (``init_text``) with PEZ's other prompts' words in ``words``: readable mode
(:func:`pez.jobs.invert.readable_search`). Nothing is random: the seed changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pez.errors import PezError
from pez.optim.config import CandidateConfig, check_positive, config_field
from pez.optim.loop import PromptOptimizer

PAD = -1
# The commonest words between content words (articles, prepositions, a conjunction, an auxiliary, punctuation); the
# rarer ones (an, his, through, are, ...) come from the prior LM's proposals where they fit (``lm_k``): a longer list
# here multiplies the texts the encoder scores each round for few more accepted edits (docs/algorithms.md#compose).
CONNECTORS = "a the of in on at with and by to is ,".split()


@dataclass
class ComposeConfig(CandidateConfig):
    """Whole-text edits (insert, delete, replace, move) of a beam of texts, scored exactly with the LM prior."""

    words: str | None = config_field(None, "the content words to compose from, as text (None: the init text's)")
    beam: int = config_field(2, "texts kept per prompt")
    lm_k: int = config_field(6, "words the prior LM proposes at each place of the best text")
    scored: int = config_field(42, "neighbours per step read by the prior (the encoder scores them all)")
    prior_weight: float = config_field(0.08, "weight of the prior's mean NLL per token beside the loss")
    prior_end: str = config_field(".", "what the prior reads after each text ('' for nothing)")
    steps: int = config_field(12, "edit rounds at most (the search ends sooner when no edit helps)")

    def __post_init__(self):
        super().__post_init__()
        check_positive(self, "beam", "lm_k", "scored")
        if self.prior_weight <= 0:
            raise PezError("compose needs --prior-weight > 0: the prior is what orders its words")
        if not isinstance(self.prior_end, str):
            raise PezError(f"prior-end must be a text, got {self.prior_end!r}")


class Compose(PromptOptimizer):
    name = "compose"
    writes_text = True
    config_class = ComposeConfig

    def init(self, ids: torch.Tensor) -> None:  # the loop's random ids are not used: the init text is the start
        vocab, cfg = self.obj.vocab, self.cfg
        if not cfg.init_text:
            raise PezError("compose rewrites a text: give it --init-text (readable mode gives it PEZ's prompt)")
        self.allowed_ids = set(self.allowed.any(0).nonzero().squeeze(1).tolist())
        start = tuple(vocab.encode(cfg.init_text)[: cfg.prompt_len])
        bag = vocab.encode(cfg.words) if cfg.words else list(start)
        conn = [vocab.encode(w) for w in CONNECTORS]
        self.connectors = [c[0] for c in conn if len(c) == 1]
        self.comma = vocab.encode(",")[0] if len(vocab.encode(",")) == 1 else None
        self.words = list(dict.fromkeys(t for t in bag if t not in self.connectors))
        bare = tuple(t for t in start if t not in self.connectors) or start
        self.beams = [[start, bare] if bare != start else [start] for _ in range(self.n_prompts)]
        self._base: dict[tuple[int, ...], torch.Tensor] = {}  # (text ids, group) -> encoder loss
        self._lm_words: dict[int, int | None] = {}  # prior LM token -> encoder whole-word token (or None)
        self._clean: dict[tuple[int, ...], bool] = {}
        self.done = [False] * self.n_prompts

    @property
    def finished(self) -> bool:
        return all(self.done)

    def state_dict(self) -> dict:
        return {"beams": [[list(t) for t in b] for b in self.beams], "done": self.done}

    def load_state_dict(self, state: dict) -> None:
        self.beams = [[tuple(t) for t in b] for b in state["beams"]]
        self.done = list(state["done"])

    # -- scores ------------------------------------------------------------------------------------------------
    def clean(self, text: tuple[int, ...]) -> bool:
        """A text that may be proposed: not empty, no word twice in a row, no leading comma, and its decoded text
        tokenises back to the same ids (so its score is the score of the text the user gets)."""
        if text not in self._clean:
            vocab = self.obj.vocab
            ok = bool(text) and text[0] != self.comma and all(a != b for a, b in zip(text, text[1:]))
            self._clean[text] = ok and vocab.encode(vocab.decode(list(text))) == list(text)
        return self._clean[text]

    @torch.no_grad()
    def base_losses(self, texts: list[tuple[int, ...]], g: int) -> torch.Tensor:
        """The encoder's loss of each text (no prior), shape (N,), memoised; new texts in batched forwards."""
        new = [t for t in dict.fromkeys(texts) if (t, g) not in self._base]
        obj = getattr(self.obj, "base", self.obj)
        for s in range(0, len(new), self.cfg.eval_chunk):
            part = new[s : s + self.cfg.eval_chunk]
            group = torch.full((len(part),), g, dtype=torch.long, device=self.device)
            with self.autocast():
                for t, v in zip(part, obj.eval_loss_ids([list(t) for t in part], group).float().cpu()):
                    self._base[(t, g)] = v
        return torch.stack([self._base[(t, g)] for t in texts]) if texts else torch.zeros(0)

    def losses(self, texts: list[tuple[int, ...]], g: int) -> torch.Tensor:
        """Encoder loss + the prior's term (score + prior, lower is better), shape (N,)."""
        base = self.base_losses(texts, g)
        return base + self.obj.prior_term([list(t) for t in texts]).float().cpu()

    # -- proposals ---------------------------------------------------------------------------------------------
    def _as_word(self, lm_token: int) -> int | None:
        """The encoder's allowed single token for an LM token that is one word, or None."""
        if lm_token not in self._lm_words:
            found = self.obj.vocab.word_id(self.obj.prior.tokenizer.decode([lm_token]))
            self._lm_words[lm_token] = found if found in self.allowed_ids else None
        return self._lm_words[lm_token]

    @torch.no_grad()
    def lm_words(self, text: tuple[int, ...]) -> list[list[int]]:
        """For each place 0..n of ``text``, up to ``lm_k`` encoder words the prior proposes after the words before
        it (the logits after every prefix read from one forward of the whole text, TextLM.next_logits_along)."""
        vocab, lm = self.obj.vocab, self.obj.prior
        prefixes = [vocab.sentence_case(vocab.decode(list(text[:i]))) for i in range(len(text) + 1)]
        logits = lm.next_logits_along([" " + p if p else "" for p in prefixes])  # (n + 1, V_lm)
        out = []
        for order in logits.topk(min(logits.shape[-1], 8 * self.cfg.lm_k), dim=-1).indices.tolist():
            found = list(dict.fromkeys(w for w in map(self._as_word, order) if w is not None))
            out.append(found[: self.cfg.lm_k])
        return out

    def neighbours(self, text: tuple[int, ...], lm_words: list[list[int]] | None) -> dict[str, set]:
        """Every clean text one edit away, by kind of edit."""
        n, cap = len(text), self.cfg.prompt_len
        kinds: dict[str, set] = {"delete": set(), "insert": set(), "connect": set(), "replace": set(), "move": set()}
        unused = [w for w in self.words if w not in text]
        for i in range(n + 1):
            lm = lm_words[i] if lm_words else []
            if n < cap:
                kinds["insert"].update(text[:i] + (t,) + text[i:] for t in unused + lm)
                kinds["connect"].update(text[:i] + (t,) + text[i:] for t in self.connectors)
            if i == n:
                break
            kinds["delete"].add(text[:i] + text[i + 1 :])
            kinds["replace"].update(text[:i] + (t,) + text[i + 1 :] for t in unused + lm + self.connectors)
            for j in range(n):
                if j != i:
                    moved = list(text)
                    moved.insert(j, moved.pop(i))
                    kinds["move"].add(tuple(moved))
        return {k: {c for c in v if c != text and self.clean(c)} for k, v in kinds.items()}

    # -- the step ----------------------------------------------------------------------------------------------
    def step(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        for r, g in enumerate(self.group.tolist()):
            if not self.done[r]:
                self.done[r] = not self.improve(r, g)
        return self.reported()

    def improve(self, r: int, g: int) -> bool:
        """One round of edits for prompt ``r``; whether its beam changed."""
        beam = self.beams[r]
        proposals = self.lm_words(beam[0])
        kinds: dict[str, set] = {}
        for k, text in enumerate(beam):
            for kind, found in self.neighbours(text, proposals if k == 0 else None).items():
                kinds.setdefault(kind, set()).update(found)
        read = set()
        share = max(1, self.cfg.scored // max(1, sum(1 for v in kinds.values() if v)))
        for found in kinds.values():
            found = sorted(found)
            if found:
                order = self.base_losses(found, g).argsort(stable=True)[:share].tolist()
                read.update(found[i] for i in order)
        pool = list(dict.fromkeys(beam + sorted(read)))
        order = self.losses(pool, g).argsort(stable=True)[: self.cfg.beam].tolist()
        new = [pool[i] for i in order]
        changed = new != beam
        self.beams[r] = new
        return changed

    def reported(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each prompt's best text as encoder ids padded with -1 (R, L) and its score + prior (R,)."""
        ids = torch.full((self.n_prompts, self.cfg.prompt_len), PAD, dtype=torch.long)
        loss = torch.zeros(self.n_prompts)
        for r, (beam, g) in enumerate(zip(self.beams, self.group.tolist())):
            ids[r, : len(beam[0])] = torch.tensor(beam[0], dtype=torch.long)
            loss[r] = self.losses([beam[0]], g)[0]
        return ids.to(self.device), loss.to(self.device)
