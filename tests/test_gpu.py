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
