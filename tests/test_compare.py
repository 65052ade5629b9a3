"""Budgets of a run (seconds, forward-equivalent passes) and the comparison harness: equal budgets, tables, plot,
the command-line helpers."""

import argparse
import csv
import json

import pytest
import torch

import pez
from pez import ComparisonResult, compare
from pez.cli.compare import add_compare_arguments, comparison_options, parse_settings, write_comparison
from pez.optim import METHODS
from pez.optim.fluent import FluentConfig, FluentPrompt
from pez.optim.gcg import GCG, GCGConfig
from pez.optim.pez import PEZ, PEZConfig
from tests.conftest import PLANTED

FAST = {"gcg": {"search_width": 16, "top_k": 32}, "autoprompt": {"candidates": 16}, "random": {"candidates": 16}}
STEP_COST = {"pez": 3, "gcg": 19, "autoprompt": 19, "random": 16}  # passes of one step in the runs below


@pytest.fixture(scope="module")
def planted(tiny):
    model, tok = tiny
    return pez.CLIPObjective(model, tok, texts=[PLANTED])


@pytest.fixture(scope="module")
def two_groups(tiny):
    model, tok = tiny
    obj = pez.CLIPObjective(model, tok, texts=[PLANTED, "a bowl of hot soup on a wooden table"])
    obj.set_groups(torch.eye(2))  # one prompt per target
    return obj


# -- budgets of one run ----------------------------------------------------------------------------------------
def test_passes_are_counted_and_budgeted(planted):
    (res,) = PEZ(planted, PEZConfig(prompt_len=6, steps=10**6, seed=0)).run(budget_passes=90)
    t = res.timings
    assert t["stopped_by"] == "budget_passes" and res.steps_done == t["steps_run"]
    # a PEZ step is one forward and one backward: 3 passes; honest re-scoring may add forwards
    assert t["backward"] == t["steps_run"] and t["forward"] >= t["steps_run"]
    assert t["passes"] == t["forward"] + 2 * t["backward"] and 87 < t["passes"] <= 90

    (res,) = GCG(planted, GCGConfig(prompt_len=6, steps=10**6, seed=0, **FAST["gcg"])).run(budget_passes=400)
    t = res.timings
    assert t["stopped_by"] == "budget_passes" and 400 - STEP_COST["gcg"] < t["passes"] <= 400
    assert t["backward"] == t["steps_run"] and t["s_per_step"] > 0


def test_seconds_budget_stops_the_run(planted):
    (res,) = PEZ(planted, PEZConfig(prompt_len=6, steps=10**6, seed=0)).run(budget_seconds=1.0)
    t = res.timings
    assert t["stopped_by"] == "budget_seconds" and 0 < t["steps_run"] < 10**6
    step = t["s_per_step"]  # the step after which another would not fit, plus the final sync
    assert t["total_s"] < 1.0 + 2 * step + 1.0  # setup and loop
    # the rule: another step, forecast to cost what the last one did, would have passed the budget (exactly, however
    # slow that last step was: a step slowed by another process on the cores ends the run that much earlier)
    assert 0 < t["next_step_s"] and t["total_s"] + t["next_step_s"] > 1.0
    with pytest.raises(pez.PezError, match="budget-seconds must be a positive, finite number"):
        PEZ(planted, PEZConfig(prompt_len=6)).run(budget_seconds=0)


def test_pass_budget_counts_across_a_resume(planted, tmp_path):
    cfg = PEZConfig(prompt_len=6, steps=10**6, seed=0, sync_every=5, checkpoint_every=5)
    ck = tmp_path / "run.ckpt"
    (half,) = PEZ(planted, cfg).run(checkpoint=ck, budget_passes=45)
    (rest,) = PEZ(planted, cfg).run(checkpoint=ck, resume=True, budget_passes=90)
    (whole,) = PEZ(planted, cfg).run(budget_passes=90)
    assert half.steps_done < rest.steps_done == whole.steps_done
    assert rest.timings["passes"] == whole.timings["passes"] and rest.ids == whole.ids


def test_fluent_schedule_follows_a_pass_budget(planted):
    opt = FluentPrompt(planted, FluentConfig(prompt_len=6, steps=10**6, seed=0))
    seen = []
    noise = opt.noise
    opt.noise = lambda p: (seen.append(p), noise(p))[1]
    opt.run(budget_passes=60)
    assert seen[0] == 0.0 and all(a < b for a, b in zip(seen, seen[1:])) and 0.9 <= seen[-1] < 1.0


# -- the harness ---------------------------------------------------------------------------------------------------
def test_every_method_gets_the_same_step_budget_and_all_files(two_groups, tmp_path):
    methods = [m for m in METHODS if m not in ("ape", "compose")]  # an LM task; a text to rewrite
    cfg = {"prompt_len": 4, "sync_every": 2, "lr": 0.05}
    res = compare(two_groups, methods, seeds=2, budget_steps=4, config=cfg, overrides=FAST)
    assert [(r.method, r.seed) for r in res.runs] == [(m, s) for m in methods for s in (0, 1)]
    for run in res.runs:
        assert run.timings["steps_run"] == 4 and run.timings["stopped_by"] == "steps"
        assert len(run.results) == 2 and run.score == pytest.approx(sum(r.score for r in run.results) / 2)
        conf = run.results[0].config
        assert conf["prompt_len"] == 4 and conf["seed"] == run.seed and conf["steps"] == 4
        assert conf.get("lr", 0.05) == 0.05  # common fields go to the methods that have them
        assert all(conf[k] == v for k, v in FAST.get(run.method, {}).items())
    assert res.runs[0].results[0].ids != res.runs[1].results[0].ids  # the seeds differ

    paths = res.save(tmp_path)
    rows = list(csv.DictReader(open(paths["csv"])))
    assert [r["method"] for r in rows] == methods
    for row, summary in zip(rows, res.summary()):
        scores = [r.score for r in res.runs if r.method == row["method"]]
        assert float(row["score_mean"]) == pytest.approx(sum(scores) / 2)
        assert float(row["score_min"]) == pytest.approx(min(scores)) and float(row["steps_run"]) == 4
        assert float(row["passes"]) == pytest.approx(summary["passes"]) and summary["seeds"] == 2
    assert rows[methods.index("soft")]["continuous_mean"] and not rows[methods.index("pez")]["continuous_mean"]
    md = paths["md"].read_text()
    assert md.count("\n| ") == 1 + len(methods) and f"| **{res.winner()}** |" in md and "steps 4" in md
    data = json.loads(paths["json"].read_text())
    assert len(data["runs"]) == 2 * len(methods) and data["winner"] == res.winner()
    assert all(x["best_history"] for r in data["runs"] for x in r["results"])
    png = paths["png"].read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    back = ComparisonResult.load(tmp_path)
    assert back.summary() == res.summary() and back.runs[0].curve() == res.runs[0].curve()


def test_every_method_gets_the_same_pass_budget(planted):
    res = compare(planted, list(STEP_COST), seeds=[3], budget_passes=120, config={"prompt_len": 4}, overrides=FAST)
    for run in res.runs:
        t = run.timings
        assert t["stopped_by"] == "budget_passes" and 120 - STEP_COST[run.method] < t["passes"] <= 120
        assert run.seed == 3
    steps = {r.method: r.timings["steps_run"] for r in res.runs}
    assert steps["pez"] > 5 * steps["gcg"]  # the same passes buy very different numbers of steps


def test_objective_factory_is_called_once_per_run(planted):
    made = []

    def factory():
        made.append(1)
        return planted

    res = compare(factory, ["pez", "random"], seeds=2, budget_steps=2, config={"prompt_len": 4}, overrides=FAST)
    assert len(made) == len(res.runs) == 4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "give a budget"),
        ({"budget_steps": 2, "methods": ["pez", "nope"]}, "unknown"),
        ({"budget_steps": 2, "config": {"steps": 5}}, "set by the budget"),
        ({"budget_steps": 2, "config": {"seed": 5}}, "set by the seeds"),
        ({"budget_steps": 2, "methods": ["gcg"], "config": {"lr": 0.1}}, "no compared method"),
        ({"budget_steps": 2, "overrides": {"gcg": {"nope": 1}}, "methods": ["gcg"]}, "GCGConfig has no 'nope'"),
        ({"budget_steps": 2, "seeds": []}, "at least one seed"),
    ],
)
def test_compare_refuses_bad_requests(planted, kwargs, message):
    with pytest.raises(pez.PezError, match=message):
        compare(planted, **kwargs)


# -- command line helpers ----------------------------------------------------------------------------------------
def test_settings_are_read_by_field_type():
    config, overrides = parse_settings(
        ["prompt-len=5", "batch_size=all", "whole_words=false", "blocklist=foo, bar", "gcg.search_width=8"],
        ["pez", "gcg"],
    )
    assert config == {"prompt_len": 5, "batch_size": None, "whole_words": False, "blocklist": ("foo", "bar")}
    assert overrides == {"gcg": {"search_width": 8}}
    for bad, message in [
        ("gcg.nope=1", "no field 'nope'"),
        ("search_width=8", "no field"),  # not a field of pez, the only method compared below
        ("prompt_len=x", "expected a int"),
        ("zzz.lr=1", "unknown method"),
        ("prompt_len", "expects"),
    ]:
        with pytest.raises(pez.PezError, match=message):
            parse_settings([bad], ["pez"])


def test_cli_helpers_run_and_write_the_table(planted, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_compare_arguments(parser)
    argv = ["--methods", "pez,gcg", "--seeds", "2", "--budget-steps", "3", "--prompt-len", "4"]
    argv += ["--set", "gcg.search_width=8", "--set", "sync_every=1", "--out", str(tmp_path / "cmp")]
    args = parser.parse_args(argv)
    assert write_comparison(args, compare(planted, **comparison_options(args))) == 0
    out, err = capsys.readouterr()
    assert all(f"| {m} |" in out or f"| **{m}** |" in out for m in ("pez", "gcg"))
    assert err.count(" seed ") == 4  # a line per finished run
    data = json.loads((tmp_path / "cmp" / "results.json").read_text())
    gcg = [r for r in data["runs"] if r["method"] == "gcg"][0]["results"][0]["config"]
    assert gcg["search_width"] == 8 and gcg["sync_every"] == 1 and gcg["prompt_len"] == 4
    with pytest.raises(SystemExit):
        parser.parse_args(["--methods", "pez,nope", "--out", "x"])


def test_equal_wall_clock_reads_the_score_at_the_budget():
    """A run whose last step overran a seconds budget is scored by what it had within the budget."""
    from pez.records import ComparisonResult, PromptResult, Run

    def result(history, elapsed):
        return PromptResult(text=history[-1]["text"], ids=[1], score=history[-1]["score"], internal_score=0.0,
                            text_ids=[1], retokenized=False, method="gcg", best_history=history,
                            timings={"elapsed_s": elapsed, "loop_s": elapsed, "s_per_step": 1.0, "forward": 1,
                                     "backward": 1, "passes": 3, "steps_run": 3})  # fmt: skip

    late = Run("gcg", 0, [result([{"time_s": 50, "score": 0.5, "text": "a"}, {"time_s": 140, "score": 0.9,
                                                                             "text": "b"}], 145)])  # fmt: skip
    res = ComparisonResult([late], {"steps": None, "seconds": 90, "passes": None})
    row = res.summary()[0]
    assert row["score_mean"] == 0.5 and row["final_score_mean"] == 0.9
    assert late.text_at(90) == "a" and late.score_at(None) == 0.9
