"""Check prompts by generating (the paper's protocol, docs/evaluation.md#image-evaluation-protocol): for each
prompt, N seeded generations with a diffusers pipeline, each scored against the prompt's target images by
image-image cosine under a reference CLIP.

:func:`check_prompt` does one prompt (the web UI's "check by generating"); :func:`evaluate_images` does whole
result files (a ``pez invert`` JSON or a ``pez invert-dataset`` JSONL), one table row per file, and writes
``report.json``, ``report.md`` and ``contact_sheet.png``.

Each prompt's check is appended to ``checks.jsonl`` in the output folder as soon as it is done (its generations
beside it), so Ctrl-C keeps every finished check and writes the report of what is done; a rerun into the same
folder with the same settings reuses them and generates only the rest.
"""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from pez.errors import PezError
from pez.images import load_image
from pez.jobs.invert_dataset import append_rows
from pez.models import LoadedModel, load_model, resolve_device
from pez.optim.config import check_whole
from pez.records import ImageReport, PromptCheck

MAX_SHEET_ROWS = 16
CHECKS = "checks.jsonl"  # in the output folder: one finished check a line

log = logging.getLogger(__name__)

MAX_GENERATIONS = 1000  # images per prompt: a check, not a dataset


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
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PezError(f"{path} is not a pez result (not text): pass the JSON of pez invert or its JSONL") from None
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
    check_whole("generations", generations, allow_none=False, most=MAX_GENERATIONS)
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
    reference = reference_model.spec if isinstance(reference_model, LoadedModel) else reference_model
    settings = {"pipeline": pipeline, "reference_model": reference or DEFAULT_REFERENCE, "generations": generations,
                "seed": seed, "steps": steps, "guidance": guidance}  # fmt: skip
    earlier = read_checks(out / CHECKS, settings)
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
    report.prompts, done = sum(len(items) for _, items in files), 0
    checked: list[tuple[str, list[tuple[_Item, dict]]]] = []
    try:
        with open(out / CHECKS, "a", encoding="utf-8") as log_file:
            for f, (path, items) in enumerate(files):
                checked.append((path, []))
                for i, it in enumerate(items):
                    where = (os.path.abspath(path), it.key, it.prompt)
                    check = earlier.get(where)
                    if check is not None and all((out / p).is_file() for p in check["images"]):
                        images = (
                            [load_image(out / p) for p in check["images"]] if len(sheet_rows) < MAX_SHEET_ROWS else []
                        )
                        report.reused += 1
                    else:
                        check, images = _check_and_save(it, pipe, scorer, out / "images" / f"{f}-{Path(path).stem}", i,
                                                        out, generations, seed, steps, guidance)  # fmt: skip
                        append_rows(log_file, [{"settings": settings, "results": where[0], "key": it.key,
                                                "prompt": it.prompt, "check": check}])  # fmt: skip
                    checked[-1][1].append((it, check))
                    if len(sheet_rows) < MAX_SHEET_ROWS:
                        caption = f"{it.prompt}  (cosine {check['mean']:.3f})"
                        sheet_rows.append(([load_image(t) for t in it.targets[:2]], images, caption))
                    done += 1
                    if callback is not None:
                        callback(done, report.prompts)
    except KeyboardInterrupt:
        report.interrupted = True
        log.warning(
            "interrupted: %d of %d prompts checked are kept in %s; a rerun continues", done, report.prompts, out
        )
    report.rows = [_file_row(path, pairs) for path, pairs in checked if pairs]
    report.save(out / "report.json")
    (out / "report.md").write_text(report.to_markdown(), encoding="utf-8")
    if sheet_rows:
        contact_sheet(sheet_rows).save(out / "contact_sheet.png")
    return report


def _check_and_save(it: _Item, pipe, scorer, folder: Path, i: int, out: Path, generations, seed, steps, guidance):
    """One prompt checked, its generations saved in ``folder``: (the check as a dict, the generated images)."""
    check, images = check_prompt(it.prompt, it.targets, pipe, scorer, generations=generations, seed=seed,
                                 steps=steps, guidance=guidance)  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    for k, im in enumerate(images):
        name = folder / f"{i:05d}-{seed + k}.png"
        im.save(name)
        check.images.append(str(name.relative_to(out)))
    return {"key": it.key, **check.to_dict()}, images


def _file_row(path: str, pairs: list[tuple[_Item, dict]]) -> dict:
    """One table row: a results file's checked prompts."""
    items = [it for it, _ in pairs]
    means = [c["mean"] for _, c in pairs]
    return {
        "name": Path(path).name,
        "path": path,
        "model": ", ".join(sorted({it.model for it in items})),
        "method": ", ".join(sorted({it.method for it in items})),
        "prompt_tokens": statistics.fmean(it.tokens for it in items),
        "n": len(pairs),
        "mean": statistics.fmean(means),
        "std": statistics.stdev(means) if len(means) > 1 else 0.0,
        "items": [c for _, c in pairs],
    }


def read_checks(path: Path, settings: dict) -> dict[tuple[str, str, str], dict]:
    """The checks an earlier run left in ``path`` (``checks.jsonl``), by (results file, key, prompt).

    Raises:
        PezError: they were made with other settings (reusing them would mix two protocols in one table).
    """
    found: dict[tuple[str, str, str], dict] = {}
    if not path.is_file():
        return found
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line, left by a killed run
        if not (isinstance(row, dict) and isinstance(row.get("check"), dict)):
            continue
        old = row.get("settings", {})
        for name, value in settings.items():
            if old.get(name) != value:
                option = {"steps": "--inference-steps", "reference_model": "--reference-model"}.get(name, f"--{name}")
                raise PezError(
                    f"--out {path.parent} holds checks made with {option} {old.get(name)} (this run: {value}): give a "
                    f"new --out for these settings, or {option} {old.get(name)} to continue that run"
                )
        found[(row["results"], row["key"], row["prompt"])] = row["check"]
    return found


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
