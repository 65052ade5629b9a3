"""open_clip models: ``NAME[/TAG]`` with a pretrained tag, a local weights file or ``random``."""

from __future__ import annotations

import hashlib
import os

import torch

from pez.errors import PezError
from pez.models.base import DEFAULT_CLIP, LoadedModel


def parse_clip_spec(spec: str) -> tuple[str, str | None]:
    """``NAME[/TAG]`` -> (name, tag); hf-hub: and local-dir: names keep their slashes."""
    if spec.startswith(("hf-hub:", "local-dir:")):
        return spec, None
    name, _, tag = spec.partition("/")
    return name, tag or None


def load_clip(spec: str, dev: torch.device) -> LoadedModel:
    """An open_clip model and its tokenizer and preprocessing; the spec is checked before any download."""
    import open_clip

    name, tag = parse_clip_spec(spec)
    if not name.startswith(("hf-hub:", "local-dir:")):
        if name not in open_clip.list_models():
            raise PezError(
                f"unknown model {spec!r}: use minilm, st:NAME, or an open_clip name such as {DEFAULT_CLIP} "
                "(`pez models` lists them)"
            )
        tags = open_clip.list_pretrained_tags_by_model(name)
        if tag is None:
            if not tags:
                raise PezError(f"{name} has no pretrained weights in open_clip: use {name}/random or {name}/FILE")
            tag = tags[0]
        if tag not in tags and tag != "random" and not os.path.isfile(tag):
            known = ", ".join(tags) or "none"
            raise PezError(f"unknown tag {tag!r} for {name} (known: {known}; or random, or a weights file)")
    pretrained = None if tag == "random" else tag
    is_file = tag is not None and os.path.isfile(tag)
    try:
        with torch.random.fork_rng(devices=[]):  # random weights are a function of the spec, whatever the caller's RNG
            torch.manual_seed(int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little"))
            model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained, device=dev)
    except Exception as e:  # noqa: BLE001  a local file can fail in any way a foreign pickle or state dict can
        if is_file:
            raise PezError(
                f"cannot load {tag} as {name} weights: it is not an open_clip checkpoint of that model "
                f"({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})"
            ) from None
        if not isinstance(e, RuntimeError | OSError):
            raise
        where = f"{name}/{tag}" if tag else name
        raise PezError(
            f"cannot load weights for {where}: they need network access to download, or a local file "
            f"(--model {name}/PATH) ({str(e).splitlines()[0][:120]})"
        ) from None
    model.eval()
    return LoadedModel(spec, "clip", model, open_clip.get_tokenizer(name), preprocess)


def load_hf_clip(spec: str, dev: torch.device) -> LoadedModel:
    """A transformers CLIP model (``hf:NAME_OR_FOLDER``), its tokenizer and, when it has one, image processor."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

    name = os.path.expanduser(spec[len("hf:") :])
    if not name:
        raise PezError("hf: needs a model name or folder, e.g. hf:openai/clip-vit-large-patch14")
    if name.startswith((os.sep, ".")) and not os.path.isdir(name):
        raise PezError(f"no model folder at {name}")
    try:
        model = CLIPModel.from_pretrained(name).to(dev).eval()
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as e:
        raise PezError(
            f"cannot load transformers CLIP {name!r}: it needs network access to the hub, or a local folder "
            f"({str(e).splitlines()[0][:120]})"
        ) from None
    try:
        processor = CLIPImageProcessor.from_pretrained(name)
    except (OSError, ValueError):
        processor = None  # text targets only
    model.requires_grad_(False)
    return LoadedModel(spec, "hf-clip", model, tokenizer, processor)
