"""The polish (``pez invert --polish SHARE``): PEZ, then GCG's exact swaps from PEZ's best prompt for the last
share of the time. It never returns a worse prompt than PEZ's, its score is its text's own, it is on by default
under a seconds budget (and keeps it), a run without a clock is the same as before, and bad settings are one line
before any model loads."""

import pytest
import torch

import pez
from pez.cli import main
from pez.jobs.invert import INVERT_DEFAULTS, POLISH
from tests.conftest import PLANTED, kept_budget

TEXT = "A man is riding a horse on the beach at sunset."


def honest(minilm, text: str) -> float:
    """The score of ``text`` as a user gets it: re-tokenised and encoded afresh."""
    obj = pez.make_objective(minilm, texts=[TEXT], device="cpu")
    ids = obj.vocab.encode(text)[: obj.vocab.max_len]
    with torch.no_grad():
        return -obj.eval_loss_ids([ids], torch.zeros(1, dtype=torch.long)).item()


def test_the_polish_finishes_a_short_pez_search_and_keeps_its_texts_own_score(minilm):
    """After 20 PEZ steps on minilm exact swaps still find better prompts: the polish returns one, never a worse
    one, scored on its own text; both stages' times add up, and the history joins them in time order."""
    res = pez.invert(texts=[TEXT], model=minilm, prompt_len=8, steps=20, seed=0, judge=None, polish=0.5)
    p, t = res.extras["polish"], res.timings
    assert p["improved"] and res.score > p["pez_score"] and res.text != p["pez_text"]
    assert res.score == pytest.approx(honest(minilm, res.text), abs=1e-5)
    assert p["steps"] >= 1 and t["polish_steps"] == p["steps"]
    assert t["total_s"] == pytest.approx(t["pez_s"] + t["polish_s"])
    history = res.best_history
    assert [h["score"] for h in history] == sorted(h["score"] for h in history)
    assert [h["time_s"] for h in history] == sorted(h["time_s"] for h in history)
    assert history[-1]["stage"] == "polish" and history[-1]["text"] == res.text


def test_without_a_clock_the_run_is_the_same_as_before(minilm):
    """No seconds budget, no polish: ``pez invert`` is PEZ with its defaults, exactly, for the same seed."""
    settings = {"prompt_len": 6, "steps": 15, "seed": 3}
    default = pez.invert(texts=[TEXT], model=minilm, judge=None, **settings)
    off = pez.invert(texts=[TEXT], model=minilm, judge=None, polish=0, **settings)
    obj = pez.make_objective(minilm, texts=[TEXT], device="cpu")
    plain = pez.optimize(obj, pez.make_config("pez", settings, INVERT_DEFAULTS))
    assert default.text == off.text == plain.text and default.score == off.score == plain.score
    assert "polish" not in default.extras and "polish_s" not in default.timings


def test_a_seconds_budget_polishes_by_default_and_keeps_the_budget(minilm):
    """Under ``--budget-seconds`` the last half of the search is the polish; the two stages together stop within
    the budget (by the recorded timings: each stage may run one step past its share, as the loop's rule allows)."""
    res = pez.invert(texts=[PLANTED], model=minilm, prompt_len=8, seed=0, judge=None, budget=pez.Budget(seconds=6))
    p, t = res.extras["polish"], res.timings
    assert p["share"] == POLISH["share"] and t["polish_steps"] >= 1
    assert res.score >= p["pez_score"]
    assert t["stopped_by"] == "budget_seconds"  # the result says the budget stopped it
    assert kept_budget(t, 6, before=t["before_search_s"]), t


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--polish", "1"], "--polish is the share"),
        (["--polish", "-0.1"], "--polish is the share"),
        (["--polish", "0.5", "--readable"], "readable mode has its own"),
        (["--polish", "0.5", "--method", "gcg"], "--method gcg has none"),
    ],
)
def test_bad_polish_settings_are_one_line_before_any_load(argv, message, tmp_path, capsys):
    missing = str(tmp_path / "no-such-model")  # loading it would fail with another message
    assert main(["invert", "--model", missing, "--text", "a dog", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_the_cli_says_both_stages(minilm, capsys):
    """``pez invert --polish`` prints where the time went: PEZ's steps, then the polish's."""
    assert main(["invert", "--model", "minilm", "--text", TEXT, "--prompt-len", "6", "--steps", "10",
                 "--polish", "0.5", "--device", "cpu", "--no-judge"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "PEZ 10 steps" in err and "then the polish" in err, err


def test_with_steps_and_a_long_budget_the_polish_takes_its_share_not_the_whole_budget(minilm):
    """PEZ ended by its ``--steps`` long before a 600 s budget: the polish gets its share of the search's time
    (as much as PEZ took, at 0.5), not all that is left of the budget, and the run says its steps ended it (the
    web UI's text tab waited the whole budget before this was fixed)."""
    res = pez.invert(texts=[TEXT], model=minilm, prompt_len=6, steps=5, seed=0, judge=None,
                     budget=pez.Budget(seconds=600))  # fmt: skip
    t = res.timings
    assert t["stopped_by"] == "steps" and t["polish_stopped_by"] == "budget_seconds"
    assert t["polish_loop_s"] <= t["pez_s"] + 2 * t["polish_loop_s"] / t["polish_steps"], t
