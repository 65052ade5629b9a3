"""CUDA: bf16 autocast with an fp32 prompt, honest fp32 re-scoring. Skipped without a GPU."""

import pytest
import torch
import torch.nn.functional as F

import pez
from tests.conftest import PLANTED

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_planted_recovery_on_cuda_with_amp(vitb32):
    model, tok = vitb32
    model = model.cuda()
    try:
        obj = pez.CLIPObjective(model, tok, texts=[PLANTED])
        res = pez.optimize(obj, pez.PEZConfig(prompt_len=8, steps=300, seed=0, restarts=8))
        assert res.score >= 0.90
        with torch.no_grad():
            a, b = model.encode_text(tok([res.text, PLANTED]).cuda()).float()
        # the reported score is an fp32 re-encoding of the text, even though the steps ran in bf16
        assert res.score == pytest.approx(F.cosine_similarity(a, b, dim=0).item(), abs=1e-4)
    finally:
        model.cpu()


def test_sentence_objective_on_cuda(minilm):
    minilm.model.cuda()
    try:
        res = pez.invert(texts=["A man is riding a horse on the beach at sunset."], model=minilm, prompt_len=8,
                         steps=300, restarts=4, seed=0)  # fmt: skip
        assert res.score >= 0.8
    finally:
        minilm.model.cpu()


def test_the_pez_step_on_clip_makes_no_host_device_sync(vitb32):
    """The README's claim, checked: a PEZ step on a CLIP objective (projection, bf16 forward, backward, AdamW,
    device-side best tracking) never waits for the GPU."""
    from pez.optim import PEZ, PEZConfig
    from pez.optim.tracking import Tracker

    model, tok = vitb32
    model = model.cuda()
    try:
        obj = pez.CLIPObjective(model, tok, texts=[PLANTED, "a bowl of soup"])
        opt = PEZ(obj, PEZConfig(prompt_len=8, restarts=8, seed=0))
        tracker = Tracker(obj, opt.group, 8, exact=False)
        opt.step(0)  # first step: lazy CUDA initialisation may sync
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            for i in range(1, 6):
                ids, loss = opt.step(i)
                tracker.update(i, ids, loss)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    finally:
        model.cpu()


@pytest.mark.parametrize("amp", [False, True])
def test_a_graphed_step_is_the_eager_step(vitb32, amp):
    """The PEZ step captured as a CUDA graph gives the run the eager step gives: the same prompts and scores, the
    same counts of sequences run."""
    model, tok = vitb32
    model = model.cuda()
    try:
        runs = {}
        for graphs in (True, False):
            obj = pez.CLIPObjective(model, tok, texts=[PLANTED])
            cfg = pez.PEZConfig(prompt_len=8, steps=40, restarts=4, seed=0, amp=amp, cuda_graphs=graphs, sync_every=5)
            res = pez.optimize(obj, cfg)
            runs[graphs] = (res, dict(obj.counts))
        (g, g_counts), (e, e_counts) = runs[True], runs[False]
        assert g.config["cuda_graphs"] and not e.config["cuda_graphs"]
        assert g_counts == e_counts and g_counts["forward"] > 0
        assert [h["score"] for h in g.history] == pytest.approx([h["score"] for h in e.history], abs=1e-3)
        assert g.text == e.text and g.score == pytest.approx(e.score, abs=1e-5)
    finally:
        model.cpu()


def test_the_graphed_step_is_used_and_resumes(vitb32, tmp_path):
    from pez.optim import PEZ, PEZConfig

    model, tok = vitb32
    model = model.cuda()
    try:
        obj = pez.CLIPObjective(model, tok, texts=[PLANTED])
        opt = PEZ(obj, PEZConfig(prompt_len=8, steps=30, restarts=2, seed=0, sync_every=5, checkpoint_every=10))
        assert opt.graphed
        full = opt.run()[0]
        assert opt.graph is not None
        ck = tmp_path / "ck.pt"
        half = PEZ(obj, PEZConfig(prompt_len=8, steps=30, restarts=2, seed=0, sync_every=5, checkpoint_every=10))
        half.cfg.steps = 15
        half.run(checkpoint=ck)
        again = PEZ(obj, PEZConfig(prompt_len=8, steps=30, restarts=2, seed=0, sync_every=5, checkpoint_every=10))
        resumed = again.run(checkpoint=ck, resume=True)[0]
        assert resumed.steps_done == 30 and resumed.score == pytest.approx(full.score, abs=1e-3)
    finally:
        model.cpu()


def test_the_cuda_projection_shortlist_finds_the_exact_nearest_token(vitb32):
    """On CUDA the projection searches in bf16 and re-ranks a shortlist in fp32: the same ids as the exact fp32
    search, for prompts near tokens (as during a run) and far from them."""
    from pez.text.projection import Projector

    model, _ = vitb32
    E = model.token_embedding.weight.detach().cuda()
    allowed = torch.rand(E.shape[0], generator=torch.Generator().manual_seed(0)) < 0.7
    proj = Projector(E, allowed)
    assert proj.shortlists
    gen = torch.Generator(device="cuda").manual_seed(0)
    near = E[torch.randint(E.shape[0], (64, 16), device="cuda", generator=gen)]
    near = near + 0.5 * near.std() * torch.randn(near.shape, device="cuda", generator=gen)
    far = torch.randn((64, 16, E.shape[1]), device="cuda", generator=gen)
    ids = allowed.nonzero().squeeze(1).cuda()
    normed = F.normalize(E[ids].float(), dim=-1)
    for soft in (near, far):
        want = ids[(F.normalize(soft, dim=-1) @ normed.T).argmax(-1)]
        assert torch.equal(proj(soft), want)
