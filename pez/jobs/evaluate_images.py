"""Check prompts by generating (the paper's protocol, docs/evaluation.md#image-evaluation-protocol): for each
prompt, N seeded generations with a diffusers pipeline, each scored against the prompt's target images by
image-image cosine under a reference CLIP.

:func:`check_prompt` does one prompt (the web UI's "check by generating"); :func:`evaluate_images` does whole
result files (a ``pez invert`` JSON or a ``pez invert-dataset`` JSONL), one table row per file, and writes
``report.json``, ``report.md`` and ``contact_sheet.png``.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from pez.errors import PezError
from pez.images import load_image
from pez.models import LoadedModel, load_model, resolve_device
from pez.records import ImageReport, PromptCheck

MAX_SHEET_ROWS = 16


@dataclass
class _Item:
    key: str
    prompt: str
    targets: list[str]
    model: str
    method: str
    tokens: int


def read_prompt_results(path: str | os.PathLike) -> list[_Item]:
    """The prompts and target images of a ``pez invert`` result JSON or a ``pez invert-dataset`` JSONL.

    Raises:
        PezError: not a pez result, or a result without image targets.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise PezError(f"results file {path} not found")
    text = Path(path).read_text(encoding="utf-8")
    try:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()] if path.endswith(".jsonl") else None
        rows = rows if rows is not None else [json.loads(text)]
    except json.JSONDecodeError:
        raise PezError(f"{path} is not a pez result (JSON from pez invert, or JSONL from pez invert-dataset)") from None
    items = []
    for row in rows:
        if not isinstance(row, dict) or "skipped" in row:
            continue
        if not {"text", "ids", "objective", "method"} <= set(row):
            raise PezError(f"{path} is not a pez result: it has no prompt text, ids and objective")
        targets = [t[len("image:") :] for t in row["objective"].get("targets", []) if t.startswith("image:")]
        negatives = row["objective"].get("negatives", 0)
        if negatives:
            targets = targets[: len(targets) - negatives] if len(targets) > negatives else targets
        if not targets:
            raise PezError(f"{path}: the prompt {row['text']!r} has no image targets to compare generations with")
        key = row.get("image") or targets[0]
        items.append(_Item(key, row["text"], targets, row.get("model", ""), row["method"], len(row["ids"])))
    if not items:
        raise PezError(f"{path} holds no inverted images")
    return items


def check_prompt(
    prompt: str,
    targets: Sequence,
    pipe,
    scorer,
    *,
    generations: int = 4,
    seed: int = 0,
    steps: int = 50,
    guidance: float = 7.5,
) -> tuple[PromptCheck, list[Image.Image]]:
    """Generate ``generations`` images from ``prompt`` and score each against ``targets`` (paths or PIL images).

    Returns:
        the check (per-generation mean cosine with the targets, their mean and std) and the generated images.
    """
    from pez.generation.pipelines import generate

    target_images = [load_image(t) for t in targets]
    images = generate(pipe, prompt, generations, seed, steps, guidance)
    scores = scorer.cosines(images, target_images).mean(1).tolist()  # (G,)
    names = [str(t) if isinstance(t, str | os.PathLike) else f"<image {i}>" for i, t in enumerate(targets)]
    std = statistics.stdev(scores) if len(scores) > 1 else 0.0
    return PromptCheck(prompt, names, scores, statistics.fmean(scores), std, seed), images


def evaluate_images(
    results: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    pipeline: str | None = None,
    reference_model: str | LoadedModel | None = None,
    generations: int = 4,
    seed: int = 0,
    steps: int = 50,
    guidance: float = 7.5,
    model: str | None = None,
    device: str | None = "auto",
    callback: Callable[[int, int], None] | None = None,
) -> ImageReport:
    """Check every prompt of one or more result files by generating, as the paper does.

    Args:
        results: ``pez invert`` JSON files and/or ``pez invert-dataset`` JSONL files; one table row each.
        out: a folder for ``report.json``, ``report.md``, ``contact_sheet.png`` and the generated images.
        pipeline: a diffusers pipeline (hub name or local folder); default: the one whose text encoder the
            prompts were found with (ViT-H-14: SD 2.1 base, ViT-L-14: SD 1.5, sdxl: SDXL).
        reference_model: the CLIP that scores images (an open_clip spec; default a large open_clip model).
        generations: images per prompt (seeds ``seed`` .. ``seed + generations - 1``).
        model: when given, every results file must come from this model.
        callback: called with (prompts done, prompts) after each prompt.
    """
    from pez.generation.pipelines import default_pipeline, load_pipeline
    from pez.generation.scoring import DEFAULT_REFERENCE, ReferenceScorer
    from pez.generation.sheets import contact_sheet

    if not (isinstance(guidance, int | float) and math.isfinite(guidance)):
        raise PezError(f"--guidance must be a finite number (1 or below: no guidance), got {guidance!r}")
    if isinstance(generations, bool) or not isinstance(generations, int) or generations < 1:
        raise PezError(f"--generations must be a positive whole number, got {generations!r}")
    if not results:
        raise PezError("no results files given: pass the JSON of pez invert or the JSONL of pez invert-dataset")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PezError(f"--out {out} is a file: give a folder for the report")
    if not out.parent.is_dir():
        raise PezError(f"--out {out}: folder {out.parent} does not exist (create it first)")
    files = [(os.fspath(r), read_prompt_results(r)) for r in results]
    for path, items in files:
        for it in items:
            for t in it.targets:
                if not os.path.isfile(t):
                    raise PezError(f"{path}: target image {t} is not a file here: run from where the images are")
            if model is not None and it.model != model:
                raise PezError(f"{path} holds prompts found with {it.model!r}, not {model!r}")
    found_with = {it.model for _, items in files for it in items}
    if pipeline is None:
        if len(found_with) != 1:
            raise PezError(f"the results come from several models ({', '.join(sorted(found_with))}): give --pipeline")
        pipeline = default_pipeline(found_with.pop())
    dev = resolve_device(device)
    ref = (
        reference_model
        if isinstance(reference_model, LoadedModel)
        else load_model(reference_model or DEFAULT_REFERENCE, dev)
    )
    scorer = ReferenceScorer(ref)
    pipe = load_pipeline(pipeline, dev)
    out.mkdir(exist_ok=True)
    report = ImageReport(pipeline, scorer.spec, generations, seed, steps, guidance)
    sheet_rows = []
    total, done = sum(len(items) for _, items in files), 0
    for f, (path, items) in enumerate(files):
        checks = []
        for i, it in enumerate(items):
            check, images = check_prompt(it.prompt, it.targets, pipe, scorer, generations=generations, seed=seed,
                                         steps=steps, guidance=guidance)  # fmt: skip
            folder = out / "images" / f"{f}-{Path(path).stem}"
            folder.mkdir(parents=True, exist_ok=True)
            for k, im in enumerate(images):
                name = folder / f"{i:05d}-{seed + k}.png"
                im.save(name)
                check.images.append(str(name.relative_to(out)))
            checks.append({"key": it.key, **check.to_dict()})
            if len(sheet_rows) < MAX_SHEET_ROWS:
                caption = f"{it.prompt}  (cosine {check.mean:.3f})"
                sheet_rows.append(([load_image(t) for t in it.targets[:2]], images, caption))
            done += 1
            if callback is not None:
                callback(done, total)
        means = [c["mean"] for c in checks]
        report.rows.append(
            {
                "name": Path(path).name,
                "path": path,
                "model": ", ".join(sorted({it.model for it in items})),
                "method": ", ".join(sorted({it.method for it in items})),
                "prompt_tokens": statistics.fmean(it.tokens for it in items),
                "n": len(checks),
                "mean": statistics.fmean(means),
                "std": statistics.stdev(means) if len(means) > 1 else 0.0,
                "items": checks,
            }
        )
    report.save(out / "report.json")
    (out / "report.md").write_text(report.to_markdown(), encoding="utf-8")
    contact_sheet(sheet_rows).save(out / "contact_sheet.png")
    return report


def check_by_generating(
    prompt: str,
    targets: Sequence,
    pipeline: str,
    reference_model: str | None = None,
    *,
    out: str | os.PathLike,
    generations: int = 4,
    seed: int = 0,
    steps: int = 50,
    guidance: float = 7.5,
    device: str | None = "auto",
    loaded: dict | None = None,
) -> tuple[PromptCheck, list[Image.Image]]:
    """:func:`check_prompt` from names: load the pipeline and the reference CLIP (kept in ``loaded``, a dict the
    caller holds, so a server loads each once), generate, score, and save the generations, ``check.json`` and
    ``contact_sheet.png`` in the folder ``out`` (the web UI's "check by generating")."""
    from pez.generation.pipelines import load_pipeline
    from pez.generation.scoring import DEFAULT_REFERENCE, ReferenceScorer
    from pez.generation.sheets import contact_sheet

    if not (prompt or "").strip():
        raise PezError("the prompt is empty: paste a prompt (e.g. one the image tab found)")
    if not targets:
        raise PezError("no target images: give the images the prompt should reproduce")
    target_images = [load_image(t) for t in targets]
    loaded = {} if loaded is None else loaded
    dev = resolve_device(device)
    reference_model = reference_model or DEFAULT_REFERENCE
    if (pipeline, str(dev)) not in loaded:
        loaded[(pipeline, str(dev))] = load_pipeline(pipeline, dev)
    if ("reference", reference_model, str(dev)) not in loaded:
        loaded[("reference", reference_model, str(dev))] = ReferenceScorer(load_model(reference_model, dev))
    pipe, scorer = loaded[(pipeline, str(dev))], loaded[("reference", reference_model, str(dev))]
    check, images = check_prompt(prompt.strip(), target_images, pipe, scorer, generations=generations, seed=seed,
                                 steps=steps, guidance=guidance)  # fmt: skip
    check.targets = [str(t) if isinstance(t, str | os.PathLike) else name for t, name in zip(targets, check.targets)]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for k, im in enumerate(images):
        im.save(out / f"generation-{check.seed + k}.png")
        check.images.append(str(out / f"generation-{check.seed + k}.png"))
    check.save(out / "check.json")
    sheet = contact_sheet([(target_images[:2], images, f"{check.prompt}  ({check.mean:.3f})")])
    sheet.save(out / "contact_sheet.png")
    return check, images
