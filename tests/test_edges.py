"""Edges where work was lost or a wrong result came without a word (each failed on the code before its fix)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import pez
from pez.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--lr", "inf"], "lr must be positive (and finite)"),
        (["--text", ""], "target text is empty"),
        (["--seed", "99999999999999999999999"], "seed must be"),
        (["--seed", "-1"], "seed must be"),
        (["--checkpoint", "{tmp}/same.json", "--out", "{tmp}/same.json"], "same file"),
        (["--blocklist", ""], "--blocklist has an empty entry"),
        (["--prompt-len", "2", "--init-text", "a horse on the beach at sunset"], "more than --prompt-len 2"),
        (["--readable", "--prompt-len", "2", "--init-text", "a horse on the beach"], "more than --prompt-len"),
    ],
)
def test_invert_refuses_at_once(capsys, tmp_path, argv, message):
    argv = [a.format(tmp=tmp_path) for a in argv]
    base = ["invert", "--model", "minilm", "--device", "cpu", "--steps", "2", "--prompt-len", "2"]
    if "--text" not in argv:
        base += ["--text", "a horse"]
    code, _, err = run_cli(capsys, *base, *argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and message in lines[0], err


def test_discover_refuses_a_non_finite_fluency(capsys):
    code, _, err = run_cli(capsys, "discover", "--fluency", "nan", "--steps", "1")
    assert code == 2 and "fluency must be a finite number >= 0" in err, err


def test_evaluate_refuses_a_base_url_for_a_local_model(capsys):
    code, _, err = run_cli(capsys, "evaluate", "--prompt", "x", "--model", "smollm2", "--base-url", "http://h/v1")
    assert code == 2 and "--base-url is for API models" in err, err


def test_evaluate_images_refuses_a_non_finite_guidance(capsys, tmp_path):
    code, _, err = run_cli(capsys, "evaluate-images", str(tmp_path / "r.json"), "--out", str(tmp_path / "o"),
                           "--guidance", "nan")  # fmt: skip
    assert code == 2 and "--guidance must be a finite number" in err, err


def test_a_random_model_is_a_function_of_its_spec():
    """ViT-B-32/random gives the same weights in every process: the same --seed gives the same prompt."""
    code = (
        "import pez; m = pez.load_model('ViT-B-32/random', 'cpu').model; print(float(m.token_embedding.weight.sum()))"
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True) for _ in (0, 1)]
    torch.manual_seed(123)  # the caller's global RNG state must not matter either
    here = float(pez.load_model("ViT-B-32/random", "cpu").model.token_embedding.weight.sum())
    assert runs[0].stdout.strip() == runs[1].stdout.strip() == repr(here)


def test_a_torn_last_line_is_not_glued_to_the_next_row(tmp_path):
    from pez.jobs.invert_dataset import append_rows, read_results

    out = tmp_path / "r.jsonl"
    out.write_text(json.dumps({"image": "a.png", "text": "x"}) + "\n" + '{"image": "b.png", "te')
    with open(out, "a", encoding="utf-8") as f:
        append_rows(f, [{"image": "c.png", "text": "y"}])
    rows = read_results(out)
    assert set(rows) == {"a.png", "c.png"}  # the fragment is dropped, the new row is whole
    assert all(json.loads(line) for line in out.read_text().splitlines() if line.startswith('{"image": "c'))


def test_merge_never_destroys_files_it_does_not_own(capsys, tmp_path):
    result = tmp_path / "prompt.json"
    result.write_text(json.dumps({"text": "a horse", "ids": [1], "score": 0.5}))
    plain = tmp_path / "other.jsonl"
    plain.write_text('{"text": "no image field"}\n')
    before = {p: p.read_bytes() for p in (result, plain)}
    for target, message in [
        (result, "not a pez invert-dataset results file"),
        (plain, "not a pez invert-dataset results file"),
        (tmp_path / "missing.jsonl", "nothing to merge"),
        (tmp_path, "is a folder"),
    ]:
        code, _, err = run_cli(capsys, "merge", str(target))
        assert code == 2 and message in err, err
    assert {p: p.read_bytes() for p in before} == before
    assert not (tmp_path / "missing.jsonl").exists()
    code, _, err = run_cli(capsys, "invert-dataset", str(tmp_path), "--out", str(result), "--model", "ViT-B-32/random")
    assert code == 2 and "not a pez invert-dataset results file" in err, err
    assert result.read_bytes() == before[result]


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_sigterm_keeps_the_best_prompt_like_ctrl_c(tmp_path):
    out = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "pez", "invert", "--model", "minilm", "--device", "cpu", "--text", "a horse",
           "--prompt-len", "4", "--steps", "1000000", "--sync-every", "1", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    seen = ""
    while time.monotonic() < deadline and "best" not in seen:  # the progress bar: the search has started
        seen += os.read(proc.stderr.fileno(), 4096).decode(errors="replace")
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert out.exists() and json.loads(out.read_text())["interrupted"]
    assert stdout.strip() == json.loads(out.read_text())["text"]


def test_a_checkpoint_that_cannot_be_written_loses_nothing(minilm, tmp_path, monkeypatch, caplog):
    """A full disk at the checkpoint: one warning naming the file and why, and the search still returns."""
    import errno

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("torch.save", full)
    obj = pez.make_objective(minilm, texts=["a horse"])
    ck = tmp_path / "c.ckpt"
    res = pez.optimize(obj, pez.PEZConfig(prompt_len=3, steps=6, sync_every=2, checkpoint_every=2), checkpoint=ck)
    assert res.text and res.steps_done == 6
    warned = [r.message for r in caplog.records if "cannot write checkpoint" in r.message]
    assert len(warned) == 1 and "No space left" in warned[0] and str(ck) in warned[0]
    assert not list(tmp_path.iterdir())


def test_an_out_file_that_cannot_be_written_says_which_and_why(tmp_path, monkeypatch):
    from pez.records import EvalResult

    result = EvalResult(prompt="p", model="m", accuracy=float("nan"), n=0)
    result.save(tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["accuracy"] is None  # strict JSON, no NaN
    os.chmod(tmp_path, 0o500)
    try:
        if os.access(tmp_path, os.W_OK):
            pytest.skip("root ignores folder permissions here")
        with pytest.raises(pez.PezError, match="cannot write .*r2.json"):
            result.save(tmp_path / "r2.json")
    finally:
        os.chmod(tmp_path, 0o700)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04truncated"])
def test_a_garbage_checkpoint_is_one_line(minilm, tmp_path, content):
    ck = tmp_path / "c.ckpt"
    ck.write_bytes(content)
    obj = pez.make_objective(minilm, texts=["a horse"])
    with pytest.raises(pez.PezError, match="truncated or not a pez checkpoint") as e:
        pez.optimize(obj, pez.PEZConfig(prompt_len=3, steps=2), checkpoint=ck, resume=True)
    assert "\n" not in str(e.value)


def test_discover_refuses_data_of_one_label(capsys, tmp_path):
    data = tmp_path / "one.jsonl"
    data.write_text("".join(json.dumps({"text": f"review {i}", "label": "positive"}) + "\n" for i in range(30)))
    code, _, err = run_cli(capsys, "discover", "--data", str(data), "--steps", "1", "--device", "cpu")
    assert code == 2 and "one label only (positive)" in err, err


def test_the_api_cost_estimate_counts_only_requests_sent():
    """Answers from the cache cost nothing, and say nothing of what the next uncached answer costs: after a cached
    round the estimate stays at the measured cost, so a round is not over-admitted."""
    from pez.evaluation.selection import ApiSelector
    from tests.test_api_search import FakeScorer

    class CachedFirst(FakeScorer):
        per_example = 2

        def score(self, prompt, text):
            if prompt == "p9":  # answered from the cache: no request
                return {"best": 1, "scores": [0.0, 1.0]}
            out = super().score(prompt, text)
            self.api.sent += 1  # two requests per uncached example (e.g. one per label)
            return out

    examples = [type("E", (), {"text": str(i)}) for i in range(8)]
    sel = ApiSelector(CachedFirst(), examples, [1] * 8, first_rung=4)
    sel.round(["p9"], allowance=100)
    assert sel.estimate() == 2  # the cached round measured nothing: the initial guess stands
    sel.round(["p3"], allowance=100)
    assert sel.estimate() == 2.0 and sel.scored == 8


def test_a_search_whose_api_chose_nothing_says_so():
    from pez.records import ApiSearchReport

    api = {"chosen_on_api": False, "stopped_by": "the request budget (60) is spent"}
    fields = {"ids": [], "model": "m", "data": "d", "method": "pez", "config": {}, "history": [], "score": 0.0}
    report = ApiSearchReport("local words", **fields, score_name="x", target="openai:m", local_prompt="local words",
                             api=api)  # fmt: skip
    first = report.summary().splitlines()[0]
    assert first.startswith("the API chose nothing (budget)") and "chosen on" not in report.summary()


def test_compare_keeps_the_finished_runs_on_a_ctrl_c_between_runs(tiny, tmp_path):
    model, tok = tiny
    obj = pez.CLIPObjective(model, tok, texts=["a red car on a road"])

    def ctrl_c_after_the_first(run):
        raise KeyboardInterrupt

    result = pez.compare(obj, ["random", "pez"], seeds=2, budget_steps=2, config={"prompt_len": 3},
                         callback=ctrl_c_after_the_first, judge=None)  # fmt: skip
    assert len(result.runs) == 1 and result.interrupted
    paths = result.save(tmp_path)
    assert json.loads(paths["json"].read_text())["runs"][0]["method"] == "random"


def test_compare_bounds_the_seeds_before_any_work(tiny):
    model, tok = tiny
    obj = pez.CLIPObjective(model, tok, texts=["a red car"])
    with pytest.raises(pez.PezError, match="--seeds must be from 1 to 1000"):
        pez.compare(obj, ["random"], seeds=100_000_000, budget_steps=1)


def test_a_budget_of_seconds_counts_the_methods_setup(minilm, monkeypatch):
    """`--seconds 0.4` is what the user waits for: a method whose setup takes 0.5 s stops after its first step."""
    from pez.optim.pez import PEZ

    init = PEZ.init

    def slow(self, ids):
        time.sleep(0.5)
        init(self, ids)

    monkeypatch.setattr(PEZ, "init", slow)
    obj = pez.make_objective(minilm, texts=["a horse"])
    res = pez.optimize(obj, pez.PEZConfig(prompt_len=3, steps=10**6), budget=pez.Budget(seconds=0.4))
    assert res.timings["stopped_by"] == "budget_seconds" and res.steps_done == 1
    assert res.timings["setup_s"] >= 0.5


# -- invert-dataset: an output holds one run's results, keyed by resolved paths, written by one process ---------------

DATASET_FAST = {"prompt_len": 3, "steps": 2, "sync_every": 1, "eval_every": 1, "checkpoint_every": 1, "judge": None}


@pytest.fixture(scope="module")
def tiny_clip_loaded(tiny_clip_dir):
    return pez.load_model(tiny_clip_dir, "cpu")


@pytest.fixture
def two_photos(photos, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("chelsea", "camera"):
        (folder / f"{name}.png").write_bytes((photos / f"{name}.png").read_bytes())
    return folder


def test_invert_dataset_keys_rows_by_the_resolved_path(two_photos, tmp_path, tiny_clip_loaded, monkeypatch):
    from pez.jobs.invert_dataset import read_results

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "r.jsonl"
    first = pez.invert_dataset("imgs", out, model=tiny_clip_loaded, **DATASET_FAST)  # as typed: relative
    again = pez.invert_dataset(str(two_photos), out, model=tiny_clip_loaded, **DATASET_FAST)  # absolute
    also = pez.invert_dataset("./imgs/../imgs", out, model=tiny_clip_loaded, **DATASET_FAST)
    assert first.done == 2 and again.done == also.done == 0 and again.already_done == also.already_done == 2
    assert len(out.read_text().splitlines()) == 2
    assert set(read_results(out)) == {str(two_photos / "camera.png"), str(two_photos / "chelsea.png")}
    # a file written by an older pez keyed its rows by the path as typed: read from where it was made, still done
    old = [json.loads(line) for line in out.read_text().splitlines()]
    out.write_text("".join(json.dumps({**r, "image": os.path.relpath(r["image"])}) + "\n" for r in old))
    assert pez.invert_dataset(str(two_photos), out, model=tiny_clip_loaded, **DATASET_FAST).done == 0


@pytest.mark.parametrize(
    "change, message",
    [
        ({"prompt_len": 4}, "made with --prompt-len 3 (this run: --prompt-len 4)"),
        ({"method": "random"}, "made with --method pez (this run: --method random)"),
        ({"model": "ViT-B-32/random"}, "(this run: --model ViT-B-32/random)"),
    ],
)
def test_invert_dataset_refuses_rows_of_other_settings(two_photos, tmp_path, tiny_clip_loaded, change, message):
    out = tmp_path / "r.jsonl"
    pez.invert_dataset(str(two_photos), out, model=tiny_clip_loaded, **DATASET_FAST)
    before = out.read_bytes()
    (two_photos / "more.png").write_bytes((two_photos / "camera.png").read_bytes())  # work left for the rerun
    settings = {"model": tiny_clip_loaded, **DATASET_FAST, **change}
    with pytest.raises(pez.PezError, match="give a new --out") as e:
        pez.invert_dataset(str(two_photos), out, **settings)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert out.read_bytes() == before


def test_invert_dataset_retries_skipped_images_once_readable(two_photos, photos, tmp_path, tiny_clip_loaded):
    from pez.jobs.invert_dataset import read_results

    out = tmp_path / "r.jsonl"
    broken = two_photos / "late.png"
    broken.write_bytes(b"half a png")  # still being copied, say
    first = pez.invert_dataset(str(two_photos), out, model=tiny_clip_loaded, **DATASET_FAST)
    assert first.done == 2 and first.skipped == 1
    still = pez.invert_dataset(str(two_photos), out, model=tiny_clip_loaded, **DATASET_FAST)
    assert still.done == still.skipped == 0 and still.already_done == 3  # unchanged: not retried, no new row
    assert len(out.read_text().splitlines()) == 3
    broken.write_bytes((photos / "astronaut.png").read_bytes())
    fixed = pez.invert_dataset(str(two_photos), out, model=tiny_clip_loaded, **DATASET_FAST)
    assert fixed.done == 1 and fixed.already_done == 2
    row = read_results(out)[str(broken)]
    assert "skipped" not in row and row["text"]


@pytest.mark.skipif(os.name != "posix", reason="flock")
def test_invert_dataset_takes_one_writer_per_output(capsys, two_photos, tmp_path, tiny_clip_dir):
    out = tmp_path / "r.jsonl"
    out.write_text(json.dumps({"image": str(tmp_path / "gone.png"), "skipped": "image not found"}) + "\n")
    before = out.read_bytes()
    hold = ("import sys, time; from pez.jobs.invert_dataset import writer_lock\n"
            "with writer_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(600)")  # fmt: skip
    other = subprocess.Popen([sys.executable, "-c", hold, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        argv = ["invert-dataset", str(two_photos), "--out", str(out), "--model", tiny_clip_dir, "--device", "cpu",
                "--prompt-len", "3", "--steps", "2", "--no-judge", "--quiet"]  # fmt: skip
        code, _, err = run_cli(capsys, *argv)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and lines == [f"pez: error: another pez is writing {out} (pid {other.pid}): "
                                       "wait for it to end, or give another --out"], err  # fmt: skip
        with pytest.raises(pez.PezError, match="another pez is writing"):
            pez.merge_results(out)  # a merge never replaces a file a run appends to
        assert out.read_bytes() == before
    finally:
        other.kill()  # killed: the kernel drops its lock, and the file it leaves is taken over
        other.wait()
    code, _, err = run_cli(capsys, *argv)
    assert code == 0 and "2 images inverted" in err, err
    assert not (tmp_path / "r.jsonl.lock").exists()


def test_invert_dataset_refuses_an_image_as_its_output(capsys, two_photos, tmp_path):
    photo = two_photos / "camera.png"
    before = photo.read_bytes()
    for out in (photo, tmp_path / "new.PNG"):
        code, _, err = run_cli(capsys, "invert-dataset", str(two_photos), "--out", str(out))
        assert code == 2 and len(err.strip().splitlines()) == 1 and "is an image" in err, err
    assert photo.read_bytes() == before and not (tmp_path / "new.PNG").exists()


def test_a_binary_file_is_not_a_results_file(tmp_path):
    from pez.jobs.invert_dataset import check_results_file

    blob = tmp_path / "photo"  # a file of one unbroken line that is no row's beginning (not a torn last row)
    blob.write_bytes(b"GIF89a" + bytes(range(32, 127)) * 4)
    with pytest.raises(pez.PezError, match="not a pez invert-dataset results file"):
        check_results_file(str(blob))


# -- evaluate-images: Ctrl-C keeps what is done, a rerun continues ----------------------------------------------------


def test_evaluate_images_keeps_its_checks_on_ctrl_c_and_resumes(
    photos, tmp_path, tiny_clip_dir, tiny_clip_loaded, tiny_pipeline_dir, monkeypatch
):
    import pez.jobs.evaluate_images as job

    listing = tmp_path / "three.txt"
    listing.write_text("".join(f"{photos / n}.png\n" for n in ("chelsea", "camera", "astronaut")))
    results = tmp_path / "three.jsonl"
    pez.invert_dataset(str(listing), results, model=tiny_clip_loaded, **DATASET_FAST)
    gen = {"pipeline": tiny_pipeline_dir, "reference_model": tiny_clip_dir, "device": "cpu", "generations": 2,
           "steps": 2, "seed": 1}  # fmt: skip

    def ctrl_c_after_two(done, total):
        if done == 2:
            raise KeyboardInterrupt

    out = tmp_path / "eval"
    stopped = pez.evaluate_images([results], out, callback=ctrl_c_after_two, **gen)
    assert stopped.interrupted and stopped.rows[0]["n"] == 2
    saved = json.loads((out / "report.json").read_text())
    assert saved["interrupted"] and len(saved["rows"][0]["items"]) == 2
    assert all((out / p).is_file() for item in saved["rows"][0]["items"] for p in item["images"])
    assert "Interrupted: 2 of 3 prompts checked" in (out / "report.md").read_text()

    generated = []
    check_prompt = job.check_prompt
    monkeypatch.setattr(
        job, "check_prompt", lambda prompt, *a, **k: generated.append(prompt) or check_prompt(prompt, *a, **k)
    )
    resumed = pez.evaluate_images([results], out, **gen)
    assert not resumed.interrupted and resumed.reused == 2 and len(generated) == 1
    fresh = pez.evaluate_images([results], tmp_path / "fresh", **gen)
    scores = [s for item in resumed.rows[0]["items"] for s in item["scores"]]
    assert scores == pytest.approx([s for item in fresh.rows[0]["items"] for s in item["scores"]], abs=1e-6)
    assert resumed.rows[0]["mean"] == pytest.approx(fresh.rows[0]["mean"], abs=1e-6)
    with pytest.raises(pez.PezError, match=r"made with --seed 1 \(this run: 2\)"):
        pez.evaluate_images([results], out, **{**gen, "seed": 2})


# -- the cache folder and long targets ------------------------------------------------------------------------------


def test_a_cache_folder_that_cannot_be_written_is_one_line(tmp_path, monkeypatch, capsys):
    from pez.cache import cache_dir
    from pez.models.lm import load_lm

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("PEZ_CACHE", str(blocked))  # a file where the folder should be
    with pytest.raises(pez.PezError, match=f"cannot write pez's cache folder {blocked}.*set PEZ_CACHE to a writable"):
        cache_dir("models")
    readonly = tmp_path / "ro"
    (readonly / "models").mkdir(parents=True)
    monkeypatch.setenv("PEZ_CACHE", str(readonly))
    monkeypatch.setattr(os, "access", lambda path, mode, **k: False)  # a read-only mount (root ignores chmod)
    with pytest.raises(pez.PezError, match=r"cannot write pez's cache folder .*ro/models \(not writable"):
        load_lm("smollm2", "cpu")  # refused before the conversion, not after it
    monkeypatch.setenv("PEZ_CACHE", str(blocked))
    code, _, err = run_cli(capsys, "discover", "--steps", "1", "--device", "cpu")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "set PEZ_CACHE to a writable folder" in err, err


def test_a_target_text_longer_than_the_encoder_reads_is_said_once(minilm, tiny, caplog):
    model, tok = tiny
    long = " ".join(["horse"] * 5000)
    with caplog.at_level("WARNING", logger="pez"):
        pez.make_objective(minilm, texts=[long, "a horse"])
        pez.CLIPObjective(model, tok, texts=["a horse"], negative_texts=[long])
        pez.make_objective(minilm, texts=["a horse"])
    cut = [r.getMessage() for r in caplog.records if "longer than the encoder reads" in r.getMessage()]
    assert len(cut) == 2
    assert "254 tokens kept of 5000 given (its limit is 256" in cut[0]
    assert "75 tokens kept of 5000 given (its limit is 77" in cut[1]


def _one_line(code, err, message):
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and message in lines[0] and "Traceback" not in err, err


def test_the_survey_cases_are_one_line(capsys, tmp_path, astronaut_png):
    """Cases `benchmarks/bad_inputs.py` found wrongly accepted or with a traceback."""
    inv = ["invert", "--model", "minilm", "--device", "cpu", "--steps", "2", "--prompt-len", "2", "--text", "a horse"]
    image = tmp_path / "photo.png"
    image.write_bytes(astronaut_png.read_bytes())
    _one_line(*run_cli(capsys, *inv, "--out", str(image))[::2], "is an image")
    assert image.read_bytes() == astronaut_png.read_bytes()  # untouched
    cmp = ["compare", "--model", "minilm", "--text", "a horse", "--methods", "pez", "--seeds", "1"]
    _one_line(*run_cli(capsys, *cmp, "--budget-seconds", "inf", "--out", str(tmp_path / "c"))[::2], "finite")
    comp = ["compress", "--model", "smollm2", "--instruction", "Say yes.", "--steps", "1", "--quiet"]
    _one_line(*run_cli(capsys, *comp, "--inputs", "99999999999999999999")[::2], "at most 10,000")
    long = ["compress", "--model", "smollm2", "--instruction", "word " * 9000, "--steps", "1", "--quiet"]
    _one_line(*run_cli(capsys, *long)[::2], "shorten it")
    ev = ["evaluate-images", "--pipeline", "x", "--reference-model", "ViT-B-32/random", "--out", str(tmp_path / "e")]
    _one_line(*run_cli(capsys, *ev, str(astronaut_png))[::2], "is not a pez result")
    res = tmp_path / "r.json"
    pez.optimize(pez.make_objective("minilm", texts=["a horse"]), pez.PEZConfig(prompt_len=2, steps=2)).save(res)
    _one_line(*run_cli(capsys, *ev, str(res), "--generations", "99999999999999999999")[::2], "at most 1,000")
    with pytest.raises(pez.PezError, match="--methods is empty"):
        from pez.gist import compare_compression

        compare_compression("no/such/gist", methods=[])


def test_a_binary_shard_beside_the_output_is_one_line(capsys, tmp_path, astronaut_png):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.png").write_bytes(astronaut_png.read_bytes())
    out = tmp_path / "o.jsonl"
    (tmp_path / "o.jsonl.shard-0-of-2").write_bytes(bytes(range(256)) * 4)
    argv = ["invert-dataset", str(folder), "--out", str(out), "--model", "ViT-B-32/random", "--steps", "1",
            "--prompt-len", "2", "--device", "cpu", "--quiet"]  # fmt: skip
    _one_line(*run_cli(capsys, *argv)[::2], "not a results file")


def test_more_survey_cases_are_one_line(capsys, tmp_path):
    inv = ["invert", "--model", "minilm", "--device", "cpu", "--steps", "2", "--prompt-len", "2", "--text", "a horse"]
    _one_line(*run_cli(capsys, *inv, "--restarts", "99999999999999999999")[::2], "at most 65,536")
    _one_line(*run_cli(capsys, *inv, "--readable", "--method", "gcg")[::2], "leave out --method gcg")
    disc = ["discover", "--model", "smollm2", "--steps", "1", "--quiet"]
    _one_line(*run_cli(capsys, *disc, "--dev-size", "99999999999999999999")[::2], "at most 10,000,000")
    _one_line(*run_cli(capsys, *disc, "--batch-size", "99999999999999999999")[::2], "at most 65,536")
    gist = ["gist", "train", "--model", "smollm2", "--steps", "1", "--out", str(tmp_path / "g"), "--lora-rank", "8"]
    _one_line(*run_cli(capsys, *gist)[::2], "add --lora")


@pytest.mark.parametrize(
    "job, model, loader",
    [("invert", "minilm", "pez.jobs.invert.load_model"), ("compress", "smollm2", "pez.jobs.lm.load_lm")],
)
def test_a_garbage_resume_checkpoint_is_refused_before_any_model_loads(
    capsys, monkeypatch, tmp_path, job, model, loader
):
    """A checkpoint that cannot be read is known before a model loads: one line at once, not after the setup."""
    ck = tmp_path / "g.ckpt"
    ck.write_bytes(os.urandom(2048))

    def no_load(*a, **k):
        raise AssertionError("the model loaded before the checkpoint was read")

    monkeypatch.setattr(loader, no_load)
    task = ["--text", "a horse"] if job == "invert" else ["--instruction", "Say if the review is good."]
    code, _, err = run_cli(capsys, job, "--model", model, *task, "--device", "cpu", "--steps", "1",
                           "--checkpoint", str(ck), "--resume")  # fmt: skip
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "not a pez checkpoint" in lines[0], err
