"""Folder inversion: every image of a source gets its own prompt, many images optimised together in one batch
(one prompt group per image, ``restarts`` prompts each), resumable and sharded across processes.

Each result is appended to a JSONL file (``{"image": KEY, ...PromptResult fields}``) as soon as its batch is
done, flushed and synced, so a run killed at any moment loses no finished image; a rerun skips every image
already in the output (and in shards left by earlier runs). Unreadable images are recorded as
``{"image": KEY, "skipped": REASON}`` and never stop the run; a rerun tries them again once they can be read.
Keys are resolved paths (:func:`pez.images.sources.image_key`), so the same folder typed another way is not redone.
An output holds the results of one setting: a rerun with another model, method or prompt length is refused (a
new ``--out`` keeps both). One process writes an output at a time (:func:`pez.files.writer_lock`).

Scale-out goes through an existing launcher: under ``torchrun`` or ``accelerate launch`` each process takes a
disjoint shard (accelerate's ``PartialState``: rank and world size from the launcher's environment), one device
each, and writes ``OUT.shard-RANK-of-WORLD``; when all are done, rank 0 merges the shards into ``OUT``
(:func:`merge_results` does the same for shards left by killed runs: ``pez merge OUT``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from pez.errors import PezError
from pez.files import writer_lock
from pez.images.sources import IMAGE_SUFFIXES, ImageItem, image_key, list_images, shard
from pez.jobs.folder_search import FolderSearch
from pez.models import DEFAULT_CLIP, LoadedModel, load_model, resolve_device
from pez.optim import Budget, make_config
from pez.optim.budget import budget_steps, check_budget
from pez.optim.config import MAX_BATCH
from pez.optim.readable import check_no_screen
from pez.records import DatasetRun

log = logging.getLogger(__name__)

# The early stop of a folder run, invert's: an image whose best honest score gained no more than ``min_delta`` in
# ``patience`` steps gives its batch slot to the next image (benchmarks/bench_stop.py, docs/defaults.md#early-stop).
INVERT_DATASET_DEFAULTS = {"patience": 300, "min_delta": 0.01}


def shard_state(sharded: bool | None = None, cpu: bool = False):
    """(rank, world, state): this process's place among those a launcher started (torchrun / accelerate launch
    set WORLD_SIZE), through accelerate's PartialState (gloo on CPUs, NCCL on GPUs); (0, 1, None) for a single
    process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if sharded is False or world <= 1:
        return 0, 1, None
    try:
        from accelerate import PartialState
    except ImportError:
        raise PezError("running under a launcher needs accelerate: pip install accelerate") from None
    state = PartialState(cpu=cpu or not torch.cuda.is_available())
    return state.process_index, state.num_processes, state


def shard_path(out: str | os.PathLike, rank: int, world: int) -> str:
    return f"{os.fspath(out)}.shard-{rank}-of-{world}"


def read_results(path: str | os.PathLike) -> dict[str, dict]:
    """The results recorded in a JSONL file by image key (the last line of a key wins; a torn last line, left
    by a killed run, is ignored)."""
    out: dict[str, dict] = {}
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8", errors="replace") as f:  # a binary file is refused below, line by line
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            if "\ufffd" in line and not line.startswith(ROW_START):
                raise PezError(f"{path} is not a results file of pez invert-dataset (binary content): move it away")
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s:%d is not a whole JSON line (a run killed while writing?): ignored", path, n)
                continue
            if isinstance(row, dict) and isinstance(row.get("image"), str):
                out[row["image"]] = row
    return out


ROW_START = '{"image": '  # how every row of a results file begins (json.dumps of a dict whose first key is image)


def check_results_file(path: str) -> None:
    """Refuse a file that is not a pez invert-dataset results JSONL (nothing of it is touched): every whole line
    must be a JSON object with an ``image`` key (a torn last line is allowed)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    for n, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            frag = line.lstrip()
            if n == len(lines) and (frag.startswith(ROW_START) or ROW_START.startswith(frag)):
                continue  # a torn last line, left by a killed run (every row starts with its image key)
            row = None
        if not (isinstance(row, dict) and isinstance(row.get("image"), str)):
            raise PezError(
                f"{path} is not a pez invert-dataset results file (line {n} has no image key): "
                "it is left as it is; give the JSONL that pez invert-dataset --out wrote"
            )


def _shards_of(out: str) -> list[Path]:
    p = Path(out)
    shard_name = re.compile(re.escape(p.name) + r"\.shard-\d+-of-\d+")
    return sorted(s for s in p.parent.glob(p.name + ".shard-*-of-*") if shard_name.fullmatch(s.name))


def merge_results(out: str | os.PathLike) -> int:
    """Merge ``OUT.shard-*`` files into ``OUT`` (one line per image; a finished result wins over a skip), then
    remove the shards. Returns the number of images in ``OUT``."""
    out = os.fspath(out)
    if os.path.isdir(out):
        raise PezError(f"{out} is a folder: give the results JSONL file that the shards belong to")
    shards = _shards_of(out)
    if not os.path.exists(out) and not shards:
        raise PezError(f"nothing to merge: {out} does not exist and has no shards ({out}.shard-*)")
    for path in ([out] if os.path.exists(out) else []) + [os.fspath(s) for s in shards]:
        check_results_file(path)
    with writer_lock(out):  # never under a run that appends to OUT
        return _merge(out, shards)


def _merge(out: str, shards: list[Path]) -> int:
    rows = read_results(out)
    for s in shards:
        for key, row in read_results(s).items():
            if key not in rows or "skipped" in rows[key]:
                rows[key] = row
    tmp = f"{out}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows.values():
            f.write(json.dumps(row) + "\n")
    os.replace(tmp, out)
    for s in shards:
        s.unlink()
    return len(rows)


def append_rows(f, rows: Sequence[dict]) -> None:
    """Append ``rows`` as JSON lines to the open file ``f``, flushed and synced. A torn last line (a writer killed
    mid-line, a full disk) is ended first, so the new rows are whole lines and the fragment alone is ignored."""
    f.flush()
    if f.tell() > 0:
        with open(f.name, "rb") as r:
            r.seek(-1, os.SEEK_END)
            if r.read(1) != b"\n":
                f.write("\n")
    for row in rows:
        f.write(json.dumps(row) + "\n")
    f.flush()
    os.fsync(f.fileno())


SETTINGS = (("model", "--model"), ("method", "--method"), ("prompt_len", "--prompt-len"))


def check_settings(rows: Sequence[dict], settings: dict, out: str) -> None:
    """Refuse to continue an output whose finished rows were made with another model, method or prompt length:
    they would count as done for this run (nothing of the file is touched)."""
    for row in rows:
        if "skipped" in row:
            continue
        made = {
            "model": row.get("model"),
            "method": row.get("method"),
            "prompt_len": (row.get("config") or {}).get("prompt_len"),
        }
        for name, option in SETTINGS:
            if made[name] is not None and made[name] != settings[name]:
                raise PezError(
                    f"{out} holds results made with {option} {made[name]} (this run: {option} {settings[name]}): "
                    f"give a new --out for this setting, or {option} {made[name]} to continue that run"
                )


def _readable(item: ImageItem) -> bool:
    try:
        item.load()
        return True
    except PezError:
        return False


def invert_dataset(
    source: str,
    out: str | os.PathLike,
    *,
    model: str | LoadedModel = DEFAULT_CLIP,
    batch: int = 64,
    method: str = "pez",
    device: str | None = "auto",
    callback: Callable[[int, int], None] | None = None,
    sharded: bool | None = None,
    judge: str | None = "smollm2",
    budget: Budget | None = None,
    run_budget: Budget | None = None,
    **config,
) -> DatasetRun:
    """Invert every image of ``source`` into its own prompt, ``batch`` images at a time.

    Args:
        source: a folder, a .txt / .jsonl list of image paths, or ``hf:NAME[:SPLIT]`` (see
            :mod:`pez.images.sources`).
        out: the results JSONL file (appended to; images already in it are skipped).
        model: a CLIP model spec (or a loaded model) as for :func:`pez.invert`.
        batch: images optimised together (one prompt group each).
        method: optimiser name; ``**config``: its config fields (``prompt_len``, ``steps``, ``restarts``, ...).
        callback: called with (images finished by this call, images to do, a line: images per hour and the mean
            honest score so far) as images finish.
        sharded: None: shard when a launcher started several processes; False: never.
        judge: the causal LM whose perplexity of each prompt goes in its ``readability`` (None: none).
        budget: each image's, e.g. ``pez.Budget(seconds=20)`` (its batch's targets and setup counted); without
            ``steps`` of the user's, the budget (and the early stop) end each search.
        run_budget: the whole run's (the model load counted), shared out among the images still to do; when it
            is spent the images not started are left for a rerun (``DatasetRun.budget_spent``).

    Each image's prompts start from the initial prompt a run on that image alone would (same seed), so a result
    does not depend on the batch it was optimised in. With the early stop (``patience``) on PEZ, an image whose
    prompt stopped improving leaves its slot in the batch to the next image (:mod:`pez.jobs.folder_search`).
    """
    t0 = time.perf_counter()
    check_budget(budget)
    check_budget(run_budget)
    out = os.fspath(out)
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
        raise PezError(f"--batch must be a whole number of images from 1 to {MAX_BATCH:,}, got {batch!r}")
    if os.path.splitext(out)[1].lower() in IMAGE_SUFFIXES:
        raise PezError(f"--out {out} is an image file name: give the results JSONL file to write (e.g. results.jsonl)")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise PezError(f"--out {out}: folder {folder} does not exist (create it first)")
    cfg = make_config(method, budget_steps(config, budget), INVERT_DATASET_DEFAULTS)
    check_no_screen(cfg, "pez invert-dataset")
    if os.path.isfile(out):
        check_results_file(out)  # another kind of file is never appended to
    items = list_images(source)
    rank, world, state = shard_state(sharded, cpu=device == "cpu")
    if not isinstance(model, LoadedModel):
        resolve_device(device)
    mine = shard(items, rank, world)
    target = shard_path(out, rank, world) if world > 1 else out
    with writer_lock(target):
        search = {"batch": batch, "judge": judge, "budget": budget, "run_budget": run_budget, "progress": callback,
                  "t0": t0}  # fmt: skip
        return _run(items, mine, out, target, model, method, cfg, device, search, rank, world, state)


def _run(items, mine, out, target, model, method, cfg, device, search, rank, world, state):
    rows = {image_key(k): row for k, row in read_results(out).items()}
    for s in _shards_of(out):
        for k, row in read_results(s).items():
            if image_key(k) not in rows or "skipped" in rows[image_key(k)]:
                rows[image_key(k)] = row
    spec = model.spec if isinstance(model, LoadedModel) else model
    check_settings(list(rows.values()), {"model": spec, "method": method, "prompt_len": cfg.prompt_len}, out)
    # a skipped image is tried again once it can be read (a file restored, its permissions fixed)
    todo = []
    for it in mine:
        row = rows.get(image_key(it.key))
        if row is None or ("skipped" in row and _readable(it)):
            todo.append(it)
    already = len(mine) - len(todo)
    if already:
        log.info("%d of %d images are already in %s: skipping them", already, len(mine), out)
    t0 = time.perf_counter()
    run = DatasetRun(out, len(items), 0, 0, already, 0.0, 0.0, rank, world)
    if todo:
        dev = state.device if state is not None and device in (None, "auto") else device
        loaded = model if isinstance(model, LoadedModel) else load_model(model, dev)
        with open(target, "a", encoding="utf-8") as f:
            try:
                FolderSearch(loaded, cfg, write=lambda rows: append_rows(f, rows), run=run, **search).search(todo)
            except KeyboardInterrupt:
                run.interrupted = True
                log.warning("interrupted: %d images done are saved in %s; a rerun continues", run.done, target)
    run.seconds = time.perf_counter() - t0
    run.images_per_hour = 3600 * run.done / run.seconds if run.seconds > 0 else 0.0
    if world > 1 and not run.interrupted:
        state.wait_for_everyone()
        if rank == 0:
            merge_results(out)
            run.merged = True
        state.wait_for_everyone()
    return run
