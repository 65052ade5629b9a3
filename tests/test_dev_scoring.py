"""Scoring LM prompts on dev, where the time of readable task searches goes (issue 29): chunks of like lengths give
each prompt the loss it gets one example at a time; a prompt's dev accuracy comes from the pass that scored it;
the readable search's screen ranks candidates on a label-balanced share of dev and moves only on all of it."""

import pytest
import torch

import pez
from pez.errors import PezError
from pez.objectives.lm import ClassificationObjective
from pez.text.templates import Task, Template, Verbalizer
from tests.conftest import tiny_lm
from tests.test_lm import REVIEWS, Ex

TASK = Task(Template("{prompt} {text} It was"), Verbalizer.parse("negative,positive"))
# lengths far apart (a chunk of all of them pads the short ones to the longest), labels not in turn
DEV = [
    Ex("Bad.", "negative"),
    Ex("Awful, just awful, from the first scene to the very last, with nothing to redeem it.", "negative"),
    Ex("Dull.", "negative"),
    Ex("Great fun.", "positive"),
    Ex("A warm, clever and beautifully acted story that I would gladly watch again and again.", "positive"),
]


@pytest.fixture(scope="module")
def llama(smollm2):
    return tiny_lm("llama", smollm2.tokenizer), smollm2.tokenizer


def _objective(llama, max_rows=64):
    model, tok = llama
    return ClassificationObjective(model, tok, TASK, REVIEWS, DEV, max_rows=max_rows)


def test_dev_loss_in_chunks_of_like_lengths_is_the_mean_of_each_examples_loss(llama):
    obj = _objective(llama)
    ids = torch.tensor([obj.vocab.encode(t)[:3] for t in ("Is this good", "Rate the film", "Say it now")])
    group = torch.zeros(3, dtype=torch.long)
    alone = torch.stack([obj.eval_loss(obj.path.E[ids], group, ids, index=[i]) for i in range(len(DEV))]).mean(0)
    for rows in (4, 8, 64):
        obj.max_rows = rows
        assert torch.allclose(obj.eval_loss(obj.path.E[ids], group, ids), alone, atol=1e-5)


def test_a_prompts_dev_accuracy_comes_from_the_pass_that_scored_it(llama):
    obj, fresh = _objective(llama), _objective(llama)
    prompts = [obj.vocab.encode(t) for t in ("Is this review positive", "The film was", "Rate this")]
    obj.eval_loss_ids(prompts, torch.zeros(3, dtype=torch.long))
    before = dict(obj.counts)
    assert [obj.accuracy(p) for p in prompts] == [fresh.accuracy(p) for p in prompts]
    assert obj.counts == before  # no second pass over dev
    screened = obj.vocab.encode("Only screened")
    obj.eval_loss(obj.path.E[torch.tensor([screened])], torch.zeros(1, dtype=torch.long),
                  torch.tensor([screened]), index=[0, 3])  # fmt: skip
    assert obj.accuracy(screened) == fresh.accuracy(screened)  # a screen's hits are not all of dev's


def test_the_screen_takes_the_labels_in_turn(llama):
    obj = _objective(llama)
    assert obj.screen_index(3) == [0, 3, 1]  # negative, positive, negative
    assert obj.screen_index(99) == [0, 3, 1, 4, 2]


def test_readable_with_a_screen_ranks_on_the_screen_and_moves_on_all_of_dev(llama):
    obj = _objective(llama)
    calls = []
    real = obj.eval_loss

    def spy(embeds, group, ids=None, index=None):
        calls.append((embeds.shape[0], index))
        return real(embeds, group, ids, index)

    obj.eval_loss = spy
    start = "Is this review positive or negative"
    cfg = pez.make_config("readable", {"init_text": start, "prompt_len": 8, "screen": 2, "confirm": 1, "top_k": 4,
                                       "lm_k": 4, "steps": 4, "seed": 0, "batch_size": 4})  # fmt: skip
    res = pez.optimize(obj, cfg)
    screens = [index for _, index in calls if index is not None]
    assert screens and all(index == [0, 3] for index in screens)
    assert all(n <= 1 for n, index in calls[1:] if index is None)  # confirmations: 1 candidate a step
    obj.eval_loss = real
    group = torch.zeros(1, dtype=torch.long)
    assert res.score == pytest.approx(-float(obj.eval_loss_ids([res.text_ids], group)[0]), abs=1e-5)
    start_loss = float(obj.eval_loss_ids([obj.vocab.encode(start)], group)[0])
    assert -res.score <= start_loss + 1e-6  # it moved only to texts better on all of dev


def test_a_screen_needs_an_lm_task(minilm):
    from pez.objectives.sentence import SentenceObjective

    obj = SentenceObjective(minilm.model, texts=["A man rides a horse on the beach."])
    cfg = pez.make_config("readable", {"prompt_len": 4, "screen": 2, "steps": 1})
    with pytest.raises(PezError, match="--screen"):
        pez.optimize(obj, cfg)


@pytest.mark.parametrize("job", ["invert", "invert-dataset"])
def test_the_image_jobs_refuse_a_screen_before_any_model_loads(job, monkeypatch, capsys, tmp_path, astronaut_png):
    import pez.jobs.invert
    import pez.jobs.invert_dataset
    from pez.cli import main

    def no_load(*args, **kwargs):
        raise AssertionError("a model was loaded")

    for module in (pez.jobs.invert, pez.jobs.invert_dataset):
        monkeypatch.setattr(module, "load_model", no_load, raising=False)
    target = ["--text", "A horse."] if job == "invert" else [str(astronaut_png.parent), "--out", str(tmp_path / "o")]
    code = main([job, "--model", "minilm" if job == "invert" else "tiny-clip", *target, "--method", "readable",
                 "--screen", "4", "--device", "cpu"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--screen" in err[0], err


def test_honest_scores_a_text_once_however_often_it_recurs(llama):
    """Readable mode's best history repeats its texts; the honest rescoring reads each distinct text once."""
    from pez.objectives.prior import PriorObjective
    from pez.records import PromptResult

    class Reader:  # the prior's reading is not what is counted here
        name = "reader"

    obj = _objective(llama)
    prior = PriorObjective(obj, Reader(), 0.1)
    prior.nll = lambda texts: [1.0 for _ in texts]
    ids = obj.vocab.encode("Is this review positive")
    text = obj.vocab.decode(ids)
    res = PromptResult(text=text, ids=ids, text_ids=ids, score=-1.0, internal_score=-1.0, retokenized=False,
                       method="readable", restarts=[{"text": text}],
                       best_history=[{"step": s, "text": text} for s in range(5)])  # fmt: skip
    before = obj.counts["forward"]
    prior.honest([res])
    assert obj.counts["forward"] - before == len(DEV)  # one pass over dev
    expect = -float(obj.eval_loss_ids([ids], torch.zeros(1, dtype=torch.long))[0])
    assert res.score == expect and all(e["score"] == expect for e in res.best_history)
