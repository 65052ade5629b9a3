"""The CLI: a real run, and one clear line with exit code 2 for every kind of bad input."""

import json

import pytest
from PIL import Image

from pez.cli import main

TEXT = "A man is riding a horse on the beach at sunset."


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_invert_minilm_writes_result(capsys, tmp_path):
    out = tmp_path / "r.json"
    code, stdout, err = run(
        capsys, "invert", "--model", "minilm", "--text", TEXT, "--prompt-len", "4", "--steps", "20",
        "--device", "cpu", "--seed", "1", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out.read_text())
    assert stdout.strip() == data["text"]
    assert len(data["ids"]) == 4 and data["config"]["steps"] == 20 and data["seed"] == 1
    assert data["model"] == "minilm" and len(data["history"]) == 20
    assert data["config"]["restarts"] == 4  # invert's default, chosen by quality per second (INVERT_DEFAULTS)
    # the early stop is on by default (benchmarks/bench_stop.py): no gain above 0.01 in 300 steps ends the search
    assert (data["config"]["patience"], data["config"]["min_delta"]) == (300, 0.01)
    assert f"cosine {data['score']:.4f}" in err
    assert "time:" not in err  # --quiet


def test_invert_tells_where_the_time_went(capsys, tmp_path):
    """Without --quiet, one line splits the run's time (start-up, model, targets, set-up, search); the same
    figures are in the result's timings."""
    import re

    out = tmp_path / "r.json"
    code, _, err = run(
        capsys, "invert", "--model", "minilm", "--text", TEXT, "--prompt-len", "4", "--steps", "6",
        "--device", "cpu", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    t = json.loads(out.read_text())["timings"]
    line = next(x for x in err.splitlines() if x.startswith("time:"))
    got = re.fullmatch(
        r"time: start-up ([\d.]+) s, model ([\d.]+) s, targets ([\d.]+) s, set-up ([\d.]+) s, search ([\d.]+) s "
        r"\(6 steps\)",
        line,
    )
    assert got, line
    assert float(got[2]) == pytest.approx(t["model_load_s"], abs=0.06) and t["model_load_s"] > 0
    assert float(got[5]) == pytest.approx(t["loop_s"], abs=0.06) and t["targets_s"] > 0


def test_invert_images_with_clip_and_modes(capsys, tmp_path, astronaut_png):
    rgba = tmp_path / "a.png"
    Image.open(astronaut_png).convert("RGBA").save(rgba)
    cmyk = tmp_path / "b.jpg"
    Image.open(astronaut_png).convert("CMYK").save(cmyk)
    code, stdout, err = run(
        capsys, "invert", str(astronaut_png), str(rgba), str(cmyk), "--text", "an astronaut",
        "--model", "ViT-B-32/random", "--prompt-len", "4", "--steps", "3", "--device", "cpu", "--quiet",
        "--blocklist", "nasa", "--no-whole-words",
    )  # fmt: skip
    assert code == 0, err
    assert stdout.strip() and "nasa" not in stdout


BAD = [
    (["invert", "missing.jpg", "--model", "minilm"], "image not found"),
    (["invert", "{notimage}", "--model", "minilm"], "not an image"),
    (["invert", "--model", "minilm"], "no targets given"),
    (["invert", "--model", "minilm", "--text", "x", "--prompt-len", "0"], "prompt-len must be positive"),
    (["invert", "--model", "minilm", "--text", "x", "--prompt-len", "300"], "longer than this model allows"),
    (["invert", "--model", "minilm", "--text", "x", "--prompt-len", "abc"], "invalid int value"),
    (["invert", "--model", "ViT-Q-99", "--text", "x"], "unknown model"),
    (["invert", "--model", "ViT-B-32/not_a_tag", "--text", "x"], "unknown tag"),
    (["invert", "--model", "ViT-B-32/laion2b_s34b_b79k", "--text", "x", "--device", "cpu"], "network access"),
    (["invert", "--model", "minilm", "--text", "x", "--blocklist", *"aeiouy"], None),
    (["invert", "--model", "minilm", "--text", "x", "--resume"], "--resume needs --checkpoint"),
    (["invert", "{image}", "--model", "minilm"], "cannot take image targets"),
    (["invert", "--model", "minilm", "--text", "x", "--steps", "-3"], "steps must be positive"),
    (["invert", "--model", "minilm", "--text", "x", "--device", "cuda:0"], None),
    (["invert", "--model", "minilm", "--text", "x", "--bogus"], "unrecognized arguments"),
    (["invert", "--model", "st:/no/such/folder", "--text", "x"], "no sentence-transformers model folder"),
]


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[" ".join(a[1:4]) for a, _ in BAD])
def test_bad_input_gives_one_line_and_exit_2(capsys, tmp_path, astronaut_png, monkeypatch, argv, message):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    notimage = tmp_path / "notes.png"
    notimage.write_text("hello")
    argv = [a.format(notimage=notimage, image=astronaut_png) for a in argv]
    if "aeiouy" in "".join(argv[-6:]):  # a blocklist of every vowel still leaves tokens like "b", "2", "!"
        argv += [*"bcdfghjklmnpqrstvwxz0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"]
        message = "no token allowed"
    if "cuda:0" in argv:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
        message = "no CUDA GPU"
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("pez: error: ") and message in lines[0]
    assert "Traceback" not in err and out == ""


def test_readme_documents_every_option():
    from pathlib import Path

    from pez.cli import build_parser

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in ("invert", "discover", "compress", "evaluate", "compare", "invert-dataset", "evaluate-images"):
        flags = [s for a in commands[name]._actions for s in a.option_strings if s.startswith("--") and s != "--help"]
        missing = [f for f in flags if f"`{f}" not in readme and f"/ `{f}" not in readme]
        assert not missing, f"README lacks {missing} of pez {name}"
    (gist,) = [a.choices for a in commands["gist"]._actions if isinstance(getattr(a, "choices", None), dict)]
    for name, p in gist.items():
        flags = [s for a in p._actions for s in a.option_strings if s.startswith("--") and s != "--help"]
        missing = [f for f in flags if f"`{f}" not in readme]
        assert not missing, f"README lacks {missing} of pez gist {name}"


def test_ctrl_c_prints_and_saves_the_best_prompt(capsys, tmp_path, monkeypatch):
    from pez.optim.pez import PEZ

    real_step = PEZ.step

    def step(self, i):
        if i == 25:
            raise KeyboardInterrupt
        return real_step(self, i)

    monkeypatch.setattr(PEZ, "step", step)
    out = tmp_path / "r.json"
    code, stdout, err = run(
        capsys, "invert", "--model", "minilm", "--text", TEXT, "--prompt-len", "4", "--steps", "100",
        "--device", "cpu", "--out", str(out), "--checkpoint", str(tmp_path / "c.ckpt"),
    )  # fmt: skip
    assert code == 130
    data = json.loads(out.read_text())
    assert data["interrupted"] and data["steps_done"] == 25 and stdout.strip() == data["text"]
    assert "interrupted after step 25" in err and "Traceback" not in err


def test_models_lists_embedded_and_open_clip(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0 and out.startswith("minilm") and "ViT-H-14/laion2b_s32b_b79k" in out


def test_checkpoint_and_resume_from_the_cli(capsys, tmp_path):
    common = ["invert", "--model", "minilm", "--text", TEXT, "--prompt-len", "4", "--device", "cpu", "--quiet",
              "--sync-every", "5", "--checkpoint-every", "10", "--seed", "3"]  # fmt: skip
    straight, ck = tmp_path / "straight.json", tmp_path / "c.ckpt"
    assert run(capsys, *common, "--steps", "40", "--out", str(straight))[0] == 0
    assert run(capsys, *common, "--steps", "20", "--checkpoint", str(ck))[0] == 0
    resumed = tmp_path / "resumed.json"
    assert run(capsys, *common, "--steps", "40", "--checkpoint", str(ck), "--resume", "--out", str(resumed))[0] == 0
    a, b = json.loads(straight.read_text()), json.loads(resumed.read_text())
    assert a["text"] == b["text"] and a["history"] == b["history"] and b["steps_done"] == 40


@pytest.mark.parametrize(
    "command, field, shown",
    [
        ("discover", "--prompt-len", "10"),
        ("discover", "--batch-size", "16"),
        ("compress", "--prompt-len", "10"),
        ("invert", "--restarts", "4"),
        ("invert", "--prompt-len", "16"),
    ],
)
def test_help_shows_the_default_the_job_applies(capsys, command, field, shown):
    """A job's own defaults (LM_DEFAULTS) override the method's; --help must say the one that applies."""
    import re

    with pytest.raises(SystemExit):
        main([command, "--help"])
    options = capsys.readouterr().out.split("options:")[1]  # past the usage lines
    entry = re.split(r"\n  (?=-)", options.split(f"\n  {field} ")[1])[0]
    assert re.search(r"\(default: (\S+?)\)", " ".join(entry.split())).group(1) == shown


def help_sections(capsys, *argv) -> dict[str, list[str]]:
    """``pez ARGV --help`` as {section title: the long flags listed under it}."""
    import re

    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    sections, title = {}, None
    for line in capsys.readouterr().out.splitlines():
        if re.match(r"^\S.*:$", line):
            title = line[:-1]
            sections[title] = []
        elif title is not None:
            sections[title] += re.findall(r"^  (--[\w-]+)", line)
    return sections


@pytest.mark.parametrize("command", ["invert", "discover", "compress", "invert-dataset"])
def test_help_groups_the_method_options_by_the_method_that_reads_them(capsys, command):
    """Each method option sits in a group whose title names exactly the --method values that read it (or, for
    most methods, the ones that ignore it)."""
    import dataclasses
    import re

    from pez.optim import METHODS

    sections = help_sections(capsys, command)
    vgd = "options of --method vgd (ignored by the others)"
    assert {"--clip-weight", "--beams"} <= set(sections[vgd])
    assert {"--steps", "--prompt-len", "--seed"} <= set(sections["options of every --method"])
    home = {flag: title for title, flags in sections.items() for flag in flags}
    readers = {}
    for method, m in METHODS.items():
        for f in dataclasses.fields(m.config_class):
            readers.setdefault("--" + f.name.replace("_", "-"), set()).add(method)
    for flag, methods in readers.items():
        if len(methods) == len(METHODS):
            assert home[flag] == "options of every --method", flag
        else:
            title = home[flag].split(" (")[0]
            named = set(re.split(r", | and ", title.split("--method ")[1].removeprefix("except ")))
            assert (set(METHODS) - named if "except" in title else named) == methods, (flag, home[flag])
