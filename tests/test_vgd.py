"""VGD (Visually Guided Decoding): beam scores against a direct computation, the first word, honest text scores,
determinism, budgets, resume, searches, bad configs. A tiny random Llama proposes (fast); one test uses SmolLM2."""

import copy
import math
from dataclasses import dataclass

import pytest
import torch

import pez
from pez.optim.vgd import VGD, VGDConfig, load_proposer
from tests.conftest import PLANTED


@pytest.fixture(scope="module")
def planted(tiny):
    model, tok = tiny
    return pez.CLIPObjective(model, tok, texts=[PLANTED])


@pytest.fixture(scope="module")
def car(tiny):
    model, tok = tiny
    return pez.CLIPObjective(model, tok, texts=["car"])


@pytest.fixture(scope="module")
def fast(tiny_llama_dir):
    """Config maker with the tiny random Llama as proposer."""
    load_proposer(tiny_llama_dir, "cpu")
    return lambda **kw: VGDConfig(**{"proposer": tiny_llama_dir, "beams": 4, "candidates": 5, "prompt_len": 6} | kw)


def honest(obj, text: str) -> float:
    return -obj.eval_loss_ids([obj.vocab.encode(text)], torch.zeros(1, dtype=torch.long)).item()


def direct_logp(model, prefix: list[int], ids: list[int]) -> torch.Tensor:
    """log p of the token after prefix + ids, from one plain forward (no cache), shape (V,)."""
    with torch.no_grad():
        return model(torch.tensor([prefix + ids])).logits[0, -1].float().log_softmax(-1)


def test_kept_beams_scores_equal_a_direct_computation(planted, fast):
    cfg = fast(first_word=False, prompt_len=8, ascii_only=False)
    opt = VGD(planted, cfg)
    tok, model = opt.lm.tokenizer, opt.lm.model
    opt.step(0)
    opt.step(1)
    before = copy.deepcopy(opt.beams[0])
    opt.step(2)
    prefix = tok(tok.apply_chat_template(
        [{"role": "system", "content": cfg.system_prompt}, {"role": "user", "content": cfg.request}],
        tokenize=False, add_generation_prompt=True,
    ), add_special_tokens=False)["input_ids"]  # fmt: skip
    assert opt.prefix_ids("") == prefix
    # every continuation of the step, computed directly: each beam's own top tokens, its text, its encoder score
    conts = []
    for b in before:
        top = direct_logp(model, prefix, b["ids"]).topk(cfg.candidates)
        for t in top.indices.tolist():
            ids = b["ids"] + [t]
            text = tok.decode(ids, skip_special_tokens=True).split("\n")[0].strip()
            lm = sum(direct_logp(model, prefix, ids[:i])[x].item() for i, x in enumerate(ids))
            end = t in tok.all_special_ids or "\n" in tok.decode([t])
            fits = len(planted.vocab.encode(text)) <= cfg.prompt_len
            conts.append({"ids": ids, "lm": lm, "score": honest(planted, text), "ok": fits and not end})
    logit = torch.tensor([c["score"] for c in conts], dtype=torch.float64) * cfg.logit_scale
    for c, ls in zip(conts, logit.log_softmax(0).tolist()):
        c["total"] = cfg.lm_weight * c["lm"] + cfg.clip_weight * ls
    kept = opt.beams[0]
    assert len(kept) == cfg.beams
    expected = sorted((c for c in conts if c["ok"]), key=lambda c: -c["total"])[: cfg.beams]
    assert [b["ids"] for b in kept] == [c["ids"] for c in expected]
    for b, c in zip(kept, expected):
        assert b["lm"] == pytest.approx(c["lm"], abs=1e-3)
        assert b["score"] == pytest.approx(c["score"], abs=1e-5)
        assert b["total"] == pytest.approx(c["total"], abs=2e-3)
    # what the step reports is the kept beam of best encoder score, as the encoder ids of its text padded with -1
    ids, loss = opt.reported()
    best = max(kept, key=lambda b: b["score"])
    enc = planted.vocab.encode(opt.text_of(best["ids"]))
    assert ids[0, : len(enc)].tolist() == enc and (ids[0, len(enc) :] == -1).all()
    assert loss.item() == pytest.approx(-best["score"]) and opt.decode(enc) == opt.text_of(best["ids"])


def test_first_word_is_the_allowed_token_with_the_best_one_token_score(car, fast):
    opt = VGD(car, fast(steps=1))
    opt.run()
    allowed = opt.allowed[0].nonzero().squeeze(1)
    scores = -car.eval_loss_ids([[t] for t in allowed.tolist()], torch.zeros(len(allowed), dtype=torch.long))
    # by the one-token score, best first (ties within float noise: the ranking encodes in other batch sizes)
    direct = dict(zip(allowed.tolist(), scores.tolist()))
    ranked = opt.ranked[0].tolist()
    assert sorted(ranked) == sorted(direct)
    assert all(direct[a] >= direct[b] - 1e-5 for a, b in zip(ranked, ranked[1:]))
    (car_id,) = car.vocab.encode("car")
    assert opt.ranked[0][0].item() == car_id  # planted: the target's own one-token text, cosine 1
    assert opt.keyword == ["car"] and "Keyword: car" in opt.lm.tokenizer.decode(opt.prefix_ids("car"))


def test_one_token_features_are_encoded_once_and_rank_every_group_as_a_direct_computation(tiny):
    model, tok = tiny
    two = pez.CLIPObjective(model, tok, texts=["car", "a dog on the grass"])
    two.set_groups(torch.eye(2))  # one prompt per target, as a folder run has
    ids = torch.arange(3000)
    before = two.counts["forward"]
    losses = two.one_token_losses(ids, chunk=512)
    assert losses.shape == (2, 3000)
    assert two.counts["forward"] - before == 3000  # each token encoded once, not once per group
    for g in range(2):
        direct = two.eval_loss_ids([[t] for t in ids.tolist()], torch.full((3000,), g))
        torch.testing.assert_close(losses[g], direct, rtol=0, atol=1e-6)
    # another objective on the same model and tokens (the next target): the features are reused, nothing encoded
    other = pez.CLIPObjective(model, tok, texts=["a red house"])
    again = other.one_token_losses(ids, chunk=512)
    assert other.counts["forward"] == 0
    direct = other.eval_loss_ids([[t] for t in ids.tolist()], torch.zeros(3000, dtype=torch.long))
    torch.testing.assert_close(again[0], direct, rtol=0, atol=1e-6)
    before = other.counts["forward"]
    other.one_token_losses(ids[:10], chunk=512)  # other tokens: encoded
    assert other.counts["forward"] - before == 10


def test_result_is_the_decoded_text_scored_honestly(planted, fast):
    reports = []

    def seen(p):  # what each step reported: the proposer's text of its ids, and that text's encoder ids
        rep = opt.report[0]
        assert rep["text"] == tok.decode(rep["lm_ids"], skip_special_tokens=True).split("\n")[0].strip()
        assert rep["ids"] == planted.vocab.encode(rep["text"]) and p.ids[0, : len(rep["ids"])].tolist() == rep["ids"]
        reports.append(rep["text"])

    opt = VGD(planted, fast(steps=8, sync_every=1))
    tok = opt.lm.tokenizer
    res = opt.run(callback=seen)[0]
    assert res.method == "vgd" and res.steps_done == 8 and len(res.history) == 8 and len(reports) == 8
    assert res.text in reports and res.text == opt.decode(res.ids)
    assert res.ids == res.text_ids == planted.vocab.encode(res.text) and not res.retokenized and len(res.ids) <= 6
    assert res.score == pytest.approx(honest(planted, res.text), abs=1e-5)
    assert res.score == pytest.approx(max(h["score"] for h in res.history), abs=1e-5)


def test_same_seed_same_run_and_the_seed_changes_nothing(planted, fast):
    a, b, c = (VGD(planted, fast(first_word=False, steps=6, seed=s)).run()[0] for s in (0, 0, 1))
    assert a.ids == b.ids == c.ids and a.history == b.history == c.history and a.extras == c.extras


def test_step_and_pass_counts_and_budgets(planted, fast):
    cfg = fast(first_word=False, ascii_only=False)
    opt = VGD(planted, cfg)
    before = planted.counts["forward"]
    opt.step(0)  # the request once through the proposer, then its 5 continuations through the encoder
    assert planted.counts["forward"] - before == 1 + cfg.candidates
    n = len(opt.beams[0])
    before = planted.counts["forward"]
    opt.step(1)  # each beam through the proposer once, each continuation through the encoder once
    assert planted.counts["forward"] - before == n + n * cfg.candidates

    res = VGD(planted, fast(first_word=False, steps=3)).run()[0]
    assert res.steps_done == 3 and res.timings["stopped_by"] == "steps"
    long = fast(first_word=False, ascii_only=False, prompt_len=40, steps=40)  # one 40-token search
    res = VGD(planted, long).run(budget_passes=100)[0]
    assert res.timings["stopped_by"] == "budget_passes" and res.steps_done < 40 and res.timings["passes"] <= 100
    res = VGD(planted, long).run(budget_seconds=1e-3)[0]  # far below 40 steps on any machine
    assert res.timings["stopped_by"] == "budget_seconds" and res.steps_done < 40


def test_resume_equals_a_straight_run(planted, fast, tmp_path):
    # 4-token searches: the cut at step 6 falls inside the second search of each of the two restarts
    cfg = fast(steps=12, max_tokens=4, restarts=2, sync_every=2, checkpoint_every=2)
    straight = VGD(planted, cfg).run()[0]

    def stop_at_6(p):
        if p.step == 6:
            raise KeyboardInterrupt

    ck = tmp_path / "vgd.ckpt"
    cut = VGD(planted, cfg).run(callback=stop_at_6, checkpoint=ck)[0]
    assert cut.interrupted and cut.steps_done == 6
    resumed = VGD(planted, cfg).run(checkpoint=ck, resume=True)[0]
    assert resumed.ids == straight.ids and resumed.score == straight.score and resumed.text == straight.text
    assert resumed.history == straight.history and resumed.extras == straight.extras
    assert len(straight.extras["searches"]) == 6  # 12 steps of 4-token searches, for each of 2 restarts


def test_searches_take_the_next_keywords_and_the_run_ends_when_they_are_done(car, fast):
    opt = VGD(car, fast(steps=100, max_tokens=3, restarts=2, searches=2))
    res = opt.run()[0]
    assert res.timings["stopped_by"] == "finished" and res.steps_done == 6  # 2 searches of 3 tokens
    words = [car.vocab.decode([t]).strip() for t in opt.ranked[0][:4].tolist()]
    # restart r of R takes keywords r, r + R, ...: restart 0 -> 0, 2; restart 1 -> 1, 3
    assert [s["keyword"] for s in res.extras["searches"]] == [words[0], words[2], words[1], words[3]]
    for s in res.extras["searches"]:
        assert s["score"] == pytest.approx(honest(car, s["text"]), abs=1e-5) and math.isfinite(s["vgd"])
    # without first words, one search: init_text is its keyword
    opt = VGD(car, fast(steps=100, first_word=False, init_text="a red car"))
    res = opt.run()[0]
    assert res.timings["stopped_by"] == "finished" and res.steps_done <= 6
    assert [s["keyword"] for s in res.extras["searches"]] == ["a red car"]


def test_texts_are_scored_in_chunks_and_the_chunk_halves_on_out_of_memory(planted, fast, monkeypatch):
    whole = VGD(planted, fast(first_word=False, ascii_only=False))
    small = VGD(planted, fast(first_word=False, ascii_only=False, eval_chunk=7))
    for s in range(3):
        assert torch.equal(whole.step(s)[0], small.step(s)[0])
    assert [b["ids"] for b in whole.beams[0]] == [b["ids"] for b in small.beams[0]]
    calls, real = [], planted.eval_loss_ids

    def small_memory(ids, group):
        calls.append(len(ids))
        if len(ids) > 3:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(ids, group)

    monkeypatch.setattr(planted, "eval_loss_ids", small_memory)
    assert small.losses([[1]] * 10, [0] * 10) == pytest.approx(real([[1]] * 10, torch.zeros(10, dtype=torch.long)))
    assert calls[:4] == [7, 3, 3, 3] and small._chunk_cap == 3


def test_real_proposer_writes_a_fluent_prompt_for_a_sentence(minilm):
    obj = pez.make_objective(minilm, texts=["A man is riding a horse on the beach at sunset."], device="cpu")
    res = VGD(obj, VGDConfig(prompt_len=8, steps=8, first_word=False)).run()[0]
    assert res.score > 0.4 and res.text[:1].isupper() and all(w.isalpha() for w in res.text.split()), res
    assert res.score == pytest.approx(honest(obj, res.text), abs=1e-5)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"beams": 0}, "beams must be positive"),
        ({"candidates": 0}, "candidates must be positive"),
        ({"beams": 100, "candidates": 100}, "at most 4096"),
        ({"lm_weight": -1.0}, "lm-weight"),
        ({"clip_weight": math.nan}, "clip-weight"),
        ({"length_penalty": math.inf}, "length-penalty"),
        ({"logit_scale": 0.0}, "logit-scale must be positive"),
        ({"lm_weight": 0.0, "clip_weight": 0.0}, "both 0"),
        ({"request": "  "}, "request"),
        ({"proposer": ""}, "proposer"),
        ({"prompt_len": 8, "min_tokens": 9}, "min-tokens"),
        ({"restarts": 2, "first_word": False}, "first-word"),
        ({"searches": 0}, "searches must be positive"),
        ({"prompt_len": 0}, "must be positive"),
    ],
)
def test_bad_config_values_are_refused(bad, match):
    with pytest.raises(pez.PezError, match=match):
        VGDConfig(**bad)


def test_an_objective_that_cannot_score_text_as_a_cosine_is_refused(smollm2, fast):
    from pez.objectives.lm import CompletionObjective
    from tests.conftest import tiny_lm

    @dataclass
    class Ex:
        text: str
        target: str

    lm_task = CompletionObjective(tiny_lm("llama", smollm2.tokenizer), smollm2.tokenizer, [Ex("", " the river")])
    with pytest.raises(pez.PezError, match="cosine"):
        VGD(lm_task, fast())
    with pytest.raises(pez.PezError, match="cosine"):
        VGD(object(), fast())
