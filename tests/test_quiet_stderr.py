"""A normal pez run shows pez's own lines on stderr, not the libraries' deprecation notes: pez's own calls use the
current names (transformers 5.x's ``cache``), and the notes a library's own code triggers (peft) are filtered
around those calls only, and shown again with PEZ_VERBOSE=1."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

import pez

NOTES = ("deprecat", "FutureWarning")


def pez_cli(*argv, verbose: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PEZ_VERBOSE", "PYTHONWARNINGS")}
    env["PYTHONPATH"] = str(pathlib.Path(pez.__file__).parents[1])  # the pez under test
    if verbose:
        env["PEZ_VERBOSE"] = "1"
    cmd = [sys.executable, "-m", "pez", *map(str, argv)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def notes(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if any(n.lower() in line.lower() for n in NOTES)]


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "reviews.jsonl"
    rows = [("A wonderful, moving film.", "positive"), ("Dull and lifeless.", "negative")] * 3
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))
    return path


FAST = ["--prompt-len", "3", "--steps", "2", "--sync-every", "1", "--batch-size", "4", "--device", "cpu"]


def test_invert_discover_and_compress_print_no_deprecation_notes(tiny_llama_dir, reviews):
    runs = {
        "invert": ["invert", "--model", "minilm", "--text", "a cat", "--prompt-len", "4", "--steps", "5",
                   "--device", "cpu"],
        "discover": ["discover", "--model", tiny_llama_dir, "--data", reviews, "--test-data", reviews, *FAST],
        "discover --method ape": ["discover", "--model", tiny_llama_dir, "--data", reviews, "--test-data", reviews,
                                  "--method", "ape", "--steps", "1", "--device", "cpu"],
        "compress": ["compress", "--model", tiny_llama_dir, "--instruction", "Say whether the critic liked it.",
                     "--data", reviews, "--labels", "negative,positive", "--template", "{prompt} {text} It was",
                     *FAST],
    }  # fmt: skip
    found = {}
    for name, argv in runs.items():
        proc = pez_cli(*argv)
        assert proc.returncode == 0, proc.stderr
        found[name] = notes(proc.stderr)
    assert found == {name: [] for name in runs}


def library_notes(model_dir: str) -> list[str]:
    """The deprecation notes the installed transformers and peft say on their own around prefix tuning (the calls
    pez filters), recorded here with no pez filter in the way: what PEZ_VERBOSE=1 must show (peft 0.22 says none,
    0.17 read transformers' deprecated ``is_gradient_checkpointing``)."""
    import warnings

    import peft
    import torch
    from transformers import AutoModelForCausalLM

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = AutoModelForCausalLM.from_pretrained(model_dir)
        tuned = peft.get_peft_model(model, peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=2))
        with torch.no_grad():
            tuned(input_ids=torch.tensor([[1, 2, 3]]), attention_mask=torch.ones(1, 3, dtype=torch.long))
    return sorted({str(w.message) for w in caught if issubclass(w.category, FutureWarning)})


def test_peft_notes_are_filtered_unless_pez_verbose(tiny_llama_dir, reviews, tmp_path):
    """Prefix tuning's own code may say deprecation notes (peft < 0.22 read ``is_gradient_checkpointing``, its
    forward passed ``past_key_values``): a normal run says none, and PEZ_VERBOSE=1 shows each one the installed
    libraries say (CI's fresh install got peft 0.22, which says none: the test asked for a note that was gone)."""
    argv = ["compare", "--model", tiny_llama_dir, "--data", reviews, "--methods", "random", "--seeds", "1",
            "--budget-steps", "1", "--peft", "prefix-tuning", "--labels", "negative,positive",
            "--template", "{prompt} {text} It was", "--device", "cpu", "--no-judge",
            "--out", tmp_path / "c.json"]  # fmt: skip
    quiet = pez_cli(*argv)
    assert quiet.returncode == 0, quiet.stderr
    assert notes(quiet.stderr) == []
    loud = pez_cli(*argv, verbose=True)
    assert loud.returncode == 0, loud.stderr
    said = library_notes(tiny_llama_dir)
    assert [n for n in said if n.splitlines()[0] not in loud.stderr] == [], loud.stderr


@pytest.mark.parametrize(
    "message",
    ["`is_gradient_checkpointing` is deprecated and will be removed in v6. Use `is_activation_checkpointing` instead.",
     "`past_key_values` is deprecated and will be removed in version 4.58 for `LlamaModel.forward`."],
)  # fmt: skip
def test_quiet_deprecations_filters_exactly_the_library_notes_and_only_around_the_call(message, monkeypatch):
    """The mechanism, whatever the installed libraries say: the notes pez knows a library's own code triggers are
    off inside quiet_deprecations, any other FutureWarning still shows, the filters are put back after the call,
    and PEZ_VERBOSE=1 shows them inside too."""
    import warnings

    from pez.quiet import VERBOSE_ENV, quiet_deprecations

    def said(verbose: bool) -> dict[str, list[str]]:
        monkeypatch.setenv(VERBOSE_ENV, "1" if verbose else "0")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with quiet_deprecations():
                warnings.warn(message, FutureWarning, stacklevel=1)
                warnings.warn("`other` is deprecated", FutureWarning, stacklevel=1)
            inside = [str(w.message) for w in caught]
            warnings.warn(message, FutureWarning, stacklevel=1)
            after = [str(w.message) for w in caught][len(inside) :]
        return {"inside": inside, "after": after}

    assert said(verbose=False) == {"inside": ["`other` is deprecated"], "after": [message]}
    assert said(verbose=True) == {"inside": [message, "`other` is deprecated"], "after": [message]}


def test_the_progress_bar_rate_counts_only_steps_it_saw_run(capsys):
    """The bar is made at a search's first report (step 10 of make demo's run), after those steps ran: it showed
    10 steps in no time ("441505.68step/s"). It starts at the first report's count and rates what follows."""
    import re
    import time

    from pez.cli.options import ProgressBar

    with ProgressBar(quiet=False) as bar:
        bar(10, 300)
        time.sleep(0.2)
        bar(20, 300)
        assert bar.bar.n == 20
    rates = [float(r) for r in re.findall(r"([0-9.]+)step/s", capsys.readouterr().err)]
    assert rates and max(rates) < 10 / 0.2 * 1.5, rates  # 10 steps in 0.2 s: 50 step/s, not 20 (or 10 in no time)


def test_a_search_in_stages_shows_a_bar_per_stage(capsys):
    """Readable mode's compose stage reported into PEZ's finished bar (60/60 while compose ran, its rounds not
    shown): each stage now gets its own bar, named after it, counting from its own first report."""
    import re

    from pez.cli.options import ProgressBar
    from pez.optim.tracking import Progress

    with ProgressBar(quiet=False) as bar:
        for step in (10, 60):
            bar(Progress(step, 60, 0.8, "man beach horse", 1.0, stage="PEZ"))
        for step in (1, 2):
            bar(Progress(step, 12, 0.9, "A man on a horse", 2.0, stage="compose"))
        assert bar.bar.desc == "pez compose" and bar.bar.n == 2 and bar.bar.total == 12
    err = capsys.readouterr().err
    assert re.search(r"pez PEZ: 100%.*60/60", err) and re.search(r"pez compose: .*2/12", err), err


def test_readable_mode_marks_its_progress_with_its_stage_and_times_both(minilm):
    from pez.cli.invert import time_split
    from pez.jobs.invert import readable_search

    seen = []
    obj = pez.make_objective(minilm, texts=["A man is riding a horse on the beach."])
    res = readable_search(obj, 4, 0, callback=lambda p: seen.append(p.stage), steps=2)
    assert set(seen) == {"PEZ", "compose"} and seen == sorted(seen, key=lambda stage: stage == "compose")
    t = res.timings
    assert t["total_s"] == pytest.approx(t["pez_s"] + t["compose_s"])
    line = time_split(t, None, 0.0)
    assert f"PEZ {t['pez_steps']} steps" in line and f"compose {t['steps_run']} rounds" in line, line


def test_a_pipeline_that_cannot_load_says_pez_line_only(capfd):
    """diffusers' own "Couldn't connect to the Hub ... Will try to load from local cache." notes stay off: the user
    reads pez's one line, which says the same."""
    import torch

    from pez.generation.pipelines import load_pipeline

    capfd.readouterr()
    with pytest.raises(pez.PezError, match="cannot load pipeline 'nosuch/pipe'"):
        load_pipeline("nosuch/pipe", torch.device("cpu"))
    assert capfd.readouterr().err == ""


def test_pez_warnings_read_as_pez_lines():
    """A warning pez gives on the command line reads like its errors: ``pez: warning: ...``, not ``WARNING: ...``."""
    proc = pez_cli("invert", "--model", "minilm", "--text", "horse " * 400, "--prompt-len", "2", "--steps", "2",
                   "--restarts", "1", "--no-judge", "--quiet", "--device", "cpu")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "longer than the encoder reads" in line]
    assert len(lines) == 1 and lines[0].startswith("pez: warning: a target text is longer"), proc.stderr
