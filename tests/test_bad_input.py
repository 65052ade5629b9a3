"""Bad input found before any work: one line naming the option, exit 2, no model loaded, nothing lost.

Every case here gave a traceback, a silently wrong result, or lost a finished run before it was fixed."""

import json
import math

import pytest
import torch

import pez
from pez.cli import main

TEXT = "A man is riding a horse on the beach at sunset."
INVERT = ["invert", "--model", "minilm", "--text", TEXT, "--prompt-len", "3", "--steps", "4", "--quiet"]
DISCOVER = ["discover", "--model", "smollm2", "--steps", "2", "--quiet"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def no_model_loads(monkeypatch):
    """Any model load fails the test: the input must be refused before."""

    def refuse(*a, **k):
        raise AssertionError("a model was loaded before the bad input was found")

    monkeypatch.setattr("pez.jobs.invert.load_model", refuse)
    monkeypatch.setattr("pez.jobs.lm.load_lm", refuse)


EARLY = [
    (["--out", "{tmp}/no/such/dir/r.json"], "does not exist", INVERT),
    (["--checkpoint", "{tmp}/no/such/dir/c.ckpt"], "does not exist", INVERT),
    (["--out", "{tmp}"], "is a folder", INVERT),
    (["--checkpoint", "{tmp}/c.ckpt", "--resume"], "nothing to resume", INVERT),
    (["--lr", "-0.1"], "lr must be positive", INVERT),
    (["--lr", "nan"], "lr must be positive", INVERT),
    (["--weight-decay", "-0.5"], "weight-decay must be >= 0", INVERT),
    (["--negative-text", "a dog", "--negative-weight", "-1"], "--negative-weight must be a positive", INVERT),
    (["--negative-text", "a dog", "--negative-weight", "0"], "--negative-weight must be a positive", INVERT),
    (["--negative-text", "a dog", "--negative-weight", "nan"], "--negative-weight must be a positive", INVERT),
    (["--device", "meta"], "unknown device 'meta'", INVERT),
    (["--test-size", "-1"], "--test-size must be a positive whole number", DISCOVER),
    (["--dev-size", "-1"], "--dev-size must be a positive whole number", DISCOVER),
    (["--train-size", "-1"], "--train-size must be a positive whole number", DISCOVER),
    (["--dev-size", "0"], "--dev-size must be a positive whole number", DISCOVER),
    (["--out", "{tmp}/no/such/dir/r.json"], "does not exist", DISCOVER),
    (["--lr", "-0.1"], "lr must be positive", DISCOVER),
]


@pytest.mark.parametrize(("extra", "message", "base"), EARLY, ids=[f"{b[0]} {' '.join(e[:2])}" for e, _, b in EARLY])
def test_refused_before_any_model_loads(capsys, tmp_path, no_model_loads, extra, message, base):
    argv = [*base, *(a.format(tmp=tmp_path) for a in extra)]
    code, out, err = run(capsys, *argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("pez: error: ") and message in lines[0], lines[0]
    assert out == "" and "Traceback" not in err


def test_compare_refuses_an_existing_file_as_out_before_running(capsys, tmp_path, no_model_loads):
    taken = tmp_path / "cmp"
    taken.write_text("not a folder")
    argv = ["compare", "--model", "minilm", "--text", TEXT, "--budget-steps", "2", "--out", str(taken)]
    code, _, err = run(capsys, *argv)
    assert code == 2 and "is a file" in err and err.count("\n") == 1


def test_a_file_that_is_not_clip_weights(capsys, tmp_path):
    junk = tmp_path / "not-weights.bin"
    torch.save({"hello": torch.zeros(2)}, junk)
    code, out, err = run(capsys, "invert", "--model", f"ViT-B-32/{junk}", "--text", "x", "--steps", "1", "--quiet")
    assert code == 2 and "not an open_clip checkpoint" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_model_folder_without_tokenizer_files(capsys, tmp_path, smollm2):
    from tests.conftest import tiny_lm

    folder = tmp_path / "no-tokenizer"
    tiny_lm("llama", smollm2.tokenizer).save_pretrained(folder)
    code, out, err = run(capsys, "discover", "--model", str(folder), "--steps", "1", "--quiet", "--test-size", "4")
    assert code == 2 and "tokenizer files" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_loss_that_goes_non_finite_stops_with_the_best_prompt_so_far(minilm, caplog):
    obj = pez.make_objective(minilm, texts=[TEXT])
    real = obj.loss

    def poisoned(embeds, group, batch_size, generator, ids=None):
        loss, full = real(embeds, group, batch_size, generator, ids)
        if obj.counts["backward"] > 12:  # from the 13th step on
            loss, full = loss * math.nan, full * math.nan
        return loss, full

    obj.loss = poisoned
    res = pez.optimize(obj, pez.PEZConfig(prompt_len=4, steps=50, seed=0, sync_every=5))
    assert res.timings["stopped_by"] == "non-finite" and res.steps_done == 15
    assert math.isfinite(res.score) and res.text
    assert "went non-finite at step 13" in caplog.text


def test_a_loss_that_is_never_finite_says_so(minilm):
    obj = pez.make_objective(minilm, texts=[TEXT])
    real = obj.loss
    obj.loss = lambda *a: tuple(x * math.nan for x in real(*a))
    with pytest.raises(pez.PezError, match="not finite from step 1"):
        pez.optimize(obj, pez.PEZConfig(prompt_len=4, steps=20, seed=0, sync_every=5))


def test_the_prompt_is_printed_before_files_are_written(capsys, tmp_path, monkeypatch):
    """Even if writing --out fails after the run, the prompt is on stdout."""

    def broken_save(self, path):
        raise OSError("disk full")

    monkeypatch.setattr(pez.PromptResult, "save", broken_save)
    with pytest.raises(OSError):
        main([*INVERT, "--out", str(tmp_path / "r.json")])
    out, _ = capsys.readouterr()
    assert out.strip()


def test_splits_used_are_label_balanced_samples(tiny_llama_dir, capsys, tmp_path):
    out = tmp_path / "r.json"
    code, _, err = run(
        capsys, "discover", "--model", tiny_llama_dir, "--steps", "1", "--quiet", "--train-size", "50",
        "--dev-size", "32", "--test-size", "20", "--prompt-len", "2", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    used = json.loads(out.read_text())["splits"]["used"]
    assert used["train"] == {"size": 50, "labels": {"negative": 25, "positive": 25}}
    assert used["dev"] == {"size": 32, "labels": {"negative": 16, "positive": 16}}
    assert used["test"] == {"size": 20, "labels": {"negative": 10, "positive": 10}}
