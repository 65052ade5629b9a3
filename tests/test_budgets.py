"""Seconds budgets on every search command and folder runs that move on: a budget stops discover, compress and
invert-dataset within it (read from the recorded timings, never a timer) with a prompt and its honest score;
an image whose prompt stopped improving leaves its batch slot to the next image, and still gets the prompt it
gets alone; bad budgets and stop settings are one line before any model loads."""

import json

import pytest

import pez
from pez.cli import main
from pez.jobs.invert_dataset import read_results
from pez.models import load_model
from tests.conftest import kept_budget
from tests.test_lm_cli import REVIEWS

SLOTS = {"prompt_len": 4, "steps": 150, "sync_every": 10, "checkpoint_every": 10, "restarts": 2, "judge": None}


@pytest.fixture(scope="module")
def tiny_loaded(tiny_clip_dir):
    return load_model(tiny_clip_dir, "cpu")


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "reviews.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in REVIEWS))
    return str(path)


def _rows(path):
    return {k: r for k, r in read_results(path).items() if "skipped" not in r}


def test_an_image_that_stopped_improving_leaves_its_slot_and_gets_its_own_prompt(photos, tmp_path, tiny_loaded):
    stop = {"patience": 20, "min_delta": 0.002}
    slots = pez.invert_dataset(str(photos), tmp_path / "s.jsonl", model=tiny_loaded, batch=2, **SLOTS, **stop)
    alone = pez.invert_dataset(str(photos), tmp_path / "a.jsonl", model=tiny_loaded, batch=1, **SLOTS, **stop)
    assert slots.done == alone.done == 5 and slots.skipped == 1
    a, b = _rows(tmp_path / "s.jsonl"), _rows(tmp_path / "a.jsonl")
    stops = set()
    for key, row in a.items():
        assert row["text"] == b[key]["text"], key
        assert row["score"] == pytest.approx(b[key]["score"], abs=1e-5)
        assert row["steps_done"] == b[key]["steps_done"] and row["timings"]["stopped_by"] == "early-stop"
        assert row["config"]["steps"] == 150 and row["target_scores"][0]["target"] == f"image:{key}"
        assert [h["step"] for h in row["history"]][:2] == [1, 2]  # counted from the image's own start
        stops.add(row["steps_done"])
    assert len(stops) > 1  # images stopped at different steps: their slots were refilled at different times
    assert slots.mean_score == pytest.approx(sum(r["score"] for r in a.values()) / 5)


def test_progress_shows_images_per_hour_and_the_mean_score(photos, tmp_path, tiny_loaded):
    seen = []
    pez.invert_dataset(str(photos), tmp_path / "p.jsonl", model=tiny_loaded, batch=2, patience=20,
                       callback=lambda *a: seen.append(a), **{**SLOTS, "steps": 40})  # fmt: skip
    assert [s[0] for s in seen] == sorted(s[0] for s in seen) and seen[-1][:2] == (6, 6)
    assert "images/h" in seen[-1][2] and "mean cosine" in seen[-1][2]


@pytest.mark.parametrize("batch", [1, 3])
def test_a_budget_per_image_stops_each_search_within_it(photos, tmp_path, tiny_loaded, batch):
    out = tmp_path / "b.jsonl"
    cfg = {k: v for k, v in SLOTS.items() if k != "steps"}  # without steps, the budget ends each search
    run = pez.invert_dataset(str(photos), out, model=tiny_loaded, batch=batch, patience=None,
                             budget=pez.Budget(seconds=1.5), **cfg)  # fmt: skip
    assert run.done == 5
    for row in _rows(out).values():
        t = row["timings"]
        assert kept_budget(t, 1.5)
        assert row["text"] and -1 <= row["score"] <= 1


class StepClock:
    """A clock that only the search's steps move, one second each (everything else takes no time): a run's
    timings, and so where its budgets stop it, do not depend on the machine's speed."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def step_clock(monkeypatch):
    import pez.jobs.folder_search
    import pez.jobs.invert_dataset
    import pez.optim.loop
    from pez.optim.pez import PEZ

    clock, step = StepClock(), PEZ.step

    def timed_step(self, i):
        out = step(self, i)
        clock.now += 1.0
        return out

    monkeypatch.setattr(PEZ, "step", timed_step)
    for module in (pez.optim.loop, pez.jobs.folder_search, pez.jobs.invert_dataset):
        monkeypatch.setattr(module, "time", clock)
    return clock


# (the run's seconds, the images it does): each image costs at least one step (one second); an image is not
# started when what is left of the run's budget cannot pay for that, so the run ends within its budget
@pytest.mark.parametrize("seconds, done", [(1.5, 1), (3.5, 3), (12, 5)])
def test_a_run_budget_leaves_the_images_it_could_not_start(photos, tmp_path, tiny_loaded, step_clock, seconds, done):
    out = tmp_path / "r.jsonl"
    cfg = {k: v for k, v in SLOTS.items() if k != "steps"}
    run = pez.invert_dataset(str(photos), out, model=tiny_loaded, batch=1, patience=None,
                             run_budget=pez.Budget(seconds=seconds), **cfg)  # fmt: skip
    rows = _rows(out)
    assert run.done == len(rows) == done and run.budget_spent == (done < 5)
    assert step_clock.now <= seconds  # the whole run, by its recorded timings: within the budget
    assert sum(r["timings"]["total_s"] for r in rows.values()) == step_clock.now
    for row in rows.values():
        assert row["timings"]["stopped_by"] == "budget_seconds" and row["steps_done"] >= 1 and row["text"]
    if done < 5:  # the images left are done by a rerun
        again = pez.invert_dataset(str(photos), out, model=tiny_loaded, batch=2, **SLOTS, patience=20)
        assert again.done == 5 - done and len(_rows(out)) == 5


def test_a_run_budget_ends_a_folder_run_in_slots_within_it(photos, tmp_path, tiny_loaded, step_clock):
    # 2 slots, a sync every 10 steps (10 s): each image's share of the 25 s ends it at its first sync; at step 20
    # the next sync would overrun the run's budget, so the images under way end and the fifth is not started
    out = tmp_path / "s.jsonl"
    run = pez.invert_dataset(str(photos), out, model=tiny_loaded, batch=2, run_budget=pez.Budget(seconds=25),
                             **{**SLOTS, "patience": 20})  # fmt: skip
    rows = _rows(out)
    assert run.budget_spent and run.done == len(rows) == 4 and step_clock.now <= 25
    assert all(r["timings"]["stopped_by"] == "budget_seconds" and r["steps_done"] == 10 for r in rows.values())


def test_a_budget_spent_by_the_methods_setup_says_so_and_returns_a_prompt(tiny, tiny_clip_dir, tiny_llama_dir,
                                                                          tmp_path, monkeypatch, caplog):  # fmt: skip
    import pez.optim.loop
    from pez.optim.vgd import VGD, VGDConfig
    from tests.conftest import PLANTED

    clock, rank = StepClock(), VGD.rank_first_words

    def slow_rank(self):  # VGD's first-word ranking takes 10 s of the clock, everything else none
        clock.now += 10.0
        return rank(self)

    monkeypatch.setattr(VGD, "rank_first_words", slow_rank)
    monkeypatch.setattr(pez.optim.loop, "time", clock)
    said = "the budget left it: one step is run so that a prompt comes back, barely searched"
    fast = {"proposer": tiny_llama_dir, "beams": 4, "candidates": 5, "prompt_len": 6}
    obj = pez.CLIPObjective(*tiny, texts=[PLANTED])
    caplog.set_level("WARNING", logger="pez")
    res = pez.optimize(obj, VGDConfig(**fast, steps=10**6), budget=pez.Budget(seconds=5))
    assert said in caplog.text and "took 10 s, more than the 5 s" in caplog.text
    assert res.steps_done == 1 and res.timings["stopped_by"] == "budget_seconds" and res.timings["setup_s"] == 10
    assert res.text and -1 <= res.score <= 1
    caplog.clear()
    cmp = pez.compare(obj, ["vgd"], 1, budget_seconds=5, overrides={"vgd": fast}, judge=None)
    assert said in caplog.text and cmp.runs[0].results[0].text and cmp.runs[0].results[0].steps_done == 1
    caplog.clear()
    out = tmp_path / "vgd.json"
    argv = ["invert", "--model", tiny_clip_dir, "--text", PLANTED, "--method", "vgd", "--proposer", tiny_llama_dir,
            "--beams", "4", "--candidates", "5", "--prompt-len", "6", "--budget-seconds", "5", "--device", "cpu",
            "--no-judge", "--quiet", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0 and said in caplog.text
    row = json.loads(out.read_text())
    assert row["text"] and row["steps_done"] == 1 and row["timings"]["stopped_by"] == "budget_seconds"


LM_FAST = ["--prompt-len", "3", "--sync-every", "2", "--eval-every", "2", "--checkpoint-every", "2",
           "--batch-size", "4", "--device", "cpu", "--quiet", "--no-judge", "--patience", "off"]  # fmt: skip


@pytest.mark.parametrize("command", ["discover", "compress"])
def test_a_budget_stops_the_lm_searches_within_it(command, tiny_llama_dir, reviews, tmp_path, capsys):
    out = tmp_path / "r.json"
    extra = ["--instruction", "Say whether the critic liked the film."] if command == "compress" else []
    argv = [command, "--model", tiny_llama_dir, "--data", reviews, *extra, "--out", str(out),
            "--budget-seconds", "6", *LM_FAST]  # fmt: skip
    code = main(argv)
    _, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out.read_text())
    t = report["search"]["timings"]
    assert kept_budget(t, 6, before=t["before_search_s"]) and report["config"]["steps"] > 10**9  # the budget ended it
    assert report["prompt"] and report["score"] is not None
    assert "budget stopped the search" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--budget-seconds", "0"], "budget-seconds must be"),
        (["--budget-seconds", "inf"], "budget-seconds must be"),
        (["--budget-seconds", "nan"], "budget-seconds must be"),
        (["--patience", "0"], "--patience must be"),
        (["--patience", "soon"], "--patience"),
        (["--min-delta", "-0.1"], "min-delta must be"),
    ],
)
@pytest.mark.parametrize("command", ["invert-dataset", "discover", "compress", "run-budget"])
def test_bad_budgets_and_stops_are_one_line_before_any_load(command, argv, message, tmp_path, capsys):
    missing = str(tmp_path / "no-such-model")  # loading it would fail with another message
    if command == "run-budget":
        if argv[0] != "--budget-seconds":
            pytest.skip("the run budget is a number of seconds only")
        command, argv, message = "invert-dataset", ["--run-budget-seconds", argv[1]], "--run-budget-seconds must"
    base = {
        "invert-dataset": ["invert-dataset", str(tmp_path), "--out", str(tmp_path / "o.jsonl"), "--model", missing],
        "discover": ["discover", "--model", missing],
        "compress": ["compress", "--model", missing, "--instruction", "Be brief."],
    }[command]
    assert main(base + argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def _load_slowly(monkeypatch, loaded, seconds: float) -> None:
    """``pez invert`` loads ``loaded`` (the embedded minilm) in ``seconds``."""
    import time

    import pez.jobs.invert

    def slow_load(*args, **kwargs):
        time.sleep(seconds)
        return loaded

    monkeypatch.setattr(pez.jobs.invert, "load_model", slow_load)


@pytest.mark.parametrize("readable", [False, True])
def test_invert_counts_the_model_load_against_its_seconds_budget(monkeypatch, minilm, readable):
    """What a user of ``pez invert --budget-seconds`` waits for includes loading the model and the targets, as in
    discover and compress: a slow load leaves the search what is left, recorded as ``before_search_s``."""
    _load_slowly(monkeypatch, minilm, 2.0)
    res = pez.invert(texts=["a red car parked on a quiet street"], model="minilm", device="cpu", prompt_len=4,
                     judge=None, readable=readable, budget=pez.Budget(seconds=4))  # fmt: skip
    t = res.timings
    assert t["before_search_s"] >= 2.0 and t["model_load_s"] >= 2.0
    assert kept_budget(t, 4, before=t["before_search_s"]), t
    assert res.text and -1 <= res.score <= 1


def test_a_budget_spent_by_loading_is_said_once(monkeypatch, minilm, caplog):
    _load_slowly(monkeypatch, minilm, 1.2)
    caplog.set_level("WARNING", logger="pez")
    res = pez.invert(texts=["a dog"], model="minilm", device="cpu", prompt_len=4, judge=None,
                     budget=pez.Budget(seconds=1))  # fmt: skip
    assert res.steps_done == 1 and res.timings["stopped_by"] == "budget_seconds" and res.text
    said = [r.getMessage() for r in caplog.records if "budget" in r.getMessage()]
    assert len(said) == 1 and "loading took" in said[0], said
