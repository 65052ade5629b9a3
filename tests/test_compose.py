"""Compose (pez.optim.compose) and readable mode built on it (pez.jobs.invert.readable_search)."""

import pytest
import torch

import pez
from pez.optim.compose import CONNECTORS, Compose

TARGET = "Two dogs are running across a snowy field."
FUNCTION = set(CONNECTORS) | {"", "."}


@pytest.fixture
def obj(minilm):
    return pez.make_objective(minilm, texts=[TARGET])


def honest(obj, text: str) -> float:
    return -float(obj.eval_loss_ids([obj.vocab.encode(text)], torch.zeros(1, dtype=torch.long))[0])


def test_every_edit_keeps_the_text_within_the_limit_and_scored_exactly(obj):
    """Each kind of edit (insert, connect, delete, replace, move) yields texts of at most prompt-len tokens that
    tokenise back to their own ids, so the score of the ids is the score of the text the user gets."""
    start = "dogs snowy field running"
    cfg = pez.make_config("compose", {"prompt_len": 5, "init_text": start, "words": "animals crossing snow"})
    opt = Compose(obj, cfg)
    text = tuple(obj.vocab.encode(start))
    kinds = opt.neighbours(text, opt.lm_words(text))
    assert all(kinds.values()), {k: len(v) for k, v in kinds.items()}
    for kind, found in kinds.items():
        for cand in list(found)[:40]:
            assert 1 <= len(cand) <= 5, (kind, cand)
            decoded = obj.vocab.decode(list(cand))
            assert obj.vocab.encode(decoded) == list(cand), (kind, decoded)
            got = float(opt.base_losses([cand], 0)[0])
            assert -got == pytest.approx(honest(obj, decoded), abs=1e-5)
    assert any(len(c) == 5 for c in kinds["insert"]) and any(len(c) == 3 for c in kinds["delete"])


def test_compose_reports_the_honest_score_of_its_text(obj):
    cfg = {"prompt_len": 6, "init_text": "dogs snowy field running", "words": "animals crossing", "steps": 3}
    res = pez.optimize(obj, pez.make_config("compose", cfg))
    assert len(res.text_ids) <= 6
    assert res.score == pytest.approx(honest(obj, res.text), abs=1e-5)
    assert res.extras["prior_weight"] == 0.08 and "search_score" in res.extras


def test_readable_mode_recovers_a_planted_sentence_under_minilm(obj, smollm2):
    """The planted target is a readable sentence of 8 words: readable mode (PEZ's words, then compose) returns text
    of cosine above 0.9 (measured 0.997: the sentence itself), at a perplexity at most 3x the sentence's own,
    ending on a content word; plain PEZ with the same steps reads far worse."""
    from pez.jobs.invert import readable_search
    from pez.text.lm_text import TextLM

    res = readable_search(obj, 8, 0)
    lm = TextLM(smollm2)
    own, mine = lm.perplexity([TARGET, res.text])
    assert res.score > 0.9 and mine <= 3 * own, (res.text, res.score, mine, own)
    assert res.text.rstrip(".").split()[-1].lower() not in FUNCTION, res.text
    assert res.score == pytest.approx(honest(obj, res.text), abs=1e-5)
    pez_ppl = lm.perplexity([res.extras["pez_text"]])[0]
    assert pez_ppl > 5 * mine, res.extras["pez_text"]


def test_readable_mode_with_a_budget_stops_within_it(obj):
    """A seconds budget covers both stages (checked on the recorded timings): PEZ gets its share, compose the
    rest, and the result says the budget stopped it."""
    from pez.jobs.invert import READABLE, readable_search

    res = readable_search(obj, 8, 0, budget=pez.Budget(seconds=4.0), steps=10**6)
    assert res.timings["pez_s"] <= 4.0 * READABLE["pez_share"] + 1.0  # one step past the share at most
    assert res.timings["stopped_by"] in ("budget_seconds", "finished")
    over = res.timings["total_s"] - 4.0
    assert over <= res.timings["s_per_step"] + 0.5, res.timings  # the last step's overrun at most


def test_ctrl_c_in_the_first_stage_keeps_its_best_prompt(obj):
    """A stop during PEZ's stage ends readable mode with PEZ's best prompt so far, marked interrupted: the
    refinement does not run on."""
    from pez.jobs.invert import readable_search

    seen = []

    def callback(p):
        seen.append(p.step)
        if len(seen) == 2:
            raise KeyboardInterrupt

    res = readable_search(obj, 8, 0, callback=callback)
    assert res.interrupted and res.extras["readable_stage"] == "pez" and res.text
    assert res.score == pytest.approx(honest(obj, res.text), abs=1e-5)


def test_compose_needs_a_text_and_a_prior(obj):
    with pytest.raises(pez.PezError, match="init-text"):
        pez.optimize(obj, pez.make_config("compose", {"prompt_len": 4}))
    with pytest.raises(pez.PezError, match="prior-weight > 0"):
        pez.make_config("compose", {"prior_weight": 0.0})


def test_a_prompt_shorter_than_asked_is_said_on_the_command_line(obj):
    """--prompt-len is compose's most: it may stop with fewer words (the old readable mode gave 6 tokens for
    --prompt-len 200 without a word). The command line says how many of those asked it returned, and why."""
    from pez.cli.invert import short_line

    res = pez.optimize(obj, pez.make_config("compose", {"prompt_len": 8, "init_text": "dogs snowy", "steps": 1}))
    got = len(res.text_ids)
    assert got < 8 and short_line(res).startswith(f"{got} of the 8 tokens asked: compose stops adding words")
    full = pez.optimize(obj, pez.make_config("pez", {"prompt_len": 4, "steps": 2}))
    assert short_line(full) is None
