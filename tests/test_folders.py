"""Folder inversion on real photos (scikit-image) under a tiny random CLIP: every image gets a result, unreadable
files are listed as skipped, a killed run resumes without redoing finished images, batched results equal
one-at-a-time results, and two torchrun processes shard the folder with each image exactly once."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

import pez
from pez.jobs.invert_dataset import read_results
from pez.models import load_model

FAST = {"prompt_len": 4, "steps": 6, "sync_every": 2, "eval_every": 2, "checkpoint_every": 2}
CLI_FAST = ["--prompt-len", "4", "--steps", "6", "--sync-every", "2", "--checkpoint-every", "2", "--device", "cpu"]


@pytest.fixture(scope="module")
def tiny_loaded(tiny_clip_dir):
    return load_model(tiny_clip_dir, "cpu")


def test_every_image_gets_a_result_and_broken_files_are_skipped(photos, tmp_path, tiny_loaded):
    out = tmp_path / "r.jsonl"
    run = pez.invert_dataset(str(photos), out, model=tiny_loaded, batch=2, **FAST)
    rows = read_results(out)
    keys = {str(p) for p in photos.rglob("*.png")}
    assert {k for k, r in rows.items() if "skipped" not in r} == keys and run.done == 5 == len(keys)
    broken = rows[str(photos / "broken.jpg")]
    assert "not an image" in broken["skipped"] and run.skipped == 1
    for key in keys:
        r = rows[key]
        assert r["text"] and len(r["ids"]) == 4 and r["steps_done"] == 6
        assert r["target_scores"][0]["target"] == f"image:{key}"
    again = pez.invert_dataset(str(photos), out, model=tiny_loaded, batch=2, **FAST)
    assert again.done == 0 and again.already_done == 6  # nothing redone, the skipped file included
    assert sum(1 for _ in open(out)) == 6


def test_batched_results_equal_one_at_a_time(photos, tmp_path, tiny_loaded):
    batched = pez.invert_dataset(str(photos), tmp_path / "b.jsonl", model=tiny_loaded, batch=5, **FAST)
    single = pez.invert_dataset(str(photos), tmp_path / "s.jsonl", model=tiny_loaded, batch=1, **FAST)
    assert batched.done == single.done == 5
    a, b = read_results(tmp_path / "b.jsonl"), read_results(tmp_path / "s.jsonl")
    for key, row in a.items():
        if "skipped" in row:
            continue
        assert row["text"] == b[key]["text"], key
        assert row["score"] == pytest.approx(b[key]["score"], abs=1e-5)


def test_lists_and_bad_sources(photos, tmp_path, tiny_loaded):
    listing = tmp_path / "list.txt"
    listing.write_text(f"{photos / 'chelsea.png'}\n# a comment\n{photos / 'more' / 'coffee.png'}\n")
    run = pez.invert_dataset(str(listing), tmp_path / "l.jsonl", model=tiny_loaded, batch=4, **FAST)
    assert run.done == 2 and run.images == 2
    jl = tmp_path / "list.jsonl"
    jl.write_text(json.dumps({"image": "chelsea.png"}) + "\n")
    (tmp_path / "chelsea.png").write_bytes((photos / "chelsea.png").read_bytes())
    assert pez.invert_dataset(str(jl), tmp_path / "j.jsonl", model=tiny_loaded, **FAST).done == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    for source, message in [(str(empty), "holds no images"), (str(tmp_path / "nope"), "not found")]:
        with pytest.raises(pez.PezError, match=message):
            pez.invert_dataset(source, tmp_path / "x.jsonl", model=tiny_loaded)
    with pytest.raises(pez.PezError, match="does not exist"):
        pez.invert_dataset(str(photos), tmp_path / "no" / "x.jsonl", model=tiny_loaded)
    for batch in [0, 99999999999999999999]:  # a batch past any machine's memory is refused, not run at the folder size
        with pytest.raises(pez.PezError, match="--batch must be"):
            pez.invert_dataset(str(photos), tmp_path / "x.jsonl", model=tiny_loaded, batch=batch)


def _cli(*args):
    return [sys.executable, "-m", "pez", *args]


def test_a_killed_run_resumes_without_redoing_finished_images(photos, tmp_path, tiny_clip_dir):
    out = tmp_path / "r.jsonl"
    argv = _cli("invert-dataset", str(photos), "--out", str(out), "--model", tiny_clip_dir, "--batch", "1",
                "--quiet", *CLI_FAST, "--steps", "40")  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and sum('"text"' in line for line in open(out)) >= 2:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = read_results(out)
    finished = {k for k, r in first.items() if "text" in r}
    assert 2 <= len(finished) < 5, first.keys()
    before = {k: first[k]["text"] for k in finished}
    code = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert code.returncode == 0, code.stderr
    rows = read_results(out)
    assert {k for k, r in rows.items() if "text" in r} == {str(p) for p in photos.rglob("*.png")}
    assert {k: rows[k]["text"] for k in finished} == before
    lines = [json.loads(line) for line in open(out) if line.strip().startswith("{")]
    keys = [r["image"] for r in lines if "text" in r]
    assert len(keys) == len(set(keys))  # no finished image was redone


def test_two_torchrun_processes_shard_the_folder(photos, tmp_path, tiny_clip_dir):
    out = tmp_path / "r.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    argv = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", port,
            "-m", "pez", "invert-dataset", str(photos), "--out", str(out), "--model", tiny_clip_dir, "--batch", "2",
            "--quiet", *CLI_FAST]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in open(out)]
    keys = [r["image"] for r in lines]
    assert sorted(keys) == sorted({str(p) for p in photos.rglob("*.png")} | {str(photos / "broken.jpg")})
    assert "shard 1 of 2" in done.stderr and "shard 2 of 2" in done.stderr
    assert not list(tmp_path.glob("r.jsonl.shard-*"))  # merged and removed


def test_merge_collects_shards_left_by_killed_runs(tmp_path):
    out = tmp_path / "r.jsonl"
    (tmp_path / "r.jsonl.shard-0-of-2").write_text(json.dumps({"image": "a", "text": "x"}) + "\n")
    (tmp_path / "r.jsonl.shard-1-of-2").write_text(
        json.dumps({"image": "b", "skipped": "bad"}) + "\n" + '{"image": "c", "te'  # a torn last line
    )
    out.write_text(json.dumps({"image": "b", "text": "y"}) + "\n")
    from pez.cli import main

    assert main(["merge", str(out)]) == 0
    rows = read_results(out)
    assert rows == {"b": {"image": "b", "text": "y"}, "a": {"image": "a", "text": "x"}}
