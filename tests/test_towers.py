"""The encoders pipelines really use: a transformers CLIP (SD 1.5's text encoder kind) with parity against
``get_text_features``, and SDXL's two towers scoring one prompt, with planted recovery under two random towers."""

import json

import pytest
import torch
import torch.nn.functional as F

import pez
from pez.generation.offline import hf_clip_tokenizer
from pez.models import load_model
from tests.conftest import PLANTED, TINY_CLIP_CFG


@pytest.fixture(scope="module")
def hf_clip_dir(tmp_path_factory):
    """A tiny random transformers CLIPModel with a CLIP tokenizer (open_clip's BPE) and image processor."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    folder = tmp_path_factory.mktemp("hf-clip")
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"vocab_size": 49408, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "max_position_embeddings": 77, "bos_token_id": 49406,
                     "eos_token_id": 49407, "pad_token_id": 49407},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 16},
        projection_dim=32,
    )  # fmt: skip
    CLIPModel(config).eval().save_pretrained(folder)
    hf_clip_tokenizer(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return f"hf:{folder}"


def test_transformers_clip_path_equals_get_text_features(hf_clip_dir):
    loaded = load_model(hf_clip_dir, "cpu")
    obj = pez.make_objective(loaded, texts=["a cat"])
    texts = ["a photo of an astronaut", "sunset over the sea, oil painting", "x"]
    ids = [obj.vocab.encode(t) for t in texts]
    ours = obj.path.encode_ids(ids)
    batch = loaded.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = loaded.model.get_text_features(input_ids=batch["input_ids"])
    ref = ref if isinstance(ref, torch.Tensor) else ref.pooler_output
    assert (ours - ref).abs().max().item() < 1e-5
    embeds = obj.vocab.embeddings[torch.tensor([ids[0]])]
    assert (obj.path.encode_embeds(embeds) - ref[:1]).abs().max().item() < 1e-5


def test_transformers_clip_inverts_images(hf_clip_dir, photos):
    res = pez.invert(images=[photos / "chelsea.png"], model=hf_clip_dir, device="cpu", prompt_len=4, steps=5)
    assert res.text and res.model == hf_clip_dir and res.target_scores[0]["target"].startswith("image:")


@pytest.mark.slow
def test_transformers_clip_recovers_a_planted_prompt(hf_clip_dir):
    planted = pez.invert(texts=[PLANTED], model=hf_clip_dir, device="cpu", prompt_len=8, steps=300, seed=0)
    assert planted.score >= 0.85, planted


@pytest.fixture(scope="module")
def two_towers(tmp_path_factory):
    """Two tiny random open_clip models of different widths, as ``sdxl:A,B``."""
    import open_clip

    specs = []
    for k, width in enumerate((64, 96)):
        folder = tmp_path_factory.mktemp(f"tower{k}")
        cfg = json.loads(json.dumps(TINY_CLIP_CFG))
        cfg["text_cfg"]["width"] = width
        torch.manual_seed(10 + k)
        model = open_clip.CLIP(embed_dim=cfg["embed_dim"], vision_cfg=cfg["vision_cfg"], text_cfg=cfg["text_cfg"])
        (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg}))
        torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
        specs.append(f"local-dir:{folder}")
    return "sdxl:" + ",".join(specs)


def test_each_tower_path_equals_open_clip_encode_text(two_towers):
    loaded = load_model(two_towers, "cpu")
    obj = pez.make_objective(loaded, texts=["a cat"])
    texts = ["a photo of an astronaut", "sunset over the sea"]
    ids = [obj.vocab.encode(t) for t in texts]
    joint = obj.encode_ids(ids)
    split = 0
    for tower in loaded.model:
        with torch.no_grad():
            ref = F.normalize(tower.model.encode_text(tower.tokenizer(texts)), dim=-1)
        part = joint[:, split : split + ref.shape[1]]
        assert (part - ref).abs().max().item() < 1e-5
        split += ref.shape[1]
    # the joint cosine is exactly the mean of the two towers' cosines
    a, b = obj.tower_cosines(ids[0])
    assert obj.target_scores(ids[0])[0]["cosine"] == pytest.approx((a[0]["cosine"] + b[0]["cosine"]) / 2, abs=1e-5)


def test_one_prompt_recovers_a_planted_text_under_two_random_towers(two_towers):
    res = pez.invert(texts=[PLANTED], model=two_towers, device="cpu", prompt_len=8, steps=300, restarts=4, seed=0)
    assert res.score >= 0.85, res
    obj = pez.make_objective(load_model(two_towers, "cpu"), texts=[PLANTED])
    per_tower = [t[0]["cosine"] for t in obj.tower_cosines(res.text_ids)]
    print(json.dumps({"planted": PLANTED, "prompt": res.text, "joint": res.score, "per_tower": per_tower}))
    assert min(per_tower) >= 0.8, per_tower  # not one tower at the other's expense
