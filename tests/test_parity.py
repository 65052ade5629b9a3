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


@pytest.mark.parametrize("which", ["tiny", "vitb32"])
def test_the_pruned_prompt_path_equals_the_full_one_with_its_gradient(request, which):
    """encode_embeds (start token cached, last block's MLP at the pooled position only) against the full forward
    over start + prompt + end, on a batch of prompts: features and the gradient the step takes."""
    model, tok = request.getfixturevalue(which)
    path = ClipTextPath(model, tok)
    assert path.fast
    ids = torch.randint(1, tok.eot_token_id - 1, (5, 9), generator=torch.Generator().manual_seed(0))
    x = model.token_embedding(ids).detach()
    target = torch.randn(model.text_projection.shape[1], generator=torch.Generator().manual_seed(1))

    def run(fast):
        path.fast = fast
        emb = x.clone().requires_grad_(True)
        feats = path.encode_embeds(emb)
        (grad,) = torch.autograd.grad((feats @ target).square().sum(), emb)
        return feats.detach(), grad

    (f_fast, g_fast), (f_full, g_full) = run(True), run(False)
    with torch.no_grad():
        seq = torch.zeros(5, model.positional_embedding.shape[0], dtype=torch.long)  # zero-id padding
        seq[:, 0], seq[:, 1:10], seq[:, 10] = tok.sot_token_id, ids, tok.eot_token_id
        ref = model.encode_text(seq)
    assert (f_fast - ref).abs().max() < 1e-5 and (f_full - ref).abs().max() < 1e-5
    assert (g_fast - g_full).abs().max() <= 1e-5 * g_full.abs().max()
    assert g_full.abs().max() > 0


def test_the_start_token_cache_follows_the_model(tiny):
    """Weights changed in place or a new device invalidate the cached start-token states."""
    model, tok = tiny
    path = ClipTextPath(model, tok)
    ids = torch.tensor([path.tok.encode(PLANTED)])
    before = path.encode_embeds(model.token_embedding(ids)).detach()
    bump = torch.randn(model.token_embedding.weight.shape[1], generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            model.token_embedding.weight[tok.sot_token_id] += bump
            want = model.encode_text(tok([PLANTED]))
        assert (path.encode_embeds(model.token_embedding(ids)) - want).abs().max() < 1e-5
        assert (before - want).abs().max() > 1e-3
    finally:
        with torch.no_grad():
            model.token_embedding.weight[tok.sot_token_id] -= bump


def test_other_open_clip_blocks_take_the_full_path():
    import open_clip

    model = open_clip.create_model("ViT-B-32", pretrained=None)  # then a custom block kind: normalised q and k
    model.transformer = open_clip.transformer.Transformer(64, 2, 2, block_type="custom", qk_norm=True)
    model.token_embedding = torch.nn.Embedding(49408, 64)
    model.positional_embedding = torch.nn.Parameter(torch.randn(77, 64) * 0.01)
    model.ln_final = torch.nn.LayerNorm(64)
    model.text_projection = torch.nn.Parameter(torch.randn(64, 32) * 0.1)
    path = ClipTextPath(model, open_clip.get_tokenizer("ViT-B-32"))
    assert not path.fast
    with torch.no_grad():
        x = model.token_embedding(torch.tensor([[320, 1929, 539]]))
        assert path.encode_embeds(x).shape == (1, 32)


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
