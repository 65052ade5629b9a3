"""Shared fixtures: CPU only, small real architectures with random weights, and the embedded minilm."""

import os

import pytest
import torch

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PLANTED = "a red car parked on a quiet street"  # 8 words


def tiny_clip():
    """A real open_clip CLIP with a tiny text and image tower and the full BPE vocabulary."""
    import open_clip

    torch.manual_seed(0)
    vision = {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16}
    text = {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2}
    return open_clip.CLIP(embed_dim=32, vision_cfg=vision, text_cfg=text).eval()


@pytest.fixture(scope="session")
def clip_tokenizer():
    import open_clip

    return open_clip.get_tokenizer("ViT-B-32")


@pytest.fixture(scope="session")
def tiny(clip_tokenizer):
    return tiny_clip(), clip_tokenizer


@pytest.fixture(scope="session")
def vitb32(clip_tokenizer):
    import open_clip

    torch.manual_seed(0)
    return open_clip.create_model("ViT-B-32", pretrained=None).eval(), clip_tokenizer


@pytest.fixture(scope="session")
def minilm():
    from pez.models import load_model

    return load_model("minilm", "cpu")


@pytest.fixture(scope="session")
def astronaut_png(tmp_path_factory):
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("img") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


@pytest.fixture(scope="session")
def smollm2():
    """The embedded real LM (SmolLM2-135M-Instruct); converted to a cache folder on first use (~25 s once)."""
    from pez.models import load_lm

    return load_lm("smollm2", "cpu")


def tiny_lm(kind: str, tokenizer, seed: int = 0):
    """A tiny random causal LM of a real architecture ("llama" or "gpt2") over the smollm2 vocabulary."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    v = len(tokenizer)
    if kind == "llama":
        config = LlamaConfig(
            vocab_size=v,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=True,
        )
        return LlamaForCausalLM(config).eval()
    config = GPT2Config(vocab_size=v, n_embd=64, n_layer=2, n_head=4, n_positions=256)
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="session")
def tiny_llama_dir(smollm2, tmp_path_factory):
    """A tiny random Llama saved as a transformers folder with the smollm2 tokenizer (for CLI tests)."""
    path = tmp_path_factory.mktemp("tiny-llama")
    tiny_lm("llama", smollm2.tokenizer).save_pretrained(path)
    smollm2.tokenizer.save_pretrained(path)
    return str(path)


TINY_CLIP_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2},
}


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory):
    """The tiny CLIP as an open_clip ``local-dir:`` folder (config + weights), for CLI runs and subprocesses."""
    import json

    path = tmp_path_factory.mktemp("tiny-clip")
    (path / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CLIP_CFG}))
    torch.save(tiny_clip().state_dict(), path / "open_clip_pytorch_model.bin")
    return f"local-dir:{path}"


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """Real photos from scikit-image (public domain) in a folder with a sub-folder, plus an unreadable file."""
    from PIL import Image
    from skimage import data

    root = tmp_path_factory.mktemp("photos")
    (root / "more").mkdir()
    for name, where in [("astronaut", ""), ("chelsea", ""), ("coffee", "more"), ("rocket", "more"), ("camera", "")]:
        Image.fromarray(getattr(data, name)()).save(root / where / f"{name}.png")
    (root / "broken.jpg").write_bytes(b"not a jpeg at all")
    (root / "notes.txt").write_text("not an image suffix: never listed")
    return root


from pez.generation.offline import hf_clip_tokenizer, tiny_sd_pipeline  # noqa: E402, F401


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory):
    return tiny_sd_pipeline(tmp_path_factory.mktemp("tiny-sd"))


def kept_budget(timings: dict, seconds: float, before: float = 0.0) -> bool:
    """A search stopped by its seconds budget kept it, by its recorded timings: the loading before the search
    (``before``), the method's setup and the loop within ``seconds`` plus the one step of slack the loop's rule
    allows (it stops after the step past which another would overrun); or, when loading and setup alone spent the
    budget (a slow machine), exactly the one step the rule still runs so that a prompt comes back."""
    if timings["stopped_by"] != "budget_seconds":
        return False
    if before + timings["setup_s"] >= seconds:
        return timings["steps_run"] == 1
    step = timings["loop_s"] / timings["steps_run"]
    if timings.get("polish_steps"):  # PEZ, then the polish (pez invert under a clock): its step is the last one
        step = max(step, timings["polish_loop_s"] / timings["polish_steps"])
    return before + timings["total_s"] <= seconds + 2 * step
