"""The Seconds budget field of the page's search tabs (image, text, task): passed to the job as
``budget=pez.Budget(seconds=S)`` (0 or empty: none), a bad value is one line naming the field before any model
loads, the finished search's status says when the budget stopped it (read from its recorded timings, never a
timer), and the estimate before a budgeted search is the budget, without a probe. Through the page's functions
and through gradio's client."""

import json
import math

import pytest

pytest.importorskip("gradio")

from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from pez.errors import PezError  # noqa: E402
from tests.conftest import kept_budget  # noqa: E402
from tests.test_ui import SENTENCE, free_port, run_until_progress  # noqa: E402

MANY_STEPS = 100_000  # the page's largest: the budget ends the search first


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    from pez.ui.common import Context, UIOptions

    return Context(UIOptions(device="cpu", runs=str(tmp_path_factory.mktemp("runs"))))


@pytest.mark.parametrize("value", [-1, "-0.5", math.inf, "inf", math.nan, "nan", "soon", 10**9])
def test_a_bad_seconds_budget_is_one_line_naming_the_field_before_any_load(ctx, value, astronaut_png):
    from pez.ui.image_tab import invert_images
    from pez.ui.task_tab import discover_task
    from pez.ui.text_tab import distill

    missing = "/no/such/model"  # loading it would fail with another message
    task = ("movie-reviews", None, "{prompt} {text}", "negative,positive", "", missing, 3, 5, 0, "pez", 4, 4, 8, 0.0)
    jobs = [
        lambda: distill(ctx, SENTENCE, missing, 4, 5, 0, budget_seconds=value),
        lambda: invert_images(ctx, [str(astronaut_png)], "", [], "", missing, 4, 5, 1, "pez", 0, budget_seconds=value),
        lambda: discover_task(ctx, *task, budget_seconds=value),
    ]
    for job in jobs:
        with pytest.raises(PezError) as e:
            job()
        message = str(e.value)
        assert message.startswith("Seconds budget must be") and len(message.splitlines()) == 1, message


@pytest.mark.parametrize("value", [0, 0.0, "", None, " "])
def test_zero_or_empty_is_no_budget(ctx, value):
    from pez.ui.text_tab import distill

    res, _ = distill(ctx, SENTENCE, "minilm", 4, 3, 0, restarts=1, budget_seconds=value)
    assert res.steps_done == 3 and res.timings["stopped_by"] == "steps"


def test_the_text_tab_budget_stops_the_search_and_its_status_says_so(ctx):
    from pez.ui.panel import search_status
    from pez.ui.text_tab import distill

    res, path = distill(ctx, SENTENCE, "minilm", 4, MANY_STEPS, 0, restarts=2, budget_seconds=1.5)
    assert kept_budget(res.timings, 1.5) and 1 <= res.steps_done < MANY_STEPS
    assert res.text and -1 <= res.score <= 1
    assert "the seconds budget stopped the search" in search_status(res, path)
    res, path = distill(ctx, SENTENCE, "minilm", 4, 2, 0, restarts=1, budget_seconds=600)
    assert res.timings["stopped_by"] == "steps" and "budget" not in search_status(res, path)


def test_the_image_tab_budget_stops_the_search_and_its_status_says_so(ctx, astronaut_png):
    from pez.ui.image_tab import invert_images
    from pez.ui.panel import search_status

    res, path = invert_images(ctx, [str(astronaut_png)], "", [], "", "ViT-B-32/random", 4, MANY_STEPS, 2, "pez", 0,
                              budget_seconds=2)  # fmt: skip
    assert kept_budget(res.timings, 2) and 1 <= res.steps_done < MANY_STEPS and res.text
    assert "the seconds budget stopped the search" in search_status(res, path)


def test_the_task_tab_budget_stops_the_search_and_its_status_says_so(ctx, tiny_llama_dir):
    from pez.ui.task_tab import discover_task, task_done

    report, path = discover_task(ctx, "movie-reviews", None, "{prompt} {text} It was", "negative,positive", "",
                                 tiny_llama_dir, 3, MANY_STEPS, 0, "pez", 4, 4, 8, 0.0, budget_seconds=3)  # fmt: skip
    t = report.search["timings"]
    assert kept_budget(t, 3, before=t["before_search_s"])
    assert report.prompt and report.score is not None
    assert task_done(report, path)[2].startswith("The seconds budget stopped the search.")


def test_a_budgeted_search_is_estimated_at_its_budget_without_a_probe(ctx):
    from pez.ui.text_tab import distill

    job, before = run_until_progress(
        ctx,
        lambda job, cb: distill(ctx, SENTENCE, "minilm", 4, MANY_STEPS, 0, 1, "pez", cb, job=job, budget_seconds=80),
        "distill",
    )
    assert "Estimate: at most about 80 s (the seconds budget ends the search)" in before and job.estimate_s == 80
    assert "probe_s" not in job.result[0].timings  # no probe ran before the search
    (key,) = [k for k in ctx.paces if k[0] == "distill" and k[2] == "pez" and k[5] == 4 and k[6] == 1]
    ctx.paces.record(key, 0.25)  # an earlier run's pace: 100000 steps would take hours, the budget ends it first
    job, before = run_until_progress(
        ctx,
        lambda job, cb: distill(ctx, SENTENCE, "minilm", 4, MANY_STEPS, 0, 1, "pez", cb, job=job, budget_seconds=60),
        "distill",
    )
    assert "Estimate: at most about 60 s" in before and job.estimate_s == 60
    ctx.paces.record(key, 0.25)
    job, before = run_until_progress(
        ctx,
        lambda job, cb: distill(ctx, SENTENCE, "minilm", 4, 40, 0, 1, "pez", cb, job=job, budget_seconds=60),
        "distill",
    )
    assert "Estimate: about 10 s for 40 steps" in before and job.estimate_s == pytest.approx(10)


def test_the_endpoints_take_the_budget_and_old_calls_still_work(tmp_path):
    from pez.ui import UIOptions, launch_app

    app = launch_app(UIOptions(device="cpu", runs=str(tmp_path)), port=free_port(), prevent_thread_lock=True,
                     quiet=True)  # fmt: skip
    try:
        client = Client(app.local_url, verbose=False)
        api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        for name in ("/distill", "/invert", "/discover"):
            assert api[name]["parameters"][-1]["parameter_name"] == "budget_seconds", name
        common = {"text": SENTENCE, "model": "minilm", "prompt_len": 4, "seed": 0, "api_name": "/distill"}
        text, score, file = client.predict(**common, steps=3)  # a call written before the field: no budget
        assert text and -1 <= score <= 1
        text, score, file = client.predict(**common, steps=MANY_STEPS, budget_seconds=1.0)
        saved = json.loads(open(file).read())
        assert kept_budget(saved["timings"], 1.0) and saved["text"] == text
        with pytest.raises(AppError, match="Seconds budget must be a positive, finite number"):
            client.predict(**common, steps=3, budget_seconds=-2)
        assert client.predict(**common, steps=2)[0]  # the app keeps serving
    finally:
        app.close()
