"""Folder inversion throughput: images per hour of ``pez.invert_dataset`` at batch 1, 8 and 64.

CPU: a randomly initialised ViT-B-32 (the real architecture), 16-token prompts, a fixed number of steps (the
images-per-hour figure at 3000 steps is the measured rate scaled by steps). GPU (when CUDA is available):
ViT-H-14 architecture weights (random), bf16 autocast, 3000 steps. Images are the scikit-image photos, repeated.
Records the machine and its load before and after, and writes JSON.

    .venv/bin/python benchmarks/bench_folders.py --out benchmarks/results_folders.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from skimage import data

import pez

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "camera", "cat", "immunohistochemistry", "hubble_deep_field"]


def make_folder(n: int) -> str:
    folder = Path(tempfile.mkdtemp()) / "photos"
    folder.mkdir()
    for k in range(n):
        name = PHOTOS[k % len(PHOTOS)]
        Image.fromarray(getattr(data, name)()).save(folder / f"{k:04d}-{name}.png")
    return str(folder)


def images_for(spec: str | None, batch: int) -> int:
    """Images measured at ``batch``: ``--images N`` for every batch, ``--images 1=2,64=128`` per batch."""
    for item in (spec or "").split(","):
        size, _, n = item.rpartition("=")
        if item and (not size or int(size) == batch):
            return int(n)
    return max(batch, 8)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="1,8,64")
    p.add_argument("--steps", type=int, default=None, help="default: 20 on the CPU, 3000 on a GPU")
    p.add_argument(
        "--images", default=None, help="images measured: N, or BATCH=N pairs, comma-joined (default: max(batch, 8))"
    )
    p.add_argument("--out", default="benchmarks/results_folders.json")
    args = p.parse_args()
    cuda = torch.cuda.is_available()
    spec = "ViT-H-14/random" if cuda else "ViT-B-32/random"
    steps = args.steps or (3000 if cuda else 20)
    device = "cuda" if cuda else "cpu"
    t0 = time.perf_counter()
    model = pez.load_model(spec, device)
    load_s = time.perf_counter() - t0
    out = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "device": torch.cuda.get_device_name() if cuda else "cpu", "load_before": os.getloadavg()[0]},
        "model": spec, "prompt_len": 16, "steps": steps, "model_load_s": load_s, "runs": [],
    }  # fmt: skip
    for batch in [int(b) for b in args.batches.split(",")]:
        n = images_for(args.images, batch)
        folder = make_folder(n)
        res = Path(folder).parent / "r.jsonl"
        t = time.perf_counter()
        run = pez.invert_dataset(folder, res, model=model, batch=batch, prompt_len=16, steps=steps, seed=0)
        wall = time.perf_counter() - t
        per_hour = 3600 * run.done / wall
        row = {"batch": batch, "images": run.done, "wall_s": wall, "images_per_hour": per_hour,
               "images_per_hour_at_3000_steps": per_hour * steps / 3000,
               "prompt_steps_per_s": run.done * steps / wall}  # fmt: skip
        out["runs"].append(row)
        print(json.dumps(row), flush=True)
    out["machine"]["load_after"] = os.getloadavg()[0]
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
