"""Prompt search jobs: :func:`invert` (images and/or texts -> a prompt) and :func:`optimize` (any objective, any
method); :func:`make_objective` builds the embedding objective for a model spec."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

from pez.data.images import load_image
from pez.errors import PezError
from pez.models import DEFAULT_CLIP, LoadedModel, load_model, resolve_device
from pez.objectives.base import Objective, check_negative_weight
from pez.optim import make_config, method_for
from pez.optim.config import OptimizerConfig
from pez.optim.tracking import Progress
from pez.records import PromptResult

# One search for one target: 4 prompts searched together reach a better honest score at every wall-clock budget
# than one prompt does (benchmarks/bench_defaults.py, benchmarks/RESULTS.md#defaults-chosen-by-quality-per-second).
INVERT_DEFAULTS = {"restarts": 4}


def optimize_each(
    objective: Objective,
    config: OptimizerConfig | None = None,
    callback: Callable[[Progress], None] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
) -> list[PromptResult]:
    """Run the method that ``config`` belongs to (PEZ by default); one result per target group."""
    from pez.optim.pez import PEZConfig

    config = config if config is not None else PEZConfig()
    return method_for(config)(objective, config).run(callback=callback, checkpoint=checkpoint, resume=resume)


def optimize(
    objective: Objective,
    config: OptimizerConfig | None = None,
    callback: Callable[[Progress], None] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
) -> PromptResult:
    """Find the best hard prompt for ``objective``.

    Args:
        objective: e.g. :class:`pez.CLIPObjective` or :class:`pez.SentenceObjective`.
        config: a method config, e.g. ``pez.PEZConfig(prompt_len=8, steps=300, restarts=4, seed=0)``.
        callback: called with a :class:`Progress` at every sync point.
        checkpoint: file to save the state to every ``config.checkpoint_every`` steps and at the end.
        resume: continue from ``checkpoint``.

    Returns:
        the best prompt over all restarts, scored on its own re-tokenised text.
    """
    results = optimize_each(objective, config, callback, checkpoint, resume)
    if len(results) != 1:
        raise ValueError(f"this objective has {len(results)} target groups: use optimize_each")
    return results[0]


def _checked_model(model, images, texts, negative_images, negative_weight, device) -> LoadedModel:
    """The loaded model, after the targets and image files are checked (bad input fails before a load)."""
    if not len(images) and not len(texts):
        raise PezError("no targets given: pass image files and/or --text")
    check_negative_weight(negative_weight)
    if isinstance(model, LoadedModel):
        return model
    resolve_device(device)
    for im in [*images, *negative_images]:
        load_image(im)
    return load_model(model, device)


def make_objective(
    model: str | LoadedModel,
    images: Sequence = (),
    texts: Sequence[str] = (),
    negative_images: Sequence = (),
    negative_texts: Sequence[str] = (),
    negative_weight: float = 1.0,
    device: str | None = "auto",
) -> Objective:
    """The embedding objective for a model spec (or a loaded model) and targets.

    Targets and image files are checked before the model is loaded, so bad input fails at once.
    """
    loaded = _checked_model(model, images, texts, negative_images, negative_weight, device)
    targets = dict(
        images=images,
        texts=texts,
        negative_images=negative_images,
        negative_texts=negative_texts,
        negative_weight=negative_weight,
        model_name=loaded.spec,
    )
    if loaded.kind == "clip":
        from pez.objectives.clip import CLIPObjective

        return CLIPObjective(loaded.model, loaded.tokenizer, preprocess=loaded.preprocess, **targets)
    if loaded.kind == "hf-clip":
        from pez.objectives.hf_clip import HFCLIPObjective

        return HFCLIPObjective(loaded.model, loaded.tokenizer, image_processor=loaded.preprocess, **targets)
    if loaded.kind == "sdxl":
        from pez.objectives.dual import DualCLIPObjective

        return DualCLIPObjective(loaded.model, **targets)
    from pez.objectives.sentence import SentenceObjective

    return SentenceObjective(loaded.model, **targets)


def invert(
    images: Sequence = (),
    texts: Sequence[str] = (),
    negative_images: Sequence = (),
    negative_texts: Sequence[str] = (),
    model: str | LoadedModel = DEFAULT_CLIP,
    method: str = "pez",
    device: str | None = "auto",
    negative_weight: float = 1.0,
    callback: Callable[[Progress], None] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    **config,
) -> PromptResult:
    """Find a readable hard prompt whose features match images and/or texts under a model.

    Args:
        images: target images (paths or PIL images); CLIP models only.
        texts: target texts.
        negative_images, negative_texts: targets to move away from.
        model: a model spec (see :mod:`pez.models`) or a :class:`LoadedModel`.
        method: optimiser name (``pez``).
        device: ``auto`` (CUDA if available), ``cpu``, ``cuda``.
        negative_weight: weight of each negative target relative to a positive one.
        callback, checkpoint, resume: as in :func:`optimize`.
        **config: fields of the method's config, e.g. ``prompt_len=8, steps=300, seed=0``; ``restarts``
            defaults to 4 here (:data:`INVERT_DEFAULTS`).
    """
    cfg = make_config(method, config, INVERT_DEFAULTS)
    t0 = time.perf_counter()
    loaded = _checked_model(model, images, texts, negative_images, negative_weight, device)
    t1 = time.perf_counter()
    obj = make_objective(loaded, images, texts, negative_images, negative_texts, negative_weight, device)
    t2 = time.perf_counter()
    res = optimize(obj, cfg, callback=callback, checkpoint=checkpoint, resume=resume)
    res.timings.update(model_load_s=t1 - t0, targets_s=t2 - t1)  # where the time before the search went
    return res
