"""Every optimiser through one shared grid (planted tiny CLIP, real minilm, resume), then each method's own promise:
AutoPrompt never gets worse, GCG candidates change one position, FluentPrompt's noise schedule, soft scores."""

import math
from dataclasses import dataclass

import pytest
import torch

import pez
from pez.optim import METHODS
from pez.optim.autoprompt import AutoPrompt, AutoPromptConfig
from pez.optim.candidates import survives_retokenization, swap_scores
from pez.optim.fluent import FluentConfig, FluentPrompt
from pez.optim.gcg import GCG, GCGConfig
from pez.optim.pez import PEZ, PEZConfig
from pez.optim.soft import SoftConfig, SoftPrompt
from tests.conftest import PLANTED

# ape needs an LM task (tests/test_readable_tasks.py); compose rewrites a given text and ends when no edit helps
# (tests/test_compose.py)
GENERIC = [m for m in METHODS if m not in ("ape", "compose")]

# CPU-sized candidate counts; everything else is each method's default
FAST = {"gcg": {"search_width": 32, "top_k": 64}, "autoprompt": {"candidates": 32}, "random": {"candidates": 32}}
START = "bowl soup table spoon kitchen warm bread dinner"  # 8 tokens under both tokenizers, far from the targets
HORSE = "A man is riding a horse on the beach at sunset."


def config(method: str, **kw):
    return METHODS[method].config_class(**{**FAST.get(method, {}), **kw})


@pytest.fixture(scope="module")
def planted(tiny):
    model, tok = tiny
    return pez.CLIPObjective(model, tok, texts=[PLANTED])


@pytest.fixture(scope="module")
def horse(minilm):
    return pez.make_objective(minilm, texts=[HORSE], device="cpu")


def start_score(obj) -> float:
    ids = obj.vocab.encode(START)
    assert len(ids) == 8
    return -obj.eval_loss_ids([ids], torch.zeros(1, dtype=torch.long)).item()


@pytest.mark.parametrize("method", GENERIC)
@pytest.mark.parametrize("task, margin", [("planted", 0.05), ("horse", 0.2)])
def test_method_improves_on_its_starting_prompt(request, method, task, margin):
    obj = request.getfixturevalue(task)
    start = start_score(obj)
    res = pez.optimize(obj, config(method, prompt_len=8, steps=30, seed=0, init_text=START))
    assert res.method == method and res.steps_done == 30 and len(res.history) == 30
    # the score is that of the returned text, scored afresh
    honest = -obj.eval_loss_ids([res.text_ids], torch.zeros(1, dtype=torch.long)).item()
    assert res.score == pytest.approx(honest, abs=1e-5)
    if method == "soft":  # what improves is the continuous prompt, an upper bound its own projection stays under
        assert res.extras["continuous_score"] > start + margin and res.extras["continuous_score"] > res.score
    else:
        assert res.score > start + margin, (start, res)


@pytest.mark.parametrize("method", GENERIC)
def test_resume_equals_uninterrupted_run(planted, tmp_path, method):
    cfg = config(method, prompt_len=6, steps=20, seed=1, restarts=2, sync_every=5, checkpoint_every=5)
    straight = pez.optimize(planted, cfg)

    def stop_at_10(p):
        if p.step == 10:
            raise KeyboardInterrupt

    ck = tmp_path / "run.ckpt"
    cut = pez.optimize(planted, cfg, callback=stop_at_10, checkpoint=ck)
    assert cut.interrupted and cut.steps_done == 10
    resumed = pez.optimize(planted, cfg, checkpoint=ck, resume=True)
    assert resumed.ids == straight.ids and resumed.score == straight.score
    assert resumed.history == straight.history and resumed.extras == straight.extras
    assert [(h["step"], h["text"]) for h in resumed.best_history] == [
        (h["step"], h["text"]) for h in straight.best_history
    ]


@pytest.mark.parametrize("method", GENERIC)
def test_config_rejects_bad_values(method):
    with pytest.raises(pez.PezError, match="must be positive"):
        config(method, prompt_len=0)


def test_method_specific_configs_are_checked():
    with pytest.raises(pez.PezError, match="search-width"):
        GCGConfig(search_width=0)
    with pytest.raises(pez.PezError, match="accum-steps"):
        AutoPromptConfig(accum_steps=0)
    with pytest.raises(pez.PezError, match="beta-end"):
        FluentConfig(beta_start=1e-4, beta_end=1.0)
    with pytest.raises(pez.PezError, match="positions"):
        METHODS["random"].config_class(prompt_len=4, positions=5)


def test_swap_scores_are_first_order_loss_changes(planted):
    opt = GCG(planted, GCGConfig(prompt_len=4, seed=0))
    ids = opt.ids
    grad = torch.randn(1, 4, opt.E.shape[1], generator=torch.Generator().manual_seed(0))
    scores = swap_scores(grad, opt.E, ids, opt.allowed)  # (1, 4, V)
    v = int(opt.allowed[1].nonzero().squeeze(1)[7])
    expected = -((opt.E[v] - opt.E[ids[0, 2]]) * grad[0, 2]).sum()
    assert scores[0, 2, v].item() == pytest.approx(expected.item(), rel=1e-4, abs=1e-6)
    assert scores[0, 2, ids[0, 2]] == -math.inf  # never the current token
    assert (scores[0][~opt.allowed] == -math.inf).all()  # never a token outside the allowed vocabulary


def test_retokenization_filter(tiny, planted):
    _, tok = tiny
    good = planted.vocab.encode("red car")
    split = [tok.encoder["car"], tok.encoder["pet</w>"]]  # decodes to "carpet": one other token
    ok = survives_retokenization(planted.vocab, torch.tensor([good, split]))
    assert ok.tolist() == [True, False]


def test_candidates_are_scored_in_chunks_and_the_chunk_halves_on_out_of_memory(planted, monkeypatch):
    opt = GCG(planted, GCGConfig(prompt_len=5, seed=0, eval_chunk=64))
    allowed = opt.allowed[1].nonzero().squeeze(1)
    ids = allowed[torch.randperm(500, generator=torch.Generator().manual_seed(0))[:50].view(10, 5)]
    group = torch.zeros(10, dtype=torch.long)
    whole = planted.eval_loss(opt.E[ids], group)
    calls = []
    real = planted.eval_loss

    def small_memory(embeds, group, ids=None):
        calls.append(len(embeds))
        if len(embeds) > 3:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(embeds, group, ids)

    monkeypatch.setattr(planted, "eval_loss", small_memory)
    assert torch.allclose(opt.candidate_losses(ids, group), whole, atol=1e-6)
    assert calls[:5] == [10, 5, 2, 2, 2] and opt._chunk_cap == 2  # 64 -> all 10, then 5, then 2 per forward
    calls.clear()
    opt.candidate_losses(ids, group)
    assert calls == [2] * 5  # the smaller chunk is kept for the rest of the run


def test_hotflip_with_exact_candidates_moves_to_the_best_one(planted):
    opt = METHODS["hotflip"](planted, config("hotflip", prompt_len=6, restarts=2, candidates=8, seed=0))
    for step in range(3):
        before = opt.ids.clone()
        ids, loss = opt.step(step)
        assert ((ids != before).sum(-1) == 1).all()  # one swap per step
        assert torch.allclose(loss, planted.eval_loss(opt.E[ids], opt.group), atol=1e-6)


def test_retokenization_filter_under_a_byte_level_tokenizer(smollm2):
    """The filter checks the ids a prompt's text becomes where the prompt sits: after "Review: " its first word
    carries the word-start marker ("Ġgreat"); opening the text it does not ("great")."""
    from pez.text import HFTokenizer, Vocabulary

    tok = smollm2.tokenizer

    def enc(text):
        return tok(text, add_special_tokens=False)["input_ids"]

    marked = enc(" great movie")  # [Ġgreat, Ġmovie]
    bare = enc("great movie")  # [great, Ġmovie]
    split = enc(" car") + enc("pet")  # the text "carpet" is other tokens
    assert marked != bare
    after_text = Vocabulary(HFTokenizer(tok), torch.zeros(len(tok), 4), 64, before="Review: ")
    opening = Vocabulary(HFTokenizer(tok), torch.zeros(len(tok), 4), 64, before="")
    assert survives_retokenization(after_text, torch.tensor([marked, bare, split])).tolist() == [True, False, False]
    assert survives_retokenization(opening, torch.tensor([marked, bare, split])).tolist() == [False, True, False]


@pytest.mark.parametrize("method", ["gcg", "autoprompt"])
def test_candidate_methods_move_on_a_language_model_task(smollm2, method):
    from pez.objectives.lm import CompletionObjective
    from tests.conftest import tiny_lm

    @dataclass
    class Ex:
        text: str
        target: str

    model, tok = tiny_lm("llama", smollm2.tokenizer, seed=1), smollm2.tokenizer
    obj = CompletionObjective(model, tok, [Ex("", " the river stone")])
    res = pez.optimize(obj, config(method, prompt_len=3, steps=8, seed=0, sync_every=1))
    scores = [h["score"] for h in res.history]  # of the optimised ids, before re-tokenisation
    assert max(scores) > scores[0]  # candidates survive the filter and better ones are found


def test_autoprompt_never_accepts_a_worse_prompt(horse):
    opt = AutoPrompt(horse, AutoPromptConfig(prompt_len=6, restarts=3, candidates=16, seed=0))
    losses = []
    for step in range(12):
        ids, loss = opt.step(step)
        # the reported loss is exactly that of the current prompt
        assert torch.allclose(loss, horse.eval_loss(opt.E[ids], opt.group), atol=1e-6)
        losses.append(loss)
    losses = torch.stack(losses)  # (steps, R)
    assert (losses[1:] <= losses[:-1]).all()
    assert (losses[-1] < losses[0]).all()  # and it did accept better prompts


def test_gcg_candidates_differ_in_exactly_one_position(planted):
    opt = GCG(planted, GCGConfig(prompt_len=8, restarts=2, search_width=64, top_k=16, seed=0))
    ids = opt.ids
    hard = opt.E[ids].float().requires_grad_(True)
    loss, _ = planted.loss(hard, opt.group, None, opt.gen)
    (grad,) = torch.autograd.grad(loss.sum(), hard)
    top = swap_scores(grad, opt.E, ids, opt.allowed).topk(16, dim=-1).indices  # (R, L, 16)
    cand = opt.sample_candidates(ids, top)
    assert cand.shape == (2, 64, 8)
    diff = cand != ids[:, None, :]  # (R, W, L)
    assert (diff.sum(-1) == 1).all()
    r, w, pos = diff.nonzero(as_tuple=True)
    new = cand[r, w, pos]
    assert (top[r, pos] == new[:, None]).any(-1).all()  # drawn from that position's top-k
    assert opt.allowed[pos, new].all()
    assert len(set(pos.tolist())) > 1  # positions are drawn at random


def test_fluent_temperature_and_noise_follow_the_schedule(planted):
    cfg = FluentConfig(prompt_len=16, restarts=8, lr=0.05, beta_start=1.0, beta_end=1e-4, steps=10, seed=0)
    opt = FluentPrompt(planted, cfg)
    assert [opt.beta(p) for p in (0.0, 0.25, 0.5, 1.0)] == pytest.approx([1.0, 0.1, 1e-2, 1e-4])
    for p in (0.0, 0.5, 1.0):
        z = opt.noise(p)  # (8, 16, D): 8 * 16 * 64 draws
        assert z.shape == opt.soft.shape
        assert z.std().item() == pytest.approx(math.sqrt(2 * 0.05 * opt.beta(p)), rel=0.05)
        assert abs(z.mean().item()) < 0.05 * math.sqrt(2 * 0.05 * opt.beta(p))

    # a step is PEZ's step plus exactly that noise (same seed, same gradient)
    plain = PEZ(planted, PEZConfig(prompt_len=16, restarts=8, lr=0.05, steps=10, seed=0))
    assert torch.equal(plain.soft, opt.soft)
    state = opt.gen.get_state()
    opt.run_fraction = plain.run_fraction = 0.3
    opt.step(3)
    plain.step(3)
    expected = torch.Generator().set_state(state)
    z = torch.randn(opt.soft.shape, generator=expected) * math.sqrt(2 * 0.05 * opt.beta(0.3))
    assert torch.allclose(opt.soft - plain.soft, z, atol=1e-6)

    # the run hands each step its share of the run: beta decays over the run's steps
    seen = []
    noise = opt.noise
    opt.noise = lambda p: (seen.append(p), noise(p))[1]
    opt.run()
    assert seen == pytest.approx([s / 10 for s in range(10)])


def test_soft_reports_continuous_and_projected_scores(planted):
    opt = SoftPrompt(planted, SoftConfig(prompt_len=8, restarts=2, steps=20, seed=0))
    first = opt.soft.detach().clone()
    ids, hard = opt.step(0)
    assert torch.equal(ids, opt.projector(first))  # the tracked ids are the projection of the point evaluated
    assert torch.allclose(hard, planted.eval_loss(opt.E[ids], opt.group), atol=1e-6)
    start_cont = -planted.eval_loss(first, opt.group).max().item()

    opt = SoftPrompt(planted, SoftConfig(prompt_len=8, restarts=2, steps=20, seed=0))
    (res,) = opt.run()
    cont = res.extras["continuous_score"]
    # the continuous score is that of the best continuous prompt kept, and no worse than where it started
    assert cont == pytest.approx(-planted.eval_loss(opt.best_soft, opt.group).min().item(), abs=1e-5)
    assert cont >= start_cont
    # the projected score is the honest score of the returned text
    assert res.score == pytest.approx(-planted.eval_loss_ids([res.text_ids], opt.group[:1]).item(), abs=1e-5)


def test_extras_survive_json(planted, tmp_path):
    res = pez.optimize(planted, SoftConfig(prompt_len=4, steps=5, seed=0))
    res.save(tmp_path / "r.json")
    assert set(res.extras) == {"continuous_score"}
    assert pez.PromptResult.load(tmp_path / "r.json").extras == res.extras
    assert pez.optimize(planted, PEZConfig(prompt_len=4, steps=5)).extras == {}  # methods without extras
