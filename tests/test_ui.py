"""`pez ui`: the Gradio app launched in the test, driven through gradio_client (every API endpoint, bad input that
comes back as one message while the app keeps serving) and through a real headless Chromium (the text tab with
minilm, whose page result must equal the CLI's for the same seed; the screenshot in the README)."""

import contextlib
import json
import math
import os
import shutil
import socket
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("gradio")

from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from pez.cli import main  # noqa: E402
from pez.errors import PezError  # noqa: E402

SENTENCE = "A man is riding a horse on the beach at sunset."
# the README's screenshot is rewritten only when asked (PEZ_UPDATE_SCREENSHOT=1), so a test run leaves the tree clean
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "images" / "ui.png"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """The app, served on a free local port; small upload caps so the tests can exceed them."""
    from pez.ui import UIOptions, launch_app

    runs = tmp_path_factory.mktemp("runs")
    options = UIOptions(model=None, device="cpu", runs=str(runs), max_upload_mb=1, max_files=3)
    app = launch_app(options, port=free_port(), prevent_thread_lock=True, quiet=True)
    yield app, runs
    app.close()


@pytest.fixture(scope="module")
def client(ui):
    return Client(ui[0].local_url, verbose=False)


def distill(client, text=SENTENCE, model="minilm", prompt_len=6, steps=20, seed=0):
    return client.predict(text=text, model=model, prompt_len=prompt_len, steps=steps, seed=seed, api_name="/distill")


def cli_invert(tmp_path, text, prompt_len, steps, seed) -> dict:
    out = tmp_path / "cli.json"
    argv = ["invert", "--model", "minilm", "--text", text, "--prompt-len", str(prompt_len), "--steps", str(steps)]
    assert main([*argv, "--seed", str(seed), "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    return json.loads(out.read_text())


def test_the_endpoints_have_stable_names_and_parameters(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/distill", "/invert", "/discover", "/compare"} <= set(api)
    names = [p["parameter_name"] for p in api["/distill"]["parameters"]]
    assert names == ["text", "model", "prompt_len", "steps", "seed", "budget_seconds"]  # the last one may be left out
    assert len(api["/distill"]["returns"]) == 3
    assert not any("run_page" in name or "stop" in name for name in api)  # the page's own events are private


def test_distill_equals_the_cli_with_the_same_seed_and_is_saved_as_its_json(client, ui, tmp_path):
    text, score, file = distill(client, prompt_len=6, steps=20, seed=3)
    cli = cli_invert(tmp_path, SENTENCE, 6, 20, 3)
    assert text == cli["text"] and text.strip()
    assert score == pytest.approx(cli["score"], abs=1e-4)
    saved = json.loads(Path(file).read_text())
    assert saved["text"] == cli["text"] and saved["ids"] == cli["ids"] and saved["config"] == cli["config"]
    assert saved["model"] == "minilm" and saved["seed"] == 3
    runs = ui[1]
    assert any(json.loads(p.read_text())["ids"] == cli["ids"] for p in runs.glob("*-distill-*.json"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"text": "   "}, "the text to distil is empty"),
        ({"model": "no-such-model"}, "unknown model 'no-such-model'"),
        ({"prompt_len": 0}, "Prompt length must be 1 to 64, got 0"),  # checked on the server, with the field's name
        ({"model": "ViT-B-32/no-such-tag"}, "unknown tag 'no-such-tag'"),
    ],
)
def test_bad_input_is_one_message_and_the_app_keeps_serving(client, kwargs, message):
    with pytest.raises(AppError) as e:
        distill(client, **{"steps": 2, **kwargs})
    assert message in str(e.value) and "Traceback" not in str(e.value) and "\n" not in str(e.value).strip()
    text, score, _ = distill(client, steps=2)  # still serving
    assert text.strip() and math.isfinite(score)


def test_invert_images_on_a_random_clip(client, astronaut_png, tmp_path):
    text, score, file = client.predict(
        images=[handle_file(str(astronaut_png))],
        texts="",
        negative_images=[],
        negative_texts="a dog",
        model="ViT-B-32/random",
        prompt_len=4,
        steps=3,
        restarts=1,
        method="pez",
        seed=0,
        api_name="/invert",
    )
    saved = json.loads(Path(file).read_text())
    assert saved["text"] == text and len(saved["ids"]) == 4 and math.isfinite(score)
    assert saved["model"] == "ViT-B-32/random" and saved["steps_done"] == 3
    assert [t["weight"] < 0 for t in saved["target_scores"]] == [False, True]  # the image, then the negative text


def test_invert_refuses_bad_uploads_with_one_message(client, astronaut_png, tmp_path):
    not_image = tmp_path / "notes.png"
    not_image.write_text("not an image")
    small = tmp_path / "small.png"
    small.write_bytes(astronaut_png.read_bytes()[:100])
    text_file = tmp_path / "notes.txt"
    text_file.write_text("x")
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (2 * 2**20))  # over the 1 MB cap of the test app
    common = dict(texts="", negative_images=[], negative_texts="", prompt_len=4, steps=2, restarts=1, method="pez")
    cases = [
        ([not_image], "ViT-B-32/random", "is not an image Pillow can read"),
        ([small] * 4, "ViT-B-32/random", "too many images: 4 files, at most 3"),
        ([], "ViT-B-32/random", "no target images"),
        ([text_file], "ViT-B-32/random", "Invalid file type"),  # the upload field's own check
        ([astronaut_png], "ViT-B-32/no-such-tag", "unknown tag 'no-such-tag'"),
    ]
    for files, model, message in cases:
        with pytest.raises(AppError, match=message):
            client.predict(images=[handle_file(str(f)) for f in files], model=model, seed=0, **common,
                           api_name="/invert")  # fmt: skip
    with pytest.raises(Exception, match="(?i)size|large|413"):  # refused by the server before the job
        client.predict(images=[handle_file(str(big))], model="ViT-B-32/random", seed=0, **common, api_name="/invert")


def test_discover_reports_the_held_out_table_on_smollm2(client, tmp_path):
    prompt, accuracy, table, file = client.predict(
        data="movie-reviews",
        data_file=None,
        template="{prompt} {text} It was",
        labels="negative,positive",
        baseline_prompts="Is this review positive or negative?",
        model="smollm2",
        prompt_len=3,
        steps=2,
        seed=0,
        method="pez",
        batch_size=4,
        dev_size=4,
        test_size=8,
        fluency=0.0,
        api_name="/discover",
    )
    report = json.loads(Path(file).read_text())
    assert report["prompt"] == prompt and report["n_test"] == 8 and report["accuracy"] == pytest.approx(accuracy)
    out = tmp_path / "cli.json"
    argv = ["discover", "--model", "smollm2", "--data", "movie-reviews", "--prompt-len", "3", "--steps", "2"]
    argv += ["--seed", "0", "--batch-size", "4", "--dev-size", "4", "--test-size", "8", "--device", "cpu"]
    argv += ["--baseline-prompt", "Is this review positive or negative?", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    cli = json.loads(out.read_text())
    assert (cli["prompt"], cli["ids"], cli["accuracy"]) == (report["prompt"], report["ids"], report["accuracy"])
    assert cli["baseline_prompts"] == report["baseline_prompts"] and cli["config"] == report["config"]
    assert 0.0 <= accuracy <= 1.0 and report["config"]["steps"] == 2 and report["config"]["batch_size"] == 4
    for row in ("found:", "empty template", "hand-written: `Is this review positive or negative?`"):
        assert row in table
    assert f"{report['baseline_accuracy']:.4f}" in table

    unlabelled = tmp_path / "texts.jsonl"
    unlabelled.write_text("\n".join(json.dumps({"text": f"review {i}"}) for i in range(20)))
    with pytest.raises(AppError) as e:
        client.predict(
            data="movie-reviews", data_file=handle_file(str(unlabelled)), template="{prompt} {text} It was",
            labels="negative,positive", baseline_prompts="", model="smollm2", prompt_len=3, steps=1, seed=0,
            method="pez", batch_size=4, dev_size=4, test_size=8, fluency=0.0, api_name="/discover",
        )  # fmt: skip
    assert "label" in str(e.value) and "Traceback" not in str(e.value)


def test_compare_writes_the_table_and_the_plot_of_pez_compare(client):
    table, plot, files = client.predict(
        texts=SENTENCE,
        images=[],
        model="minilm",
        data="",
        data_file=None,
        template="{prompt} {text} It was",
        labels="negative,positive",
        methods=["pez", "random"],
        seeds=2,
        budget=3,
        budget_unit="steps",
        prompt_len=4,
        api_name="/compare",
    )
    assert sorted(Path(f).name for f in files) == ["plot.png", "results.csv", "results.json", "results.md"]
    assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads(next(Path(f) for f in files if f.endswith(".json")).read_text())
    assert [(r["method"], r["seed"]) for r in saved["runs"]] == [("pez", 0), ("pez", 1), ("random", 0), ("random", 1)]
    assert all(r["results"][0]["steps_done"] == 3 for r in saved["runs"])
    assert "| pez |" in table or "| **pez** |" in table
    with pytest.raises(AppError, match="no methods chosen"):
        client.predict(texts=SENTENCE, images=[], model="minilm", data="", data_file=None, template="",
                       labels="", methods=[], seeds=1, budget=3, budget_unit="steps", prompt_len=4,
                       api_name="/compare")  # fmt: skip


def test_one_job_at_a_time_the_next_waits_in_the_queue(client, ui):
    first = client.submit(text=SENTENCE, model="minilm", prompt_len=8, steps=150, seed=0, api_name="/distill")
    deadline = time.monotonic() + 120
    while first.status().code.name != "PROCESSING" and time.monotonic() < deadline:
        time.sleep(0.1)
    second = client.submit(text="a red car", model="minilm", prompt_len=4, steps=5, seed=0, api_name="/distill")
    queued = False
    while not first.done() and time.monotonic() < deadline:
        queued |= second.status().code.name == "IN_QUEUE" and first.status().code.name == "PROCESSING"
        time.sleep(0.1)
    assert queued  # --concurrency 1: the second waited in the queue while the first ran
    # and their searches did not overlap: the second started after the first was saved
    saved = [ui[1] / Path(job.result()[2]).name for job in (first, second)]
    end_first = saved[0].stat().st_mtime
    start_second = saved[1].stat().st_mtime - json.loads(saved[1].read_text())["timings"]["total_s"]
    assert start_second >= end_first - 0.05


def test_stop_keeps_the_best_prompt_so_far(ui):
    from pez.ui.text_tab import distill as distill_job

    ctx = ui[0].pez_context
    job = ctx.runner.start(
        "test:text", lambda job: distill_job(ctx, SENTENCE, "minilm", 4, 100_000, 0, 1, "pez", job.callback)
    )
    deadline = time.monotonic() + 120
    while job.progress is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.progress is not None, "no progress reported"
    assert ctx.runner.stop("test:text")
    assert job.finished.wait(60)
    assert job.error is None
    res, path = job.result
    assert res.interrupted and 0 < res.steps_done < 100_000 and res.text.strip()
    assert json.loads(Path(path).read_text())["interrupted"] is True
    assert job.points and job.points[-1][1] <= res.score + 1e-6


def test_only_the_uploads_and_the_runs_folder_are_served(ui):
    import httpx

    app, runs = ui
    saved = runs / "served.json"
    saved.write_text("{}")
    readme = Path(__file__).resolve().parents[1] / "README.md"
    url = app.local_url.rstrip("/") + "/gradio_api/file="
    assert httpx.get(url + str(saved)).status_code == 200
    for path in (readme, Path("/etc/passwd")):
        assert httpx.get(url + str(path)).status_code == 403


def test_model_notes_say_what_works_offline():
    from pez.ui.common import model_note

    assert "works offline" in model_note("minilm")
    assert "random weights, works offline" in model_note("ViT-B-32/random")
    assert "not a model pez knows" in model_note("no-such-model")
    assert model_note("sdxl:ViT-B-32/random,ViT-B-32/random").count("random weights, works offline") == 2
    note = model_note("ViT-H-14/laion2b_s32b_b79k")
    assert "found in the local cache" in note or ("download" in note and "ViT-B-32/random" in note)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--auth", "admin"], "--auth expects USER:PASS"),
        (["--auth", "a:1", "--auth", "b:"], "--auth expects USER:PASS, both non-empty (the one for 'b')"),
        (["--auth", "a:1", "--auth", "a:2"], "--auth: user 'a' given twice"),
        (["--port", "70000"], "--port must be between 1 and 65535"),
        (["--concurrency", "0"], "--concurrency must be at least 1"),
        (["--device", "tpu"], "unknown device"),
        (["--host", "0.0.0.0"], "--host 0.0.0.0 serves the page beyond this machine: add --auth USER:PASS"),
        (["--host", "0.0.0.0", "--auth", "a:b", "--no-auth"], "--auth and --no-auth contradict"),
        (["--host", "no.such.host.invalid"], "--host no.such.host.invalid: no such address"),
        (["--model", "bogus/bogus"], "--model bogus/bogus is not a model pez knows"),
        (["--model", "ViT-B-32/no-such-tag"], "--model ViT-B-32/no-such-tag: unknown tag for ViT-B-32"),
        (["--pipeline", "/nonexistent"], "--pipeline /nonexistent: no such folder"),
        (["--pipeline", "not-a-hub-name"], "--pipeline not-a-hub-name: not a folder here nor a hub name"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(argv, message, capsys, monkeypatch):
    import pez.ui

    monkeypatch.setattr(pez.ui, "launch_app", lambda *a, **kw: pytest.fail("served despite a bad option"))
    assert main(["ui", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pez: error:") and message in err and "\n" not in err
    assert "port" not in err or "--port" in argv


@pytest.mark.parametrize("argv", [["--host", "0.0.0.0", "--auth", "me:pw"], ["--host", "0.0.0.0", "--no-auth"],
                                  ["--host", "localhost"], ["--model", "ViT-B-32/random"],
                                  ["--host", "0.0.0.0", "--auth", "me:pw", "--auth", "you:pw2"]])  # fmt: skip
def test_serving_beyond_loopback_needs_auth_or_no_auth_on_purpose(argv, monkeypatch, tmp_path):
    import pez.ui

    seen = {}
    monkeypatch.setattr(pez.ui, "launch_app", lambda options, **kw: seen.update(options=options, **kw))
    assert main(["ui", *argv, "--runs", str(tmp_path / "r")]) == 0
    assert seen["host"] == argv[argv.index("--host") + 1] if "--host" in argv else seen["host"] == "127.0.0.1"
    users = [a.split(":") for a in argv[1:] if ":" in a]
    assert seen["auth"] == ([tuple(u) for u in users] if "--auth" in argv else None)


def test_the_command_passes_its_options_to_the_app(monkeypatch, tmp_path):
    import pez.ui

    seen = {}
    monkeypatch.setattr(pez.ui, "launch_app", lambda options, **kw: seen.update(options=options, **kw))
    argv = ["ui", "--port", "7999", "--model", "minilm", "--device", "cpu", "--auth", "me:pw:x", "--share"]
    assert main([*argv, "--runs", str(tmp_path / "r"), "--concurrency", "2", "--max-files", "5"]) == 0
    o = seen["options"]
    assert (o.model, o.device, o.runs, o.concurrency, o.max_files, o.max_upload_mb) == (
        "minilm",
        "cpu",
        str(tmp_path / "r"),
        2,
        5,
        20,
    )
    assert seen["host"] == "127.0.0.1" and seen["port"] == 7999 and seen["share"] is True
    assert seen["auth"] == [("me", "pw:x")]


def test_runs_folder_that_cannot_be_used_is_one_line(tmp_path, capsys):
    afile = tmp_path / "file"
    afile.write_text("x")
    assert main(["ui", "--runs", str(afile)]) == 2
    assert "is a file: give a folder" in capsys.readouterr().err


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def browser_page(url: str):
    """A Chromium page (playwright) opened on ``url``; the browser closes after the block."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            yield page
        finally:
            browser.close()


@pytest.mark.skipif(chromium() is None, reason="no Chromium found (apt-get install chromium)")
def test_the_text_tab_in_a_real_browser_equals_the_cli(ui, tmp_path):
    app = ui[0]
    with browser_page(app.local_url) as page:
        page.get_by_role("tab", name="Text -> short prompt").click()
        tab = page.locator("#text-tab")
        tab.get_by_label("Text to distil").fill(SENTENCE)
        tab.get_by_label("Steps").fill("60")
        page.locator("#text-run").click()
        prompt = page.locator("#text-prompt textarea")
        score = page.locator("#text-score input")
        page.wait_for_function(
            "() => document.querySelector('#text-prompt textarea').value.trim() !== ''"
            " && /Saved in the runs folder/.test(document.body.innerText)",
            timeout=180_000,
        )
        shown, shown_score = prompt.input_value(), float(score.input_value())
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOT if os.environ.get("PEZ_UPDATE_SCREENSHOT") else tmp_path / "ui.png"
        page.screenshot(path=str(shot), full_page=True)
    cli = cli_invert(tmp_path, SENTENCE, 8, 60, 0)  # the page's defaults: 8 tokens, seed 0
    assert shown == cli["text"]
    assert shown_score == pytest.approx(cli["score"], abs=1e-4)
    assert SCREENSHOT.stat().st_size > 10_000


def test_check_by_generating_equals_evaluate_images(tmp_path_factory, tiny_pipeline_dir, tiny_clip_dir, photos):
    """The 'check by generating' tab (endpoint /check) gives the score pez.check_prompt gives for the same seed."""
    import pez
    from pez.generation.pipelines import load_pipeline
    from pez.generation.scoring import ReferenceScorer
    from pez.ui import UIOptions, launch_app

    runs = tmp_path_factory.mktemp("runs-check")
    options = UIOptions(device="cpu", runs=str(runs), pipeline=tiny_pipeline_dir, reference_model=tiny_clip_dir)
    app = launch_app(options, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = Client(app.local_url, verbose=False)
        target = str(photos / "chelsea.png")
        score, gallery, sheet, report = client.predict(
            prompt="a cat on a sofa", targets=[handle_file(target)], reference=tiny_clip_dir, generations=2, seed=3,
            steps=3, guidance=7.5, api_name="/check",
        )  # fmt: skip
        ref = ReferenceScorer(pez.load_model(tiny_clip_dir, "cpu"))
        pipe = load_pipeline(tiny_pipeline_dir, torch.device("cpu"))
        check, _ = pez.check_prompt("a cat on a sofa", [target], pipe, ref, generations=2, seed=3, steps=3)
        assert score == pytest.approx(check.mean, abs=1e-5) and len(gallery) == 2
        with pytest.raises(Exception, match="prompt is empty"):
            client.predict(prompt=" ", targets=[handle_file(target)], reference=tiny_clip_dir, generations=1,
                           seed=0, steps=2, guidance=7.5, api_name="/check")  # fmt: skip
    finally:
        app.close()


def predict_error(client, **kwargs) -> str:
    """The one message of a call that must fail."""
    with pytest.raises(AppError) as e:
        client.predict(**kwargs)
    message = str(e.value)
    assert "Traceback" not in message and "\n" not in message.strip() and "less than minimum" not in message
    return message


def test_sizes_beyond_the_bounds_are_one_message_naming_the_field(client, astronaut_png, tmp_path):
    from pez.ui.common import uploads

    image = [handle_file(str(astronaut_png))]
    common = dict(images=image, texts="", negative_images=[], negative_texts="", model="ViT-B-32/random",
                  prompt_len=4, steps=2, restarts=1, method="pez", seed=0, api_name="/invert")  # fmt: skip
    for change, message in [
        ({"restarts": 100_000}, "Restarts must be 1 to 64, got 100000"),
        ({"restarts": -1}, "Restarts must be 1 to 64, got -1"),
        ({"steps": 10**9}, "Steps must be 1 to 100000, got 1000000000"),
        ({"prompt_len": 1000}, "Prompt length must be 1 to 64, got 1000"),
        ({"seed": -1}, "Seed must be 0 to 4294967295, got -1"),
    ]:
        assert message in predict_error(client, **{**common, **change})
    assert "Text to distil must be at most 10000 characters" in predict_error(
        client, text="word " * 5000, model="minilm", prompt_len=4, steps=2, seed=0, api_name="/distill"
    )
    task = dict(data="movie-reviews", data_file=None, template="{prompt} {text} It was", labels="negative,positive",
                baseline_prompts="", model="smollm2", prompt_len=3, steps=1, seed=0, method="pez", batch_size=4,
                dev_size=4, test_size=8, fluency=0.0, api_name="/discover")  # fmt: skip
    for change, message in [
        ({"batch_size": 100_000}, "Examples per step must be 1 to 256, got 100000"),
        ({"test_size": 0}, "Held-out examples must be 1 to 10000, got 0"),
    ]:
        assert message in predict_error(client, **{**task, **change})
    compare = dict(
        texts=SENTENCE,
        images=[],
        model="minilm",
        data="",
        data_file=None,
        template="",
        labels="",
        methods=["pez"],
        seeds=1,
        budget=3,
        budget_unit="steps",
        prompt_len=4,
        api_name="/compare",
    )
    for change, message in [
        ({"seeds": 100_000_000}, "Seeds must be 1 to 20, got 100000000"),
        ({"budget": 10**7}, "Budget per run (steps) must be 1 to 100000, got 10000000"),
    ]:
        assert message in predict_error(client, **{**compare, **change})
    not_image = tmp_path / "notes.png"
    not_image.write_text("not an image")
    message = predict_error(client, **{**common, "images": [handle_file(str(not_image))]})
    assert "notes.png is not an image" in message and not any(
        p in message for p in uploads()
    )  # the file's name, not a temp path
    text, score, _ = distill(client, steps=2)  # still serving
    assert text.strip() and math.isfinite(score)


def test_a_search_too_big_for_the_free_memory_is_refused_before_it_starts(client, astronaut_png, monkeypatch):
    import pez.ui.live as live

    weights = live.search_bytes("ViT-B-32/random", 0, 6)
    per_restart = live.search_bytes("ViT-B-32/random", 1, 6) - weights
    assert 2**20 < per_restart < 10 * 2**20  # a few MB of activations per prompt of 6 tokens
    assert live.search_bytes("ViT-B-32/random", 64, 6) == weights + 64 * per_restart
    assert live.search_bytes("minilm", 64, 6) is None  # not known before loading: the bounds alone apply
    room_for_5 = (weights + 5.5 * per_restart) / live.FREE_SHARE
    monkeypatch.setattr(live, "free_bytes", lambda device: room_for_5)
    message = predict_error(
        client, images=[handle_file(str(astronaut_png))], texts="", negative_images=[], negative_texts="",
        model="ViT-B-32/random", prompt_len=4, steps=2, restarts=64, method="pez", seed=0, api_name="/invert",
    )  # fmt: skip
    assert "Restarts 64 would need about" in message and "use at most 5" in message
    monkeypatch.undo()
    text, score, _ = distill(client, steps=2)  # still serving
    assert text.strip() and math.isfinite(score)


class FakeRequest:
    """What a Stop button's handler gets from Gradio: the page's session."""

    def __init__(self, session: str):
        self.session_hash = session


def wait_for(condition, seconds: float = 120) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_stop_says_stopping_in_the_page_at_once(tmp_path):
    from pez.ui.common import Context, UIOptions
    from pez.ui.panel import search_panel, stop_search

    ctx = Context(UIOptions(device="cpu", runs=str(tmp_path)))
    assert "No job of this page is running" in stop_search(ctx, FakeRequest("s1"), "text")

    def work(job):  # a job still loading its model: no progress yet
        while not job.stopping:
            time.sleep(0.01)
        return "stopped"

    job = ctx.runner.start("s1:text", work)
    assert wait_for(lambda: job.running)
    import gradio as gr

    with gr.Blocks():
        panel = search_panel("text")
    assert "Loading" in panel.live(job)[2]
    assert stop_search(ctx, FakeRequest("s1"), "text").startswith("Stopping ...")
    assert panel.live(job)[2].startswith("Stopping") or job.finished.is_set()
    assert job.finished.wait(30) and job.result == "stopped"


def test_the_task_tab_shows_the_best_prompt_and_its_score_while_it_runs(ui):
    from pez.ui.task_tab import discover_task

    ctx = ui[0].pez_context
    seen = []
    report, _ = discover_task(ctx, "movie-reviews", None, "{prompt} {text} It was", "negative,positive", "",
                              "smollm2", 3, 20, 0, "pez", 4, 4, 8, 0.0, callback=seen.append)  # fmt: skip
    before_the_end = [p for p in seen if p.step < p.steps]
    assert before_the_end, "no progress before the end"
    assert all(math.isfinite(p.best_score) and p.best_text.strip() for p in before_the_end)
    assert report.config["eval_every"] == report.config["sync_every"]


def test_check_by_generating_can_be_stopped_and_is_listed_in_the_runs(tmp_path, tiny_pipeline_dir, tiny_clip_dir,
                                                                       photos):  # fmt: skip
    from pez.ui.common import Context, UIOptions
    from pez.ui.generate_tab import check_by_generating, check_status
    from pez.ui.runs import describe_run
    from pez.ui.runs_tab import running_choices, stop_chosen

    ctx = Context(
        UIOptions(device="cpu", runs=str(tmp_path), pipeline=tiny_pipeline_dir, reference_model=tiny_clip_dir)
    )
    target = str(photos / "chelsea.png")
    job = ctx.runner.start(
        "s1:generate",
        lambda job: check_by_generating(ctx, "a cat", [target], tiny_clip_dir, 16, 0, 200, 7.5, job=job),
        "check",
    )
    assert wait_for(lambda: len(job.notes) >= 1), "no generation reported"
    assert "Generation" in check_status(job, 16) and "Mean cosine so far" in check_status(job, 16)
    (label, job_id), *_ = running_choices(ctx)  # what the Runs tab lists: a reloaded page can stop it there
    assert label.startswith(f"check {job_id}") and "done so far" in label
    assert stop_chosen(ctx, job_id).startswith("Stopping")
    assert job.finished.wait(120) and job.error is None
    check, images, folder = job.result
    assert 1 <= len(check.scores) == len(images) < 16
    saved = json.loads((folder / "check.json").read_text())
    assert saved["scores"] == check.scores and (folder / "contact_sheet.png").is_file()
    listed = ctx.store.recent()
    assert folder / "check.json" in listed
    assert describe_run(folder / "check.json").startswith("**check by generating** `a cat`")
    with pytest.raises(PezError, match="Generations must be 1 to 16, got 100000"):
        check_by_generating(ctx, "a cat", [target], tiny_clip_dir, 100_000, 0, 3, 7.5)


def test_a_reloaded_page_finds_its_running_job_in_the_runs_tab_and_stops_it(ui):
    from pez.ui.runs_tab import running_choices, stop_chosen, watch_job
    from pez.ui.text_tab import distill as distill_job

    ctx = ui[0].pez_context
    job = ctx.runner.start(  # started by a page whose session is gone after the reload
        "old-session:text",
        lambda job: distill_job(ctx, SENTENCE, "minilm", 4, 100_000, 0, 1, "pez", job.callback),
        "distill",
    )
    assert wait_for(lambda: job.progress is not None)
    choices = running_choices(ctx)
    assert [i for _, i in choices] == [job.id]
    assert choices[0][0].startswith(f"distill {job.id}") and "step " in choices[0][0]
    watching = watch_job(ctx, job.id)
    assert next(watching).startswith(f"distill {job.id}")
    assert stop_chosen(ctx, job.id).startswith(f"Stopping {job.id}")
    lines = list(watching)
    assert job.finished.is_set() and job.error is None and "finished" in lines[-1]
    res, path = job.result
    assert res.interrupted and 0 < res.steps_done < 100_000
    assert running_choices(ctx) == []


def test_messages_name_uploads_and_options_as_the_page_does():
    from pez.ui.common import for_the_page, uploads

    message = f"{uploads()[0]}/0a1b2c/notes.png is not an image; --prompt-len must be positive (see --help)"
    assert for_the_page(message) == "notes.png is not an image; prompt len must be positive (see help)"


@pytest.mark.skipif(chromium() is None, reason="no Chromium found (apt-get install chromium)")
def test_a_reloaded_page_in_a_real_browser_finds_its_job_and_stops_it(ui):
    app, ctx = ui[0], ui[0].pez_context
    body = "document.body.innerText"
    with browser_page(app.local_url) as page:
        page.get_by_role("tab", name="Text -> short prompt").click()
        tab = page.locator("#text-tab")
        tab.get_by_label("Text to distil").fill(SENTENCE)
        tab.get_by_label("Steps").fill("100000")
        page.locator("#text-run").click()
        page.wait_for_function(f"() => /Step \\d+ \\/ 100000/.test({body})", timeout=180_000)
        tab.get_by_role("button", name="Stop").click()  # the page says so at once
        page.wait_for_function(f"() => /Stopping/.test({body})", timeout=30_000)
        page.wait_for_function(f"() => /stopped: the best prompt so far/.test({body})", timeout=120_000)

        page.locator("#text-run").click()  # a second run, then a reload: the page forgets it, the server does not
        page.wait_for_function(f"() => /Step \\d+ \\/ 100000/.test({body})", timeout=180_000)
        (job,) = ctx.runner.running()
        page.reload()
        page.get_by_role("tab", name="Runs").click()
        page.wait_for_function(  # the Runs tab lists the running job, chosen
            f"() => document.querySelector('#runs-job input').value.startsWith('distill {job.id}')", timeout=30_000
        )
        page.locator("#runs-watch").click()
        page.wait_for_function(
            f"() => /distill {job.id} .*step \\d+/.test(document.querySelector('#runs-job-status').innerText)",
            timeout=30_000,
        )
        page.locator("#runs-stop").click()
        assert job.finished.wait(120) and job.result[0].interrupted
        page.wait_for_function(
            "() => /finished/.test(document.querySelector('#runs-job-status').innerText)", timeout=30_000
        )


def test_the_image_tab_defaults_are_sized_for_the_machine(tmp_path):
    from pez.models import DEFAULT_CLIP
    from pez.ui.common import Context, UIOptions, model_note
    from pez.ui.image_tab import CPU_STEPS, image_defaults

    model, steps = image_defaults(Context(UIOptions(device="cpu", runs=str(tmp_path))))
    assert steps == CPU_STEPS < 3000 and "works offline" in model_note(model)  # never a download on a CPU
    assert model == DEFAULT_CLIP or "weights not found" in model_note(DEFAULT_CLIP)
    assert image_defaults(Context(UIOptions(model="ViT-B-32/random", device="cpu", runs=str(tmp_path)))) == (
        "ViT-B-32/random",
        CPU_STEPS,
    )


def login(url: str, user: str, password: str):
    """An HTTP client logged in as ``user`` (Gradio's login cookie)."""
    import httpx

    http = httpx.Client(base_url=url)
    assert http.post("login", data={"username": user, "password": password}).is_success
    return http


def test_with_several_users_each_sees_stops_and_downloads_only_their_own_runs(tmp_path):
    """``pez ui --auth alice:pa --auth bob:pb``: alice's runs are not listed to bob (saved runs, running jobs),
    bob cannot watch, stop or download them, and alice can."""
    import httpx

    from pez.ui import UIOptions, launch_app
    from pez.ui.runs_tab import running_choices, stop_chosen, watch_job
    from pez.ui.text_tab import distill as distill_job

    options = UIOptions(device="cpu", runs=str(tmp_path / "runs"))
    app = launch_app(options, port=free_port(), auth=[("alice", "pa"), ("bob", "pb")], prevent_thread_lock=True,
                     quiet=True)  # fmt: skip
    try:
        ctx, url = app.pez_context, app.local_url
        alice, bob = (Client(url, auth=who, verbose=False) for who in (("alice", "pa"), ("bob", "pb")))
        _, _, file = distill(alice, steps=2)
        (saved,) = ctx.store.root.rglob("*-distill-*.json")
        assert saved.parent == ctx.store.root / "user-alice" and Path(file).read_bytes() == saved.read_bytes()
        job = ctx.runner.start(  # a long job of alice's, as her page starts it
            "alice-page:text",
            lambda job: distill_job(ctx, SENTENCE, "minilm", 4, 100_000, 0, 1, "pez", job.callback, user="alice"),
            "distill",
            "alice",
        )
        assert wait_for(lambda: job.progress is not None)
        running, runs = alice.predict(api_name="/runs")
        assert [line.split()[:2] for line in running] == [["distill", job.id]] and runs == [saved.name]
        assert bob.predict(api_name="/runs") == ([], [])  # nothing of alice's is listed to bob
        assert running_choices(ctx, "bob") == [] and running_choices(ctx, None) == []
        assert next(watch_job(ctx, job.id, "bob")).startswith("No running job chosen")
        assert stop_chosen(ctx, job.id, "bob").startswith("No running job")  # bob cannot stop it
        time.sleep(0.5)
        assert not job.finished.is_set() and not job.stopping
        served = f"gradio_api/file={saved}"
        assert login(url, "bob", "pb").get(served).status_code == 403  # nor download it
        assert httpx.get(f"{url.rstrip('/')}/{served}").status_code in (401, 403)  # nor anyone not logged in
        assert login(url, "alice", "pa").get(served).status_code == 200
        assert stop_chosen(ctx, job.id, "alice").startswith(f"Stopping {job.id}")  # alice can stop it
        assert job.finished.wait(60) and job.result[0].interrupted
        _, _, bobs_file = distill(bob, steps=2)
        assert bob.predict(api_name="/runs")[1] == [Path(bobs_file).name]
        assert sorted(alice.predict(api_name="/runs")[1]) == sorted([saved.name, job.result[1].name])
    finally:
        app.close()


def run_until_progress(ctx, work, kind="job"):
    """Start ``work(job, callback)`` as a page's job; wait for its first progress report, noting whether the time
    estimate was already in the page's status then; stop it. (the job, the estimate seen at the first report)"""
    import gradio as gr

    from pez.ui.panel import search_panel

    with gr.Blocks():
        panel = search_panel("test")
    seen = []

    def callback(p, job):
        if not seen:
            seen.append(panel.live(job)[2])  # the status the page shows before this first report
        job.callback(p)

    job = ctx.runner.start(f"estimate:{kind}", lambda job: work(job, lambda p: callback(p, job)), kind)
    assert wait_for(lambda: job.progress is not None or job.finished.is_set(), 300), "no progress reported"
    assert job.error is None, job.error
    ctx.runner.stop(f"estimate:{kind}")
    assert job.finished.wait(120)
    return job, seen[0] if seen else ""


def test_a_time_estimate_is_shown_before_the_search_starts_and_scales_with_the_steps(tmp_path):
    import re

    import gradio as gr

    from pez.ui.common import Context, UIOptions
    from pez.ui.panel import search_panel
    from pez.ui.text_tab import distill as distill_job

    ctx = Context(UIOptions(device="cpu", runs=str(tmp_path)))

    def work(steps):
        return lambda job, cb: distill_job(ctx, SENTENCE, "minilm", 4, steps, 0, 2, "pez", cb, job=job)

    # no earlier run: a timed probe of two steps, told before the first step's report
    job, before = run_until_progress(ctx, work(100_000), "distill")
    assert re.search(r"Estimate: about .+ for 100000 steps at this machine's pace \(timed on a 2-step probe\)", before)
    assert 0 < job.estimate_s < math.inf  # its order against the search's own pace is a timing: not asserted here
    (key,) = ctx.paces  # the stopped search measured its pace for the next run with these settings
    assert ctx.paces.get(key) == pytest.approx(job.result[0].timings["s_per_step"])
    # an earlier run with the same settings: its pace times the steps asked for, said as soon as Run is pressed
    ctx.paces.record(key, 0.25)  # planted: a quarter of a second per step
    for steps, said in ((960, "about 4 min for 960 steps"), (1920, "about 8 min for 1920 steps")):
        job, before = run_until_progress(ctx, work(steps), "distill")
        assert job.estimate_s == pytest.approx(0.25 * steps) and said in before
        assert "measured by an earlier run with the same settings" in before
        ctx.paces.record(key, 0.25)
    with gr.Blocks():
        panel = search_panel("text")
    assert "Estimate: about" in panel.live(job)[2]  # it stays in the status while the search runs


def test_the_image_and_task_tabs_tell_their_estimate_before_the_search(tmp_path, astronaut_png):
    from pez.ui.common import Context, UIOptions
    from pez.ui.image_tab import invert_images
    from pez.ui.task_tab import discover_task

    ctx = Context(UIOptions(device="cpu", runs=str(tmp_path)))
    job, before = run_until_progress(
        ctx,
        lambda job, cb: invert_images(
            ctx, [str(astronaut_png)], "", [], "", "ViT-B-32/random", 4, 5000, 2, "pez", 0, callback=cb, job=job
        ),  # fmt: skip
        "invert",
    )
    assert "Estimate: about" in before and "for 5000 steps" in before and job.estimate_s > 0
    job, before = run_until_progress(
        ctx,
        lambda job, cb: discover_task(
            ctx,
            "movie-reviews",
            None,
            "{prompt} {text} It was",
            "negative,positive",
            "",
            "smollm2",
            3,
            3000,
            0,
            "pez",
            4,
            4,
            8,
            0.0,
            callback=cb,
            job=job,
        ),  # fmt: skip
        "discover",
    )
    assert "Estimate: about" in before and "for 3000 steps" in before
    measured = job.progress.elapsed / job.progress.step
    assert 0.1 < job.estimate_s / 3000 / measured < 10


@pytest.mark.skipif(chromium() is None, reason="no Chromium found (apt-get install chromium)")
def test_check_by_generating_is_stopped_from_the_page_in_a_real_browser(tmp_path_factory, tiny_pipeline_dir,
                                                                         tiny_clip_dir, photos):  # fmt: skip
    from pez.ui import UIOptions, launch_app

    runs = tmp_path_factory.mktemp("runs-check-browser")
    options = UIOptions(device="cpu", runs=str(runs), pipeline=tiny_pipeline_dir, reference_model=tiny_clip_dir)
    app = launch_app(options, port=free_port(), prevent_thread_lock=True, quiet=True)
    body = "document.body.innerText"
    try:
        with browser_page(app.local_url) as page:
            page.get_by_role("tab", name="Check by generating").click()
            tab = page.locator("#generate-tab")
            page.locator("#generate-prompt textarea").fill("a cat on a sofa")
            tab.locator("input[type=file]").first.set_input_files(str(photos / "chelsea.png"))
            page.wait_for_function(f"() => /chelsea\\s*\\.png/.test({body})", timeout=30_000)  # uploaded
            tab.get_by_role("spinbutton", name="Generations", exact=True).fill("16")
            tab.get_by_label("Inference steps").fill("200")
            page.locator("#generate-run").click()
            page.wait_for_function(f"() => /Generation [2-9]\\d* of 16 under way/.test({body})", timeout=180_000)
            page.locator("#generate-stop").click()
            page.wait_for_function(f"() => /Stopping/.test({body})", timeout=30_000)  # said at once
            page.wait_for_function(f"() => /Stopped after \\d+ of 16/.test({body})", timeout=180_000)
            shown = page.locator("#generate-score input").input_value()
        (saved,) = runs.glob("*-check-*/check.json")
        check = json.loads(saved.read_text())
        assert 1 <= len(check["scores"]) < 16 and float(shown) == pytest.approx(check["mean"], abs=1e-4)
        assert app.pez_context.runner.running() == []
    finally:
        app.close()
