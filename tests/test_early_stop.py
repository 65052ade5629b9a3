"""The early stop (``patience`` / ``min_delta``): it reads the tracked honest scores only, so a run that stops
early is the same run as without the stop up to where it stops; it never stops while the best honest score still
rises by more than the delta; it is refused when its settings are not numbers it can use."""

import pytest
import torch

import pez
from tests.conftest import PLANTED

FAST = {"prompt_len": 8, "seed": 0, "sync_every": 10, "restarts": 2}


def _run(tiny, **cfg):
    model, tok = tiny
    obj = pez.CLIPObjective(model, tok, texts=[PLANTED])
    return pez.optimize(obj, pez.PEZConfig(**{**FAST, **cfg}))


def _same(a, b):
    assert a.ids == b.ids and a.text == b.text and a.score == b.score
    assert a.history == b.history and a.restarts == b.restarts
    assert [(h["step"], h["score"], h["text"]) for h in a.best_history] == [
        (h["step"], h["score"], h["text"]) for h in b.best_history
    ]


def test_a_stop_that_never_fires_leaves_the_run_as_it_was(tiny):
    off = _run(tiny, steps=60)
    never = _run(tiny, steps=60, patience=10**6)
    _same(off, never)
    assert off.timings["stopped_by"] == never.timings["stopped_by"] == "steps" and off.steps_done == 60


def test_an_early_stop_is_the_run_without_it_cut_where_it_stopped(tiny):
    stopped = _run(tiny, steps=600, patience=40, min_delta=1e-3)
    t = stopped.timings
    assert t["stopped_by"] == "early-stop" and stopped.steps_done == t["stopped_at"] < 600
    assert t["stopped_at"] % FAST["sync_every"] == 0 and t["stopped_at"] - t["last_gain_at"] >= 40
    cut = _run(tiny, steps=stopped.steps_done)  # the same seed, no early stop, as many steps
    _same(stopped, cut)


@pytest.mark.parametrize("delta", [0.0, 0.01])
def test_it_never_stops_while_the_best_still_rises_by_more_than_the_delta(tiny, delta):
    res = _run(tiny, steps=600, patience=30, min_delta=delta)
    stop, gains = res.steps_done, res.best_history
    assert res.timings["stopped_by"] == "early-stop"
    # over the last `patience` steps before the stop, the best rose by no more than the delta
    before = [h["score"] for h in gains if h["step"] <= stop - 30]
    assert max(h["score"] for h in gains) <= max(before) + delta + 1e-9
    # and at every earlier sync point the rule would not have fired: a gain above delta came within patience
    counted, last = -1.0, 0
    for h in gains:
        if h["score"] > counted + delta:
            assert h["step"] - last <= 30 or last == 0
            counted, last = h["score"], h["step"]
    assert stop - last >= 30


def test_a_planted_text_found_at_once_stops_after_patience(tiny):
    res = _run(tiny, steps=600, patience=50, init_text=PLANTED)
    assert res.score > 0.999 and res.text == PLANTED  # found at the first step; nothing beats it
    # its first sync (step 10) counts the gain; 50 steps without another end the search
    assert res.timings["stopped_by"] == "early-stop" and res.steps_done == 60 and res.timings["last_gain_at"] == 10


@pytest.mark.slow
def test_a_planted_text_is_found_before_the_stop_on_vitb32(vitb32):
    model, tok = vitb32
    obj = pez.CLIPObjective(model, tok, texts=[PLANTED])
    res = pez.optimize(obj, pez.PEZConfig(**{**FAST, "restarts": 4, "steps": 1000, "patience": 100}))
    assert res.timings["stopped_by"] == "early-stop" and res.steps_done < 1000 and res.score >= 0.9


def test_groups_stop_one_by_one_and_keep_what_they_had(tiny):
    model, tok = tiny
    texts = [PLANTED, "a red bicycle leaning on a brick wall"]
    obj = pez.CLIPObjective(model, tok, texts=texts)
    obj.set_groups(torch.eye(2))
    both = pez.optimize_each(obj, pez.PEZConfig(**{**FAST, "steps": 600, "patience": 40}))
    for i, text in enumerate(texts):
        alone = pez.optimize(
            pez.CLIPObjective(model, tok, texts=[text]), pez.PEZConfig(**{**FAST, "steps": 600, "patience": 40})
        )
        assert both[i].text == alone.text and both[i].steps_done == alone.steps_done
        assert both[i].score == pytest.approx(alone.score, abs=1e-5)
        assert [h["step"] for h in both[i].history] == [h["step"] for h in alone.history]  # none after its stop
    assert {r.timings["stopped_by"] for r in both} == {"early-stop"}


@pytest.mark.parametrize(
    "bad, message",
    [({"patience": 0}, "--patience must be"), ({"patience": -3}, "--patience must be"),
     ({"patience": 2.5}, "--patience must be"), ({"min_delta": -0.1}, "min-delta must be"),
     ({"min_delta": float("nan")}, "min-delta must be")],
)  # fmt: skip
def test_bad_settings_are_one_line(bad, message):
    with pytest.raises(pez.PezError, match=message):
        pez.PEZConfig(**bad)
