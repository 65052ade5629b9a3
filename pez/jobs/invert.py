"""``pez invert``: images and/or texts -> a prompt (:func:`invert`); :func:`make_objective` builds the embedding
objective of a model spec and its targets."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

import torch

from pez.errors import PezError
from pez.images import load_image
from pez.models import DEFAULT_CLIP, LoadedModel, family_of, family_of_kind, load_model, resolve_device
from pez.objectives.base import Objective, check_negative_weight
from pez.optim import Budget, make_config, optimize
from pez.optim.tracking import Progress
from pez.records import PromptResult

# One search for one target: 4 prompts searched together reach a better honest score at every wall-clock budget
# than one prompt does (benchmarks/bench_defaults.py, benchmarks/RESULTS.md#defaults-chosen-by-quality-per-second).
INVERT_DEFAULTS = {"restarts": 4}
# Readable mode (``--readable``): VGD's beam searches write a fluent first text (``vgd_searches`` of them, or as many
# as ``vgd_share`` of a budget of seconds allows), then the readable method refines the best from its own tokens for
# ``sweeps`` passes over its positions (or the rest of the budget) with the gradient's and the LM's proposals, scored
# with the LM prior (benchmarks/bench_readable.py, docs/defaults.md#readable-mode).
READABLE = {"vgd_searches": 3, "vgd_share": 0.6, "refine": {"prior_weight": 0.05}, "sweeps": 3}


def check_targets(model, images: Sequence, texts: Sequence[str], negative_images: Sequence, negative_weight: float):
    """The targets, checked at the boundary before any model loads; image files are read once, here, and the PIL
    images returned (``images``, ``negative_images``)."""
    if not len(images) and not len(texts):
        raise PezError("no targets given: pass image files and/or --text")
    if any(not (isinstance(t, str) and t.strip()) for t in texts):
        raise PezError("a target text is empty: give --text a sentence (or leave it out)")
    check_negative_weight(negative_weight)
    loaded = [load_image(im) for im in images], [load_image(im) for im in negative_images]
    if (len(images) or len(negative_images)) and isinstance(model, str) and not family_of(model).images:
        raise PezError(f"{model} cannot take image targets: give --text targets, or use a CLIP model for images")
    return loaded


def make_objective(
    model: str | LoadedModel,
    images: Sequence = (),
    texts: Sequence[str] = (),
    negative_images: Sequence = (),
    negative_texts: Sequence[str] = (),
    *,
    negative_weight: float = 1.0,
    device: str | None = "auto",
) -> Objective:
    """The embedding objective for a model spec (or a loaded model) and targets: the model's family
    (:mod:`pez.models.registry`) names the objective.

    Targets and image files are checked before the model is loaded, so bad input fails at once.
    """
    images, negative_images = check_targets(model, images, texts, negative_images, negative_weight)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, resolve_device(device))
    return _objective(loaded, images, texts, negative_images, negative_texts, negative_weight)


def _objective(loaded: LoadedModel, images, texts, negative_images, negative_texts, negative_weight) -> Objective:
    family = family_of_kind(loaded.kind)
    if family.objective is None:
        raise PezError(f"{loaded.spec} is a {loaded.kind} model: invert needs a CLIP or sentence encoder")
    targets = dict(images=images, texts=texts, negative_images=negative_images, negative_texts=negative_texts,
                   negative_weight=negative_weight, model_name=loaded.spec)  # fmt: skip
    return family.objective(loaded, targets)


def readable_search(
    objective: Objective,
    prompt_len: int = 16,
    seed: int = 0,
    *,
    callback: Callable[[Progress], None] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    judge: str | None = None,
    budget: Budget | None = None,
    **config,
) -> PromptResult:
    """Readable mode: VGD writes a first text (:class:`pez.optim.vgd.VGD`, ``READABLE["vgd_searches"]`` beam
    searches), then the readable method (:class:`pez.optim.readable.Readable`) refines the best from that text's own
    tokens, ``READABLE["sweeps"]`` passes over them; ``config`` sets fields of the refinement (``prior_weight``,
    ``top_k``, ``lm_k``, ``max_nll_rise``, ``steps``, ...). The result is the refinement's, with the VGD text and its
    score in ``extras``; ``checkpoint`` / ``resume`` are the refinement's (VGD is deterministic for a seed and runs
    again). A ``budget`` of seconds covers both stages: VGD searches until ``READABLE["vgd_share"]`` of it is spent
    (as many searches as fit), the refinement gets what VGD left."""
    searches, vgd_budget = READABLE["vgd_searches"], None
    if budget is not None and budget.seconds is not None:
        searches, vgd_budget = None, Budget(budget.seconds * READABLE["vgd_share"])
    vgd = {"prompt_len": prompt_len, "seed": seed, "searches": searches, "steps": 10**9}
    first = optimize(objective, make_config("vgd", vgd), budget=vgd_budget)
    settings = {**READABLE["refine"], **config}
    start = readable_start(objective, first, make_config("readable", {"prompt_len": prompt_len, **settings}))
    n = max(1, min(prompt_len, len(objective.vocab.encode(start))))
    refine = {"prompt_len": n, "seed": seed, "init_text": start, "steps": READABLE["sweeps"] * n}
    cfg = make_config("readable", {**refine, **settings})
    if budget is not None and budget.seconds is not None:
        budget = Budget(max(1e-3, budget.seconds - first.timings["total_s"]), budget.passes)
    res = optimize(objective, cfg, callback=callback, checkpoint=checkpoint, resume=resume, judge=judge,
                   budget=budget)  # fmt: skip
    res.extras.update(vgd_text=first.text, vgd_score=first.score, vgd_s=first.timings["total_s"],
                      vgd_searches=len(first.extras.get("searches", [])))  # fmt: skip
    res.timings["total_s"] += first.timings["total_s"]
    return res


@torch.no_grad()
def readable_start(objective: Objective, first: PromptResult, cfg) -> str:
    """The text readable mode refines: of VGD's best-scoring text and each search's own pick, the one of best
    score + prior, as the refinement measures it (``cfg``: its ``prior`` and ``prior_weight``) on the text it will
    start from. More searches find a text of higher score; the prior keeps the start readable."""
    texts = list(dict.fromkeys([first.text] + [p["text"] for p in first.extras.get("searches", []) if p["text"]]))
    if len(texts) == 1:
        return texts[0]
    vocab = objective.vocab
    ids = [vocab.encode(t)[: vocab.max_len] for t in texts]
    loss = objective.eval_loss_ids(ids, torch.zeros(len(ids), dtype=torch.long, device=vocab.embeddings.device))
    if cfg.prior_weight > 0:
        from pez.models.lm import load_text_lm
        from pez.objectives.prior import mean_nll

        shown = [vocab.sentence_case(vocab.decode(i)) for i in ids]  # what the refinement's prior reads
        nll = mean_nll(load_text_lm(cfg.prior, vocab.embeddings.device), shown)
        loss = loss.float().cpu() + cfg.prior_weight * torch.tensor(nll)
    return texts[int(loss.argmin())]


def invert(
    images: Sequence = (),
    texts: Sequence[str] = (),
    negative_images: Sequence = (),
    negative_texts: Sequence[str] = (),
    *,
    model: str | LoadedModel = DEFAULT_CLIP,
    method: str = "pez",
    device: str | None = "auto",
    negative_weight: float = 1.0,
    callback: Callable[[Progress], None] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    judge: str | None = "smollm2",
    readable: bool = False,
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
        callback, checkpoint, resume: as in :func:`pez.optimize`.
        judge: the causal LM whose perplexity of the prompt's text goes in ``readability`` (None: none).
        readable: readable mode (:func:`readable_search`): a prompt that reads as text; it picks its own methods,
            so ``method`` must be left at ``pez``.
        **config: fields of the method's config, e.g. ``prompt_len=8, steps=300, seed=0``; ``restarts``
            defaults to 4 here (:data:`INVERT_DEFAULTS`).
    """
    if readable and method != "pez":
        raise PezError(f"--readable picks its own methods (VGD, then the readable method): leave out --method {method}")
    cfg = make_config("readable" if readable else method, config, None if readable else INVERT_DEFAULTS)
    t0 = time.perf_counter()
    images, negative_images = check_targets(model, images, texts, negative_images, negative_weight)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, resolve_device(device))
    t1 = time.perf_counter()
    obj = _objective(loaded, images, texts, negative_images, negative_texts, negative_weight)
    t2 = time.perf_counter()
    if readable:
        res = readable_search(obj, callback=callback, checkpoint=checkpoint, resume=resume, judge=judge, **config)
    else:
        res = optimize(obj, cfg, callback=callback, checkpoint=checkpoint, resume=resume, judge=judge)
    res.timings.update(model_load_s=t1 - t0, targets_s=t2 - t1)  # where the time before the search went
    return res
