"""Vocabulary masks and the nearest-neighbour projection."""

import pytest
import torch
import torch.nn.functional as F

from pez.errors import PezError
from pez.text import ClipTokenizer, HFTokenizer, Projector, VocabOptions, Vocabulary


@pytest.fixture(scope="module")
def clip_vocab(tiny):
    model, tok = tiny
    return Vocabulary(ClipTokenizer(tok), model.token_embedding.weight.detach(), 75)


@pytest.fixture(scope="module")
def bert_vocab(minilm):
    hf = minilm.model[0].auto_model
    return Vocabulary(HFTokenizer(minilm.tokenizer), hf.get_input_embeddings().weight.detach(), 254)


@pytest.mark.parametrize("name", ["clip_vocab", "bert_vocab"])
def test_every_allowed_row_projects_to_itself(request, name):
    vocab = request.getfixturevalue(name)
    allowed = vocab.allowed_mask(VocabOptions(ascii_only=True, whole_words=False))
    proj = Projector(vocab.embeddings, allowed)
    ids = allowed.nonzero().squeeze(1)
    ids = torch.cat([ids[::4], ids[-50:]])  # a quarter of the vocabulary, its last rows included
    assert torch.equal(proj(vocab.embeddings[ids]), ids)


@pytest.mark.parametrize("name", ["clip_vocab", "bert_vocab"])
def test_masked_ids_are_never_chosen(request, name):
    vocab = request.getfixturevalue(name)
    allowed = vocab.allowed_mask(VocabOptions(whole_words=True))
    proj = Projector(vocab.embeddings, allowed)
    # the rows of masked tokens, and random directions, must all land on allowed tokens
    masked = (~allowed).nonzero().squeeze(1)
    queries = torch.cat([vocab.embeddings[masked], torch.randn(500, vocab.embeddings.shape[1])])
    assert allowed[proj(queries)].all()


def test_special_tokens_never_allowed(clip_vocab, bert_vocab):
    for vocab in (clip_vocab, bert_vocab):
        allowed = vocab.allowed_mask(VocabOptions(ascii_only=False, whole_words=False))
        for i in vocab.tokenizer.special_ids:
            assert not allowed[i]


def test_ascii_and_whole_words(clip_vocab, bert_vocab):
    tok = clip_vocab.tokenizer
    allowed = clip_vocab.allowed_mask(VocabOptions(ascii_only=True, whole_words=True))
    for i in allowed.nonzero().squeeze(1).tolist()[::97]:
        text = tok.token_text(i)
        assert text.isascii() and text.strip()
        assert tok.encode(text) == [i]  # a whole word comes back as itself
    car = tok.encode("car")[0]
    assert allowed[car]
    sub = bert_vocab.tokenizer.encode("unbelievably")  # un ##bel ##ie ##va ##bly or similar
    allowed_b = bert_vocab.allowed_mask(VocabOptions(whole_words=True))
    assert not allowed_b[sub[1:]].any()
    unused = bert_vocab.tokenizer.tok.convert_tokens_to_ids("[unused5]")
    assert not allowed_b[unused]
    # junk rows are excluded even when sub-words are allowed
    assert not bert_vocab.allowed_mask(VocabOptions(whole_words=False))[unused]
    assert not clip_vocab.allowed_mask(VocabOptions(whole_words=False))[tok.tok.encoder["A</w>"]]


def test_blocklist_blocks_substrings(clip_vocab):
    tok = clip_vocab.tokenizer
    allowed = clip_vocab.allowed_mask(VocabOptions(blocklist=("car",)))
    for word in ("car", "cars", "scary", "Carpet"):
        for i in tok.encode(word.lower()):
            if "car" in tok.token_text(i):
                assert not allowed[i]
    assert allowed[tok.encode("dog")[0]]


def test_blocklist_that_leaves_nothing_is_an_error(clip_vocab):
    letters = tuple("abcdefghijklmnopqrstuvwxyz0123456789") + tuple("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
    with pytest.raises(PezError, match="no token allowed"):
        clip_vocab.allowed_mask(VocabOptions(blocklist=letters))


def test_token_classes_are_stored_once_per_tokenizer(monkeypatch, tmp_path):
    """The per-token classification is computed once, stored in the cache folder, and read back by a later
    process (here: with the in-memory cache cleared and the computation made to fail) with the same masks."""
    import open_clip

    from pez.text import vocab as vocab_module

    monkeypatch.setenv("PEZ_CACHE", str(tmp_path))
    tok = ClipTokenizer(open_clip.get_tokenizer("ViT-B-32"))
    emb = torch.zeros(tok.vocab_size, 4)
    first = Vocabulary(tok, emb, 75).allowed_mask(VocabOptions())
    stored = list((tmp_path / "vocab").glob("*.pt"))
    assert len(stored) == 1

    def fail(*args):
        raise AssertionError("computed again instead of read from the cache folder")

    monkeypatch.setattr(vocab_module, "_compute_token_classes", fail)
    monkeypatch.setattr(vocab_module, "_CLASSES", type(vocab_module._CLASSES)())
    tok2 = ClipTokenizer(open_clip.get_tokenizer("ViT-B-32"))
    assert torch.equal(Vocabulary(tok2, emb, 75).allowed_mask(VocabOptions()), first)
    assert torch.equal(Vocabulary(tok2, emb, 75).allowed_mask(VocabOptions(whole_words=False)),
                       vocab_module.Vocabulary(tok, emb, 75).allowed_mask(VocabOptions(whole_words=False)))  # fmt: skip

    stored[0].write_bytes(b"not a tensor file")  # an unreadable file is computed again, not an error
    monkeypatch.undo()
    monkeypatch.setenv("PEZ_CACHE", str(tmp_path))
    monkeypatch.setattr(vocab_module, "_CLASSES", type(vocab_module._CLASSES)())
    tok3 = ClipTokenizer(open_clip.get_tokenizer("ViT-B-32"))
    assert torch.equal(Vocabulary(tok3, emb, 75).allowed_mask(VocabOptions()), first)


@pytest.mark.parametrize("name", ["clip_vocab", "bert_vocab"])
def test_the_bf16_shortlist_gives_the_fp32_nearest_row(request, name):
    """The bf16 search (CPUs with native bf16, CUDA) returns what the fp32 search returns: for prompts near tokens
    (as during a run), far from them, and between several tokens (near ties, where bf16 alone errs and the
    shortlist's check sends rows back to fp32)."""
    vocab = request.getfixturevalue(name)
    E = vocab.embeddings
    allowed = vocab.allowed_mask(VocabOptions(whole_words=False))
    exact, fast = Projector(E, allowed, bf16=False), Projector(E, allowed, bf16=True)
    assert not exact.shortlists and fast.shortlists
    gen = torch.Generator().manual_seed(0)
    ids = allowed.nonzero().squeeze(1)
    near = E[ids[torch.randint(len(ids), (300,), generator=gen)]]
    near = near + 0.5 * E.std() * torch.randn(near.shape, generator=gen)
    far = torch.randn((300, E.shape[1]), generator=gen)
    close = E[ids[torch.randint(len(ids), (300, 12), generator=gen)]]  # (300, 12, D): 12 tokens each
    ties = F.normalize(close, dim=-1).mean(1) + 1e-3 * torch.randn((300, E.shape[1]), generator=gen)
    for soft in (near, far, ties):
        assert torch.equal(fast(soft), exact(soft))
    # the check carries the near ties: with a shortlist of 1 (the bf16 argmax) it still matches fp32, by sending
    # the rows it cannot vouch for back to fp32, and the bf16 argmax alone would have been wrong on some of them
    fast.SHORTLIST, fast.rechecked = 1, 0
    assert torch.equal(fast(ties), exact(ties))
    assert fast.rechecked > 0
    normed = F.normalize(E[ids].float(), dim=-1)
    bf16_alone = ids[(F.normalize(ties, dim=-1).bfloat16() @ normed.bfloat16().T).argmax(-1)]
    assert not torch.equal(bf16_alone, exact(ties))
