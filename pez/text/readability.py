"""How readable a prompt is: perplexity under a judge LM, and word statistics that need no model.

Papers on readable inversion report the perplexity of the prompt text under a judge LM that is not the proposer
(GPT-2 there; the embedded SmolLM2 offline here; see DESIGN.md "Readable inversion"). PEZ's encoder prompts are
real words in no order: their perplexity under SmolLM2 is in the tens of thousands, natural captions in the tens
to hundreds. A judge that is also the prior the search was steered by flatters the text: ``judge_is_prior``
records that.

This module scores; it loads nothing: a judge is a :class:`Judge` on a :class:`~pez.text.lm_text.TextLM` that the
caller loaded (:func:`pez.models.lm.load_judge` keeps the process's one cache of causal LMs, shared with the prior
and VGD's proposer), so the search's run function (:mod:`pez.optim.run`) can judge what it returns.

Words are ``wordfreq.tokenize(text, "en")``: Unicode word segmentation, lower-cased, punctuation dropped
(``"Man's riding, a horse!"`` -> ``["man's", "riding", "a", "horse"]``). A word is a dictionary word when its
Zipf frequency in English is at least :data:`DICTIONARY_ZIPF` (once per million words or more).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from pez.text.lm_text import TextLM

DICTIONARY_ZIPF = 3.0  # wordfreq's Zipf scale: log10(occurrences per billion words)
# Words a phrase does not end on: articles, determiners, prepositions, conjunctions, possessives, auxiliaries.
FUNCTION_WORDS = frozenset(
    """a an the this that these those some any each every no either neither both all my your his her its our their
    whose of in on at by for with to from into onto over under above below across through about around between
    among near along toward towards behind beyond upon within without during after before since until than via
    per like as and or but nor so yet if because while although though whereas whether is are was were be been
    being am do does did has have had will would shall should can could may might must""".split()
)
MID_PHRASE_END = ",;:-"  # a text that ends on one of these stops mid-phrase too


@dataclass
class Readability:
    """Readability of one text.

    Attributes:
        perplexity: ``exp(-mean token log-prob)`` under the judge LM; None without a judge or for an empty text.
        judge: the judge LM's spec; None without a judge.
        dictionary_share: share of the words that are common English words (0.0 for no words).
        repeated_share: share of the words that repeat an earlier word of the same text (0.0 for no words).
        words: number of words.
        judge_is_prior: the judge is also the LM prior that steered the search (it flatters the text).
        ends_mid_phrase: the text stops in the middle of a phrase (:func:`ends_mid_phrase`).
    """

    perplexity: float | None
    judge: str | None
    dictionary_share: float
    repeated_share: float
    words: int
    judge_is_prior: bool = False
    ends_mid_phrase: bool = False

    def __post_init__(self):
        if self.perplexity is not None and not math.isfinite(self.perplexity):
            self.perplexity = None  # nan (no tokens) is "not measured"; never NaN in JSON

    def to_dict(self) -> dict:
        """A JSON-able dict (perplexity None when not measured)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Readability:
        """Inverse of :meth:`to_dict`; unknown keys are ignored, so newer files load."""
        p = data.get("perplexity")
        return cls(
            perplexity=None if p is None else float(p),
            judge=data.get("judge"),
            dictionary_share=float(data["dictionary_share"]),
            repeated_share=float(data["repeated_share"]),
            words=int(data["words"]),
            judge_is_prior=bool(data.get("judge_is_prior", False)),
            ends_mid_phrase=bool(data.get("ends_mid_phrase", False)),
        )


def words_of(text: str) -> list[str]:
    """The text's words: ``wordfreq.tokenize(text, "en")`` (lower-cased, punctuation dropped)."""
    import wordfreq

    return wordfreq.tokenize(text, "en")


def word_stats(text: str) -> tuple[float, float, int]:
    """Word statistics of one text; no model needed.

    Returns:
        (dictionary_share, repeated_share, words): the share of words with an English Zipf frequency of at least
        :data:`DICTIONARY_ZIPF`, the share of words equal to an earlier word of the text, and the word count.
        Both shares are 0.0 for a text with no words.
    """
    import wordfreq

    words = words_of(text)
    if not words:
        return 0.0, 0.0, 0
    common = sum(wordfreq.zipf_frequency(w, "en") >= DICTIONARY_ZIPF for w in words)
    repeated = len(words) - len(set(words))  # every occurrence after a word's first is a repeat
    return common / len(words), repeated / len(words), len(words)


def ends_mid_phrase(text: str) -> bool:
    """Whether ``text`` stops in the middle of a phrase: its last word is a function word (:data:`FUNCTION_WORDS`:
    an article, determiner, preposition, conjunction, possessive or auxiliary: "... riding a", "... by her") or it
    ends on one of :data:`MID_PHRASE_END` ("... horse,"). A text with no words does not (there is no phrase)."""
    stripped = text.rstrip()
    if stripped and stripped[-1] in MID_PHRASE_END:
        return True
    words = words_of(stripped)
    return bool(words) and words[-1] in FUNCTION_WORDS


class Judge:
    """Readability of texts under a judge LM (its perplexity) plus the word statistics.

    Args:
        lm: the judge, a :class:`~pez.text.lm_text.TextLM`.
    """

    def __init__(self, lm: TextLM):
        self.lm = lm

    @property
    def name(self) -> str:
        return self.lm.name

    def judge(self, texts: Sequence[str], prior: str | None = None, chunk: int = 64) -> list[Readability]:
        """Readability of each text, all texts scored in one batched call of the judge LM.

        Args:
            texts: N texts (decoded prompts).
            prior: the spec of the LM prior that steered the search, if any; ``judge_is_prior`` is set when it is
                the judge's own spec.
            chunk: texts per forward pass.

        Returns:
            N :class:`Readability`.
        """
        ppl = self.lm.perplexity(texts, chunk)
        is_prior = prior is not None and prior == self.name
        return [_with_stats(t, p, self.name, is_prior) for t, p in zip(texts, ppl)]


def _with_stats(text: str, perplexity: float | None, judge: str | None, is_prior: bool = False) -> Readability:
    share, repeated, n = word_stats(text)
    return Readability(perplexity, judge, share, repeated, n, is_prior, ends_mid_phrase(text))


def readability(text: str, judge: Judge | None = None, prior: str | None = None) -> Readability:
    """Readability of one text: the word statistics, plus the judge's perplexity when a judge is given."""
    if judge is None:
        return _with_stats(text, None, None)
    return judge.judge([text], prior)[0]


def writers(config: dict) -> set[str]:
    """The LMs that wrote or steered a search's text, from its config: the prior when it scored candidates
    (``prior_weight`` > 0, or the readable method, whose LM also proposes), and VGD's proposer."""
    out = set()
    if config.get("prior") and (config.get("prior_weight", 0) > 0 or "lm_k" in config):
        out.add(config["prior"])
    if config.get("proposer"):
        out.add(config["proposer"])
    return out


def readability_of(text: str, judge: Judge | None, config: dict) -> dict:
    """The readability (as a dict) of one text that a search with ``config`` returned; see :func:`judge_results`."""
    if judge is None:
        return _with_stats(text, None, None).to_dict()
    return judge.judge([text], prior=judge.name if judge.name in writers(config) else None)[0].to_dict()


def judge_results(results: Sequence, judge: Judge | None) -> None:
    """Set the ``readability`` of every result (:class:`pez.PromptResult`): the word statistics always, the
    perplexity under ``judge`` unless it is None; ``judge_is_prior`` when the judge also wrote or steered the text."""
    texts = [r.text for r in results]
    ppl = judge.lm.perplexity(texts) if judge is not None and texts else [None] * len(texts)
    for res, p in zip(results, ppl):
        is_prior = judge is not None and judge.name in writers(res.config)
        res.readability = _with_stats(res.text, p, judge.name if judge else None, is_prior).to_dict()
