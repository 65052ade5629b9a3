"""The LM step runs each prompt once and its rows after its key/value cache (docs/objectives.md#lm-path): the same
hidden states, losses and gradients as running ``[prompt][row]`` in full for every row, on tiny random Llama and
GPT-2 models and the embedded smollm2."""

import pytest
import torch

from pez.data.examples import Example
from pez.objectives.lm import ClassificationObjective, CompressionObjective, LMPath
from pez.text.templates import Task, Template, Verbalizer
from tests.conftest import tiny_lm

TOL = 1e-5
REVIEWS = [
    Example("A wonderful, moving film.", "positive"),
    Example("Dull and lifeless from start to end.", "negative"),
    Example("I loved every minute of it.", "positive"),
    Example("The plot makes no sense at all.", "negative"),
]
ROWS = [" short", " a much longer row of several tokens", " a middle row", "!"]


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def tiny(request, smollm2):
    return tiny_lm(request.param, smollm2.tokenizer), smollm2.tokenizer


def _encode(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def _prefix(tok, kind: str) -> list[int]:
    """Ids before the prompt: none, the template's text, or a BOS token and the template's text."""
    text = _encode(tok, "Review the following text.")
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    return {"none": [], "text": text, "bos+text": [bos, *text]}[kind]


def _both(path: LMPath, ids: torch.Tensor, loss_fn) -> dict[bool, tuple[torch.Tensor, torch.Tensor]]:
    """loss_fn(prompt embeddings) -> losses (R,), and its gradient to the prompt, with the shared path on and off."""
    out = {}
    for shared in (True, False):
        path.shared_prompt = shared
        x = path.E[ids].detach().clone().requires_grad_(True)  # (R, L, D)
        loss = loss_fn(x)
        assert path.shared_prompt is shared  # the shared path ran (it turns itself off where it cannot)
        (grad,) = torch.autograd.grad(loss.sum(), x)
        out[shared] = (loss.detach(), grad)
    return out


def _max_diffs(out) -> tuple[float, float]:
    """Largest gaps of the losses, relative to their size where it is above 1 (a float32 loss of a few hundred
    has a spacing above 1e-5, so an absolute 1e-5 would ask for more than float32 holds), and of the gradients."""
    (la, ga), (lb, gb) = out[True], out[False]
    loss_gap = ((la - lb).abs() / lb.abs().clamp(min=1.0)).max().item()
    return loss_gap, (ga - gb).abs().max().item()


def _prompts(path: LMPath, r: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1000, min(20000, path.E.shape[0]), (r, length), generator=g)  # (R, L)


def _record_calls(monkeypatch, path: LMPath) -> list[tuple[int, ...]]:
    """The shapes of inputs_embeds of every forward the path runs from now on."""
    shapes, body = [], path.body

    def record(**kwargs):
        shapes.append(tuple(kwargs["inputs_embeds"].shape))
        return body(**kwargs)

    monkeypatch.setattr(path, "body", record)
    return shapes


@pytest.mark.parametrize("prefix", ["none", "text", "bos+text"])
def test_shared_prompt_gives_the_same_hidden_states_loss_and_gradient(tiny, prefix):
    model, tok = tiny
    path = LMPath(model, tok, _prefix(tok, prefix))
    rows = [_encode(tok, t) for t in ROWS]  # right-padded to the longest
    ids = _prompts(path, 3, 5)  # R = 3 prompts of L = 5 tokens
    m = max(len(x) for x in rows)
    real = torch.tensor([[True] * (5 + len(x)) + [False] * (m - len(x)) for x in rows]).repeat(3, 1)  # (RN, L+M)
    seen = {}

    def loss_fn(x):
        hidden = path.run(x, rows)  # (R*N, L+M, D)
        assert hidden.shape == (3 * len(rows), 5 + m, path.E.shape[1])
        seen[path.shared_prompt] = hidden.detach()
        logp = path.log_softmax(path.logits(hidden))  # (R*N, L+M, V)
        task = (logp[..., :100].mean(-1) * real).sum(1).view(3, len(rows)).mean(1)  # (R,)
        return task + path.prompt_nll(hidden, ids, len(rows))

    out = _both(path, ids, loss_fn)
    assert (seen[True] - seen[False])[real].abs().max().item() < TOL
    loss_diff, grad_diff = _max_diffs(out)
    assert loss_diff < TOL and grad_diff < TOL, (prefix, loss_diff, grad_diff)
    assert out[False][1].abs().max() > 1e-3  # the gradient reaches the prompt: the comparison is not of zeros


def test_prompt_nll_alone_has_the_same_gradient(tiny):
    model, tok = tiny
    path = LMPath(model, tok, _prefix(tok, "bos+text"))
    rows = [_encode(tok, t) for t in ROWS[:3]]
    ids = _prompts(path, 2, 6, seed=1)
    out = _both(path, ids, lambda x: path.prompt_nll(path.run(x, rows), ids, len(rows)))
    loss_diff, grad_diff = _max_diffs(out)
    assert loss_diff < TOL and grad_diff < TOL and out[False][1].abs().max() > 1e-3


def test_the_shared_path_runs_the_prompt_once_per_prompt(tiny, monkeypatch):
    model, tok = tiny
    path = LMPath(model, tok, _prefix(tok, "text"))
    rows = [_encode(tok, t) for t in ROWS]
    n, m = len(rows), max(len(x) for x in rows)
    x = path.E[_prompts(path, 3, 5)]
    shapes = _record_calls(monkeypatch, path)
    with torch.no_grad():
        path.run(x, rows)
        assert shapes == [(3, 5, path.E.shape[1]), (3 * n, m, path.E.shape[1])]  # prompts once, then the rows
        assert path.shared_prompt
        shapes.clear()
        path.run(x, rows[:1])  # one row: nothing to share
        path.run(path.E[:0][None], rows)  # no prompt: nothing to share
        path.shared_prompt = False
        path.run(x, rows)
    assert shapes == [(3, 5 + len(rows[0]), path.E.shape[1]), (n, m, path.E.shape[1]), (3 * n, 5 + m, path.E.shape[1])]


@pytest.mark.parametrize("fluency", [0.0, 0.5])
def test_classification_step_has_the_same_loss_and_gradient(tiny, fluency):
    model, tok = tiny
    verbalizer = Verbalizer.parse("negative=truly awful,positive=good")  # one row per answer
    task = Task(Template("Review the text. {prompt} {text} It was"), verbalizer)
    obj = ClassificationObjective(model, tok, task, REVIEWS, fluency=fluency)
    ids = _prompts(obj.path, 2, 4)
    out = _both(obj.path, ids, lambda x: obj.loss(x, None, None, torch.Generator(), ids)[0])
    loss_diff, grad_diff = _max_diffs(out)
    assert loss_diff < TOL and grad_diff < TOL, (fluency, loss_diff, grad_diff)
    group = torch.zeros(len(ids), dtype=torch.long)
    scores = {}
    for shared in (True, False):  # evaluation (no gradient, in chunks) too
        obj.path.shared_prompt = shared
        scores[shared] = obj.eval_loss_ids(ids.tolist(), group)
    assert (scores[True] - scores[False]).abs().max().item() < TOL


def test_compression_step_has_the_same_loss_and_gradient(tiny):
    model, tok = tiny
    inputs = [ex.text for ex in REVIEWS]
    obj = CompressionObjective(model, tok, "Answer every question in French, briefly.", inputs)
    ids = _prompts(obj.path, 2, 3)
    out = _both(obj.path, ids, lambda x: obj.loss(x, None, 4, torch.Generator().manual_seed(0), ids)[0])
    loss_diff, grad_diff = _max_diffs(out)
    assert loss_diff < TOL and grad_diff < TOL, (loss_diff, grad_diff)


def test_a_cache_that_cannot_be_shared_falls_back(smollm2, monkeypatch):
    """A sliding-window model keeps only the last keys: its prompt runs again with every row, as before."""
    from transformers import MistralConfig, MistralForCausalLM

    tok = smollm2.tokenizer
    torch.manual_seed(0)
    config = MistralConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        sliding_window=4,
        pad_token_id=tok.pad_token_id,
    )
    model = MistralForCausalLM(config).eval()
    path = LMPath(model, tok)
    rows = [_encode(tok, t) for t in ROWS[:2]]
    prompt = _encode(tok, " great film here")
    shapes = _record_calls(monkeypatch, path)
    with torch.no_grad():
        hidden = path.run(path.E[torch.tensor([prompt])], rows)
    assert not path.shared_prompt and len(shapes) == 2 and shapes[1][1] == len(prompt) + len(rows[1])
    assert not LMPath(model, tok, _prefix(tok, "text")).shared_prompt  # told by the prefix cache, up front
    for n, row in enumerate(rows):
        with torch.no_grad():
            ref = model(input_ids=torch.tensor([prompt + row])).logits[0]
        assert torch.allclose(path.logits(hidden[n, : len(prompt) + len(row)]), ref, atol=1e-4)


def test_smollm2_step_has_the_same_loss_and_gradient(smollm2):
    task = Task(Template("Review the text. {prompt} {text} It was"), Verbalizer.parse("negative,positive"))
    obj = ClassificationObjective(smollm2.model, smollm2.tokenizer, task, REVIEWS, fluency=0.5)
    ids = _prompts(obj.path, 2, 5)
    out = _both(obj.path, ids, lambda x: obj.loss(x, None, None, torch.Generator(), ids)[0])
    loss_diff, grad_diff = _max_diffs(out)
    scale = out[False][1].abs().max().item()  # about 1.4: float32 rounding through 30 layers scales with it
    assert loss_diff < TOL and grad_diff < TOL * max(1.0, scale), (loss_diff, grad_diff, scale)
