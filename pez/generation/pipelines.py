"""diffusers text-to-image pipelines: loading, the default for each CLIP, seeded generation."""

from __future__ import annotations

import logging
import os

import torch
from PIL import Image

from pez.errors import PezError
from pez.quiet import quiet_loading

log = logging.getLogger(__name__)

# The pipeline whose text encoder is (or contains) the CLIP a prompt was found with.
DEFAULT_PIPELINES = {
    "ViT-H-14": "stabilityai/stable-diffusion-2-1-base",  # SD 2.x: OpenCLIP ViT-H-14's text tower
    "ViT-L-14": "stable-diffusion-v1-5/stable-diffusion-v1-5",  # SD 1.5: OpenAI CLIP ViT-L-14's text model
    "hf:openai/clip-vit-large-patch14": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "sdxl": "stabilityai/stable-diffusion-xl-base-1.0",  # ViT-L-14 + ViT-bigG-14
}


def default_pipeline(model: str) -> str:
    """The pipeline that reads prompts found with ``model`` (a pez model spec)."""
    name = model.split("/")[0] if not model.startswith(("hf:", "sdxl")) else model
    if model.startswith("sdxl"):
        name = "sdxl"
    if name in DEFAULT_PIPELINES:
        return DEFAULT_PIPELINES[name]
    raise PezError(f"no default pipeline for prompts found with {model!r}: give --pipeline (a hub name or a folder)")


def load_pipeline(spec: str, device: torch.device):
    """A diffusers text-to-image pipeline from a hub name or a local folder (``save_pretrained``), on ``device``
    (fp16 on CUDA, fp32 elsewhere), with its progress bar off."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from diffusers import DiffusionPipeline
    except ImportError:
        raise PezError("generating images needs diffusers: pip install diffusers") from None
    local = os.path.isdir(os.path.expanduser(spec))
    if spec.startswith((os.sep, ".", "~")) and not local:
        raise PezError(f"no pipeline folder at {spec}")
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    try:
        with quiet_loading():
            pipe = DiffusionPipeline.from_pretrained(os.path.expanduser(spec), dtype=dtype)
    except Exception as e:  # the hub and the loaders raise many types; each means the pipeline cannot be had
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        where = "its folder is not a diffusers pipeline" if local else "it needs network access to the hub"
        raise PezError(f"cannot load pipeline {spec!r}: {where}, or give a local folder ({first})") from None
    if not hasattr(pipe, "text_encoder") or not callable(pipe):
        raise PezError(f"{spec} is not a text-to-image pipeline")
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


@torch.no_grad()
def generate(pipe, prompt: str, n: int, seed: int, steps: int, guidance: float) -> list[Image.Image]:
    """``n`` images from ``prompt``; image k from a generator seeded ``seed + k`` (the same image for the same
    seed, whatever ``n``)."""
    device = pipe.device
    images = []
    for k in range(n):
        gen = torch.Generator(device=device).manual_seed(seed + k)
        out = pipe(prompt, num_inference_steps=steps, guidance_scale=guidance, generator=gen, output_type="pil")
        images.append(out.images[0])
    return images
