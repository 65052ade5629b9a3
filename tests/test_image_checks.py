"""Checking prompts by generating: a real diffusers pipeline of tiny random components, seeded; scores equal a
direct computation with the reference CLIP; the report, its table and the contact sheet."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import pez
from pez.cli import main
from pez.generation.pipelines import generate, load_pipeline
from pez.generation.sheets import sheet_size
from pez.models import load_model

GEN = {"generations": 2, "steps": 3, "seed": 5}


@pytest.fixture(scope="module")
def results(photos, tmp_path_factory, tiny_clip_dir):
    """A pez invert JSON (two images, a style prompt) and a pez invert-dataset JSONL (two images)."""
    folder = tmp_path_factory.mktemp("results")
    loaded = load_model(tiny_clip_dir, "cpu")
    one = pez.invert(images=[photos / "chelsea.png", photos / "astronaut.png"], model=loaded, prompt_len=3, steps=4)
    one.save(folder / "style.json")
    listing = folder / "two.txt"
    listing.write_text(f"{photos / 'chelsea.png'}\n{photos / 'more' / 'coffee.png'}\n")
    pez.invert_dataset(str(listing), folder / "two.jsonl", model=loaded, prompt_len=3, steps=4)
    return folder


@pytest.fixture(scope="module")
def pipe(tiny_pipeline_dir):
    return load_pipeline(tiny_pipeline_dir, torch.device("cpu"))


def test_generation_is_deterministic_for_a_seed(pipe):
    a = generate(pipe, "a cat on a sofa", 2, seed=3, steps=3, guidance=7.5)
    b = generate(pipe, "a cat on a sofa", 1, seed=4, steps=3, guidance=7.5)
    c = generate(pipe, "a cat on a sofa", 1, seed=3, steps=3, guidance=7.5)
    assert np.array_equal(np.asarray(a[1]), np.asarray(b[0]))  # image k is seed + k, whatever n
    assert np.array_equal(np.asarray(a[0]), np.asarray(c[0]))
    assert not np.array_equal(np.asarray(a[0]), np.asarray(a[1]))


def test_scores_equal_a_direct_computation(pipe, photos, tiny_clip_dir, tmp_path):
    from pez.generation.scoring import ReferenceScorer

    ref = load_model(tiny_clip_dir, "cpu")
    check, images = pez.check_prompt("a cat", [photos / "chelsea.png"], pipe, ReferenceScorer(ref), **GEN)
    with torch.no_grad():
        pixels = torch.stack([ref.preprocess(im) for im in [*images, Image.open(photos / "chelsea.png")]])
        feats = F.normalize(ref.model.encode_image(pixels), dim=-1)
    direct = (feats[:2] @ feats[2]).tolist()
    assert check.scores == pytest.approx(direct, abs=1e-5)
    assert check.mean == pytest.approx(sum(direct) / 2, abs=1e-5)


def test_evaluate_images_writes_report_table_and_sheet(results, tiny_pipeline_dir, tiny_clip_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["evaluate-images", str(results / "style.json"), str(results / "two.jsonl"), "--pipeline",
            tiny_pipeline_dir, "--reference-model", tiny_clip_dir, "--generations", "2", "--inference-steps", "3",
            "--seed", "5", "--out", str(out), "--device", "cpu", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert [r["n"] for r in report["rows"]] == [1, 2] and report["generations"] == 2
    style = report["rows"][0]["items"][0]
    assert len(style["targets"]) == 2 and len(style["scores"]) == 2 and len(style["images"]) == 2
    assert all((out / p).exists() for p in style["images"])
    row = report["rows"][1]
    assert row["mean"] == pytest.approx(sum(i["mean"] for i in row["items"]) / 2, abs=1e-9)
    assert "| style.json |" in stdout and "| two.jsonl |" in (out / "report.md").read_text()
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.format == "PNG" and sheet.size == sheet_size(3, 4)  # 3 prompts; 2 targets + 2 generations
    again = pez.evaluate_images([results / "two.jsonl"], tmp_path / "again", pipeline=tiny_pipeline_dir,
                                reference_model=tiny_clip_dir, device="cpu", **{**GEN, "seed": 5})  # fmt: skip
    assert again.rows[0]["mean"] == pytest.approx(row["mean"], abs=1e-6)  # seeded: the same numbers


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--pipeline", "/no/such/pipeline"], "no pipeline folder"),
        (["--pipeline", "{tmp}"], "not a diffusers pipeline"),
        (["--model", "ViT-H-14/laion2b_s32b_b79k"], "not 'ViT-H-14/laion2b_s32b_b79k'"),
        (["--generations", "0"], "--generations must be"),
        ([], "no default pipeline"),  # a tiny local CLIP has no pipeline of its own
    ],
)
def test_bad_input(results, tiny_clip_dir, tmp_path, capsys, extra, message):
    argv = ["evaluate-images", str(results / "two.jsonl"), "--reference-model", tiny_clip_dir, "--out",
            str(tmp_path / "e"), "--device", "cpu", *(a.format(tmp=tmp_path) for a in extra)]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_not_a_pez_result(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"hello": 1}))
    assert main(["evaluate-images", str(bad), "--out", str(tmp_path / "e"), "--pipeline", "x"]) == 2
    assert "is not a pez result" in capsys.readouterr().err
