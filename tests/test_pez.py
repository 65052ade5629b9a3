"""PEZ end to end: planted recovery, a real model, honest scores, determinism, resume, interrupts."""

import importlib.metadata

import pytest
import torch
import torch.nn.functional as F

import pez
from pez.optim import PEZ, PEZConfig
from pez.optim.tracking import Tracker
from tests.conftest import PLANTED


def clip_cosine(model, tok, text: str, target: str) -> float:
    with torch.no_grad():
        a, b = model.encode_text(tok([text, target])).float()
    return F.cosine_similarity(a, b, dim=0).item()


@pytest.mark.parametrize("which", ["tiny", "vitb32"])
def test_planted_prompt_is_recovered(request, which):
    model, tok = request.getfixturevalue(which)
    obj = pez.CLIPObjective(model, tok, texts=[PLANTED])
    res = pez.optimize(obj, pez.PEZConfig(prompt_len=8, steps=300, seed=0))
    assert res.score >= 0.90, res
    # the score is that of the text: re-encode it independently through open_clip's own encode_text
    assert res.score == pytest.approx(clip_cosine(model, tok, res.text, PLANTED), abs=1e-5)
    assert len(res.history) == 300 and res.steps_done == 300


def test_real_minilm_distillation(minilm):
    target = "A man is riding a horse on the beach at sunset."
    res = pez.invert(texts=[target], model=minilm, device="cpu", prompt_len=8, steps=300, restarts=4, seed=0)
    assert res.score >= 0.80, res
    with torch.no_grad():
        a, b = minilm.model.encode([res.text, target], convert_to_tensor=True)
    assert res.score == pytest.approx(F.cosine_similarity(a, b, dim=0).item(), abs=1e-5)
    assert len(res.restarts) == 4 and max(r["score"] for r in res.restarts) == res.score


def test_same_seed_same_prompt_other_seed_other_prompt(tiny):
    model, tok = tiny
    obj = pez.CLIPObjective(model, tok, texts=[PLANTED])
    a, b, c = (pez.optimize(obj, pez.PEZConfig(prompt_len=6, steps=30, seed=s)) for s in (3, 3, 4))
    assert a.ids == b.ids and a.history == b.history
    assert a.ids != c.ids


def test_sampled_targets_are_scored_on_all(tiny):
    model, tok = tiny
    texts = [PLANTED, "a bowl of soup", "a mountain at night"]
    obj = pez.CLIPObjective(model, tok, texts=texts)
    res = pez.optimize(obj, pez.PEZConfig(prompt_len=6, steps=40, seed=0, batch_size=1))
    mean = sum(clip_cosine(model, tok, res.text, t) for t in texts) / 3
    assert res.score == pytest.approx(mean, abs=1e-5)
    assert [t["cosine"] for t in res.target_scores] == pytest.approx(
        [clip_cosine(model, tok, res.text, t) for t in texts], abs=1e-5
    )


def test_negative_target_pushes_away(tiny):
    model, tok = tiny
    cfg = pez.PEZConfig(prompt_len=8, steps=150, seed=0)
    neg = "a red sports car on a race track"
    plain = pez.optimize(pez.CLIPObjective(model, tok, texts=[PLANTED]), cfg)
    pushed = pez.optimize(pez.CLIPObjective(model, tok, texts=[PLANTED], negative_texts=[neg]), cfg)
    assert clip_cosine(model, tok, pushed.text, neg) < clip_cosine(model, tok, plain.text, neg)
    assert pushed.target_scores[1]["weight"] == -1.0


def test_groups_optimise_one_prompt_per_target(tiny):
    model, tok = tiny
    texts = [PLANTED, "a bowl of hot soup on a wooden table"]
    obj = pez.CLIPObjective(model, tok, texts=texts)
    obj.set_groups(torch.eye(2))  # group g matches target g only
    first, second = pez.optimize_each(obj, pez.PEZConfig(prompt_len=8, steps=100, seed=0, restarts=2))
    assert clip_cosine(model, tok, first.text, texts[0]) > clip_cosine(model, tok, first.text, texts[1])
    assert clip_cosine(model, tok, second.text, texts[1]) > clip_cosine(model, tok, second.text, texts[0])
    assert first.score == pytest.approx(clip_cosine(model, tok, first.text, texts[0]), abs=1e-5)


def test_retokenised_text_is_scored_honestly(tiny):
    model, tok = tiny
    obj = pez.CLIPObjective(model, tok, texts=[PLANTED])
    ids = torch.tensor([[tok.encoder["car"], tok.encoder["pet</w>"]]])  # decodes to "carpet", one other token
    tracker = Tracker(obj, torch.zeros(1, dtype=torch.long), 1, exact=True)
    internal = obj.eval_loss(model.token_embedding(ids), torch.zeros(1, dtype=torch.long))
    tracker.update(0, ids, internal)
    tracker.sync(1, 0.0)
    best = tracker.honest[0]
    assert best["text"] == "carpet" and best["text_ids"] == [tok.encoder["carpet</w>"]]
    assert -best["loss"] == pytest.approx(clip_cosine(model, tok, "carpet", PLANTED), abs=1e-5)
    assert best["loss"] != pytest.approx(internal.item(), abs=1e-4)


@pytest.mark.parametrize("n", [20, 13])  # a checkpoint on a sync point, and one between sync points
def test_resume_continues_exactly(tiny, tmp_path, n):
    model, tok = tiny
    obj = pez.CLIPObjective(model, tok, texts=[PLANTED, "a bowl of soup"])
    cfg = dict(prompt_len=6, seed=1, restarts=2, sync_every=5, checkpoint_every=10)
    straight = pez.optimize(obj, pez.PEZConfig(steps=2 * n, **cfg))
    ck = tmp_path / "run.ckpt"
    half = pez.optimize(obj, pez.PEZConfig(steps=n, **cfg), checkpoint=ck)
    assert half.steps_done == n and ck.exists()
    resumed = pez.optimize(obj, pez.PEZConfig(steps=2 * n, **cfg), checkpoint=ck, resume=True)
    assert resumed.ids == straight.ids and resumed.text == straight.text
    assert resumed.history == straight.history
    assert [(h["step"], h["text"]) for h in resumed.best_history] == [
        (h["step"], h["text"]) for h in straight.best_history
    ]


def test_resume_refuses_other_options(tiny, tmp_path):
    model, tok = tiny
    obj = pez.CLIPObjective(model, tok, texts=[PLANTED])
    ck = tmp_path / "run.ckpt"
    pez.optimize(obj, pez.PEZConfig(prompt_len=6, steps=10), checkpoint=ck)
    with pytest.raises(pez.PezError, match="prompt_len"):
        pez.optimize(obj, pez.PEZConfig(prompt_len=7, steps=20), checkpoint=ck, resume=True)
    other = pez.CLIPObjective(model, tok, texts=["a bowl of soup"])
    with pytest.raises(pez.PezError, match="other targets"):
        pez.optimize(other, pez.PEZConfig(prompt_len=6, steps=20), checkpoint=ck, resume=True)


def test_ctrl_c_keeps_best_prompt_and_checkpoint(tiny, tmp_path):
    model, tok = tiny
    obj = pez.CLIPObjective(model, tok, texts=[PLANTED])
    cfg = pez.PEZConfig(prompt_len=6, steps=100, sync_every=10, checkpoint_every=10)

    def stop_at_30(p):
        if p.step == 30:
            raise KeyboardInterrupt

    ck = tmp_path / "run.ckpt"
    res = pez.optimize(obj, cfg, callback=stop_at_30, checkpoint=ck)
    assert res.interrupted and res.steps_done == 30 and res.text
    assert res.score == pytest.approx(clip_cosine(model, tok, res.text, PLANTED), abs=1e-5)
    assert torch.load(ck, weights_only=True)["step"] == 30
    done = pez.optimize(obj, cfg, checkpoint=ck, resume=True)
    assert done.steps_done == 100 and not done.interrupted and done.score >= res.score


def test_result_round_trips_through_json(tiny, tmp_path):
    model, tok = tiny
    res = pez.optimize(pez.CLIPObjective(model, tok, texts=[PLANTED]), pez.PEZConfig(prompt_len=4, steps=10))
    res.save(tmp_path / "r.json")
    back = pez.PromptResult.load(tmp_path / "r.json")
    assert back == res
    assert back.versions["torch"] == importlib.metadata.version("torch") and back.versions == res.versions
    assert back.config["prompt_len"] == 4 and back.method == "pez" and back.timings["steps_run"] == 10


def test_prompt_longer_than_context_is_refused(tiny):
    model, tok = tiny
    obj = pez.CLIPObjective(model, tok, texts=[PLANTED])
    with pytest.raises(pez.PezError, match="longer than this model allows"):
        pez.optimize(obj, pez.PEZConfig(prompt_len=76, steps=1))


def test_init_text_starts_from_that_text(tiny):
    model, tok = tiny
    obj = pez.CLIPObjective(model, tok, texts=[PLANTED])
    res = pez.optimize(obj, pez.PEZConfig(prompt_len=8, steps=1, init_text=PLANTED, sync_every=1))
    assert res.history[0]["score"] > 0.999  # the first evaluated prompt is the planted text itself


def test_sigint_stops_between_steps_and_resumes_exactly(tiny, tmp_path):
    import os
    import signal

    model, tok = tiny
    obj = pez.CLIPObjective(model, tok, texts=[PLANTED])
    cfg = pez.PEZConfig(prompt_len=6, steps=60, sync_every=5, checkpoint_every=10, seed=2)
    straight = pez.optimize(obj, cfg)

    def ctrl_c_at_25(p):
        if p.step == 25:
            os.kill(os.getpid(), signal.SIGINT)  # as a user's Ctrl-C: the loop finishes its step, then stops

    ck = tmp_path / "run.ckpt"
    cut = pez.optimize(obj, cfg, callback=ctrl_c_at_25, checkpoint=ck, on_signal="return")  # kept, no raise
    assert cut.interrupted and cut.steps_done == 25
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
    resumed = pez.optimize(obj, cfg, checkpoint=ck, resume=True)
    assert resumed.ids == straight.ids and resumed.history == straight.history


def test_a_second_ctrl_c_mid_step_keeps_the_last_consistent_checkpoint(tiny, tmp_path, monkeypatch):
    """The hard interrupt lands mid-step (the method's state holds half a step): no checkpoint is written then,
    and resuming from the last one equals a run straight through."""
    model, tok = tiny
    obj = pez.CLIPObjective(model, tok, texts=["a red car on a road"])
    cfg = PEZConfig(prompt_len=4, steps=30, seed=0, sync_every=5, checkpoint_every=10)
    (straight,) = PEZ(obj, cfg).run()
    real = PEZ.step

    def half_step(self, i):
        if i == 25:
            with torch.no_grad():
                self.soft.add_(1.0)  # half of a step's update
            raise KeyboardInterrupt  # the second Ctrl-C
        return real(self, i)

    ck = tmp_path / "c.ckpt"
    monkeypatch.setattr(PEZ, "step", half_step)
    (cut,) = PEZ(obj, cfg).run(checkpoint=ck)
    assert cut.interrupted and cut.steps_done == 25
    assert torch.load(ck, weights_only=True)["step"] == 20  # the last consistent state, not step 25's half
    monkeypatch.setattr(PEZ, "step", real)
    (resumed,) = PEZ(obj, cfg).run(checkpoint=ck, resume=True)
    assert resumed.text == straight.text and resumed.history == straight.history


@pytest.mark.parametrize("method", ["pez", "gcg"])
def test_a_step_under_bf16_autocast_runs_and_reports_fp32_scores(tiny, monkeypatch, method):
    """The bf16 path CUDA runs by default, run on the CPU: the prompt stays fp32, the step's losses come from bf16
    forwards, and what is reported is the fp32 score of the text."""
    from pez.optim import METHODS, make_config

    cls = METHODS[method]
    monkeypatch.setattr(cls, "amp_dtype", lambda self: torch.bfloat16)
    model, tok = tiny
    obj = pez.CLIPObjective(model, tok, texts=[PLANTED])
    cfg = make_config(method, {"prompt_len": 4, "steps": 10, "seed": 0, "sync_every": 5, "search_width": 16}
                      if method == "gcg" else {"prompt_len": 4, "steps": 10, "seed": 0, "sync_every": 5})  # fmt: skip
    opt = cls(obj, cfg)
    with opt.autocast():
        feats = obj.encode_embeds(opt.E[opt.initial_ids()].float())
    assert feats.dtype == torch.bfloat16  # the forward really ran in bf16
    (res,) = opt.run()
    if method == "pez":
        assert opt.soft.dtype == torch.float32
    honest = -obj.eval_loss_ids([res.text_ids], torch.zeros(1, dtype=torch.long)).item()
    assert res.score == pytest.approx(honest, abs=1e-6)
    assert res.score != res.internal_score  # the bf16 loss was re-scored, not reported as is
