"""sentence-transformers models: ``minilm`` (embedded) and ``st:NAME_OR_PATH``."""

from __future__ import annotations

import os

import torch

from pez.errors import PezError
from pez.models.base import LoadedModel


def load_sentence(spec: str, name: str, dev: torch.device) -> LoadedModel:
    """A sentence-transformers model from a hub name or a local folder."""
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
