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
