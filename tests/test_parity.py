"""Parity: our embedding paths equal the libraries' own forwards for the same token ids."""

import pytest
import torch

from pez.objectives.clip import ClipTextPath
from tests.conftest import PLANTED

TEXTS = [PLANTED, "hello", "an oil painting of a lighthouse in a storm, dramatic light, trending on artstation"]


@pytest.mark.parametrize("which", ["tiny", "vitb32"])
def test_clip_text_path_equals_encode_text(request, which):
    model, tok = request.getfixturevalue(which)
    path = ClipTextPath(model, tok)
    with torch.no_grad():
        ref = model.encode_text(tok(TEXTS))  # all 77 positions, open_clip's own code
        ids = [path.tok.encode(t) for t in TEXTS]
        ours_ids = path.encode_ids(ids)  # variable lengths, padded, only as many positions as needed
        ours_emb = torch.cat([path.encode_embeds(model.token_embedding(torch.tensor([i]))) for i in ids])
    assert (ours_ids - ref).abs().max() < 1e-5
    assert (ours_emb - ref).abs().max() < 1e-5


def test_clip_text_path_gradient_flows(tiny):
    model, tok = tiny
    path = ClipTextPath(model, tok)
    x = model.token_embedding(torch.tensor([path.tok.encode(PLANTED)])).detach().requires_grad_(True)
    path.encode_embeds(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_sentence_path_equals_encode(minilm):
    from pez.objectives.sentence import SentenceObjective

    obj = SentenceObjective(minilm.model, texts=["x"])
    ids = [obj.tok.encode(t) for t in TEXTS]
    with torch.no_grad():
        ref = minilm.model.encode(TEXTS, convert_to_tensor=True)
        ours_ids = obj.encode_ids(ids)
        emb = obj.vocab.embeddings
        ours_emb = torch.cat([obj.encode_embeds(emb[torch.tensor([i])]) for i in ids])
    assert (ours_ids - ref).abs().max() < 1e-5
    assert (ours_emb - ref).abs().max() < 1e-5
