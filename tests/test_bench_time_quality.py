"""benchmarks/bench_time_quality.py's reading of the runs: the time a curve reaches a level, and a run that never
reaches it counted as infinitely slow (ratio 0), never left out of the median; bench_polish.py's paired gain."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_time_quality as bench  # noqa: E402


def test_time_to_is_the_first_point_at_or_above_the_level():
    curve = [(1.0, 0.80), (2.5, 0.90), (4.0, 0.95)]
    assert bench.time_to(curve, 0.90) == 2.5 and bench.time_to(curve, 0.85) == 2.5
    assert bench.time_to(curve, 0.96) is None


def test_runs_that_never_reach_the_reference_count_as_ratio_zero():
    ref = [{"steps": 1000, "seconds": 100.0, "score": 0.9}]
    runs = [
        {"seed": 0, "curve": [(5.0, 0.91)]},
        {"seed": 1, "curve": [(10.0, 0.95)]},
        {"seed": 2, "curve": [(3.0, 0.5)]},
    ]
    (row,) = bench.summarise([{"reference": ref, "pez": runs}], [1000])
    assert row["pez_reached"] == 2 and row["pez_runs"] == 3
    assert row["ratio_median"] == 10.0 and row["ratio_min"] == 0.0 and row["ratio_max"] == 20.0
    assert row["pez_seconds_median"] == 10.0
    (none,) = bench.summarise([{"reference": ref, "pez": runs[2:]}], [1000])
    assert none["pez_seconds_median"] is None and none["ratio_median"] == 0.0


def test_a_seeds_time_is_the_earliest_over_its_budgets():
    """A search under a budget schedules its stages by the budget (PEZ, then the polish): each budget is a run of
    its own, and a seed reaches a score at the earliest point of any of its runs; its runs count once."""
    ref = [{"steps": 1000, "seconds": 100.0, "score": 0.9}]
    runs = [{"seed": 0, "budget_s": 40.0, "curve": [(12.0, 0.85), (25.0, 0.92)]},  # PEZ until 20 s, then polish
            {"seed": 0, "budget_s": 10.0, "curve": [(4.0, 0.85), (8.0, 0.91)]},  # its polish from 5 s gets there
            {"seed": 1, "budget_s": 10.0, "curve": [(4.0, 0.80)]}]  # fmt: skip
    runs = [{**run, "score": run["curve"][-1][1]} for run in runs]
    (row,) = bench.summarise([{"reference": ref, "pez": runs}], [1000])
    assert row["pez_runs"] == 2 and row["pez_reached"] == 1
    assert sorted([bench.seconds_to(runs[:2], 0.9), bench.seconds_to(runs[2:], 0.9)], key=str) == [8.0, None]
    assert row["ratio_max"] == 100.0 / 8.0 and row["ratio_min"] == 0.0


def test_the_budget_every_run_ends_above_the_reference_at():
    """The smallest budget at which every run of every target and seed ended at or above its target's reference
    score; a budget where one run fell short, or one seed has no run, does not count."""
    ref = [{"steps": 1000, "seconds": 100.0, "score": 0.9}]
    other = [{"steps": 1000, "seconds": 80.0, "score": 0.8}]
    a = [{"seed": 0, "budget_s": 5.0, "score": 0.95, "curve": []}, {"seed": 1, "budget_s": 5.0, "score": 0.85,
         "curve": []}, {"seed": 0, "budget_s": 10.0, "score": 0.91, "curve": []},
         {"seed": 1, "budget_s": 10.0, "score": 0.9, "curve": []}, {"seed": 0, "budget_s": 20.0, "score": 0.99,
         "curve": []}]  # fmt: skip
    b = [{"seed": s, "budget_s": x, "score": 0.81, "curve": []} for s in (0, 1) for x in (5.0, 10.0, 20.0)]
    targets = [{"reference": ref, "pez": a}, {"reference": other, "pez": b}]
    assert bench.every_run_budget(targets, 1000) == 10.0  # 5 s: seed 1 of the first target fell short
    (row,) = bench.summarise(targets, [1000])
    assert row["every_run_budget_s"] == 10.0 and row["every_run_ratio"] == 80.0 / 10.0
    b[4]["score"] = 0.7  # seed 1 at 10 s of the second target now falls short; 20 s lacks the first's seed 1
    assert bench.every_run_budget(targets, 1000) is None


def test_the_polish_benchmark_pairs_runs_by_sentence_seed_and_budget():
    """bench_polish.py's gain is paired (same sentence, seed and budget), counts wins and losses, and leaves out a
    run without its pair."""
    import bench_polish

    def run(target, seed, budget, setting, score):
        return {"target": target, "seed": seed, "budget_s": budget, "setting": setting, "score": score, "wall_s": 4.0}

    rows = [run("a", 0, 4.0, "pez alone", 0.90), run("a", 0, 4.0, "pez + polish", 0.95),
            run("b", 0, 4.0, "pez alone", 0.80), run("b", 0, 4.0, "pez + polish", 0.78),
            run("c", 0, 4.0, "pez alone", 0.10),  # no pair: left out
            run("a", 0, 8.0, "pez alone", 0.99), run("a", 0, 8.0, "pez + polish", 0.99)]  # fmt: skip
    four = bench_polish.paired(rows, 4.0)
    assert four["pairs"] == 2 and four["won"] == 1 and four["lost"] == 1
    assert four["alone_mean"] == pytest.approx(0.85) and four["gain_mean"] == pytest.approx(0.015)
    assert four["gain_se"] == pytest.approx(0.035)  # stdev of (+0.05, -0.02) over sqrt 2
    eight = bench_polish.paired(rows, 8.0)
    assert eight["pairs"] == 1 and eight["won"] == eight["lost"] == 0 and eight["gain_se"] is None
