"""Offline stand-ins for demos and tests (no model hub needed): a transformers CLIP tokenizer written from
open_clip's own BPE file, and a Stable Diffusion pipeline of tiny random components. Real architectures, random
weights: the images are noise, but every code path (tokenisation, text encoder, UNet, VAE, scheduler, seeding) is
the real one."""

from __future__ import annotations

import pathlib

import torch


def hf_clip_tokenizer(folder):
    """A transformers CLIPTokenizer written offline from open_clip's own BPE file (its ids equal open_clip's)."""
    import gzip
    import json

    import open_clip.tokenizer as oct
    from transformers import CLIPTokenizer

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    merges = gzip.open(oct.default_bpe(), "rt", encoding="utf-8").read().split("\n")[1 : 49152 - 256 - 2 + 1]
    alphabet = list(oct.bytes_to_unicode().values())
    vocab = alphabet + [v + "</w>" for v in alphabet] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({v: i for i, v in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    tok.save_pretrained(folder)
    return tok


def tiny_sd_pipeline(folder):
    """A Stable Diffusion pipeline of tiny random components (after torch.manual_seed(0)), saved to ``folder``."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8,
    )  # fmt: skip
    vae = AutoencoderKL(
        block_out_channels=[16, 32], in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=8,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
    )  # fmt: skip
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
    ))  # fmt: skip
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    folder = pathlib.Path(folder)
    tok = hf_clip_tokenizer(folder / "tok")
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=scheduler, safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.save_pretrained(folder / "pipe")
    return str(folder / "pipe")
