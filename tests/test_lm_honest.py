"""The ids the search optimises are the ids the filled template really tokenises to, for every template shape,
so a language-model prompt's score is the score of its text (issue: 'LM scores are not the scores of the text')."""

import pytest
import torch

from pez.objectives.lm import ClassificationObjective
from pez.optim import PEZ, GCGConfig, PEZConfig
from pez.optim.gcg import GCG
from pez.text.templates import Task, Template, Verbalizer
from tests.conftest import tiny_lm
from tests.test_lm import REVIEWS

TEMPLATES = [
    "{prompt} {text} It was",
    "Review: {prompt} {text} It was",
    "Review:\n{prompt}\n{text}\nIt was",
    "Classify the review.{prompt} {text} It was",
]


@pytest.fixture(scope="module")
def llama(smollm2):
    return tiny_lm("llama", smollm2.tokenizer), smollm2.tokenizer


def _objective(llama, template):
    model, tok = llama
    return ClassificationObjective(model, tok, Task(Template(template), Verbalizer.parse("negative,positive")), REVIEWS)


@pytest.mark.parametrize("template", TEMPLATES)
def test_sampled_prompts_tokenise_back_inside_the_filled_template(llama, template):
    """Random prompts from the search's allowed tokens, decoded and filled into the template, tokenise (as the
    whole text, special tokens included) to exactly the path's prefix, the prompt's ids and the row."""
    model, tok = llama
    obj = _objective(llama, template)
    opt = PEZ(obj, PEZConfig(prompt_len=6, restarts=40, seed=1, steps=1))
    ids = opt.initial_ids()  # (40, 6), drawn from the allowed tokens of each position
    task = obj.task
    for row in ids.tolist():
        text = obj.vocab.decode(row)
        filled = tok(task.template.fill(text, REVIEWS[0].text))["input_ids"]
        expected = (
            obj.path.prefix_ids + row + tok(task.template.after(REVIEWS[0].text), add_special_tokens=False)["input_ids"]
        )
        assert filled == expected, (template, text)
        assert obj.vocab.encode(text) == row


@pytest.mark.parametrize("template", TEMPLATES[:2])
@pytest.mark.parametrize("method", ["pez", "gcg"])
def test_found_prompts_are_never_retokenized(llama, template, method):
    obj = _objective(llama, template)
    for seed in range(3):
        if method == "pez":
            opt = PEZ(obj, PEZConfig(prompt_len=5, steps=20, restarts=2, seed=seed, batch_size=None, sync_every=5))
        else:
            cfg = GCGConfig(prompt_len=5, steps=4, seed=seed, batch_size=None, sync_every=2, search_width=16, top_k=8)
            opt = GCG(obj, cfg)
        (res,) = opt.run()
        assert not res.retokenized and res.ids == res.text_ids
        assert res.score == pytest.approx(res.internal_score, abs=1e-5)


def test_projection_keeps_each_position_in_its_own_vocabulary(llama):
    obj = _objective(llama, "{prompt} {text} It was")
    opt = PEZ(obj, PEZConfig(prompt_len=4, seed=0, steps=1))
    soft = torch.randn(3, 4, obj.path.E.shape[1], generator=torch.Generator().manual_seed(0))
    ids = opt.projector(soft)
    assert opt.allowed[0, ids[:, 0]].all() and opt.allowed[1:].gather(1, ids[:, 1:].T).all()
