"""Image sources for folder inversion (``pez invert-dataset SOURCE``): the items of a folder, a list, or a
Hugging Face dataset, each with a stable key that results are recorded under.

- a folder: every image file below it (recursive, sorted); the key is the file's absolute path with its folder
  resolved (:func:`image_key`), so the same folder typed as a relative, absolute or symlinked path gives the same
  keys.
- a text file (``.txt``): one image path per line (relative paths are relative to the list's folder).
- a ``.jsonl`` file: one object per line with the path in ``image``, ``path`` or ``file``.
- ``hf:NAME[:SPLIT]``: a Hugging Face dataset with an image column (needs ``datasets`` and the hub); the key is
  ``hf:NAME:SPLIT:INDEX``.

Items are listed without opening any image; an unreadable one is found when its batch loads it, and recorded as
skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from pez.errors import PezError
from pez.images.load import load_image, too_large

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
PATH_FIELDS = ("image", "path", "file")


def image_key(path: str) -> str:
    """The key a file's result is recorded under: its absolute path with the folder resolved (symlinks, ``..``),
    the file name kept (two links to one file stay two images); ``hf:`` keys are returned as they are. A relative
    path is taken from the current folder, so keys written by older versions (paths as typed) read the same from
    where they were made."""
    if path.startswith("hf:"):
        return path
    p = Path(path).expanduser()
    return os.path.join(os.path.realpath(p.parent), p.name)


@dataclass(frozen=True)
class ImageItem:
    """One image to invert: its key (a path, or a dataset reference) and how to load it."""

    key: str
    loader: Callable[[], Image.Image] | None = None  # None: load the file at ``key``

    def load(self) -> Image.Image:
        """The image in RGB; raises :class:`PezError` when it cannot be read."""
        if self.loader is None:
            return load_image(self.key)
        try:
            return load_image(self.loader())
        except Image.DecompressionBombError as e:  # a dataset's image decoded by its own loader
            raise PezError(too_large(self.key, e)) from None


def list_images(source: str) -> list[ImageItem]:
    """The images of a folder, a list file, or a Hugging Face dataset, in a fixed order.

    Raises:
        PezError: the source does not exist, is of an unknown kind, or holds no image.
    """
    if source.startswith("hf:"):
        items = _hf_images(source)
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            items = [
                ImageItem(image_key(str(p))) for p in sorted(path.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES
            ]
        elif path.is_file() and path.suffix.lower() == ".jsonl":
            items = _jsonl_list(path)
        elif path.is_file() and path.suffix.lower() in (".txt", ".list"):
            lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
            items = [ImageItem(_resolve(path, line)) for line in lines if line and not line.startswith("#")]
        elif path.is_file():
            raise PezError(f"{source} is a file: give a folder of images, a .txt or .jsonl list of paths, or hf:NAME")
        else:
            raise PezError(f"image source {source} not found: give a folder, a .txt or .jsonl list, or hf:NAME")
    if not items:
        raise PezError(f"{source} holds no images (looked for {', '.join(IMAGE_SUFFIXES)})")
    return items


def _resolve(listing: Path, entry: str) -> str:
    p = Path(entry).expanduser()
    return image_key(str(p if p.is_absolute() else listing.parent / p))


def _jsonl_list(path: Path) -> list[ImageItem]:
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            example = '{"image": "a.jpg"}'
            raise PezError(f"{path}:{n} is not JSON ({e.msg}): one object per line, e.g. {example}") from None
        key = next((row[f] for f in PATH_FIELDS if isinstance(row, dict) and isinstance(row.get(f), str)), None)
        if key is None:
            raise PezError(f"{path}:{n} has no image path: give it in one of the fields {', '.join(PATH_FIELDS)}")
        items.append(ImageItem(_resolve(path, key)))
    return items


def _hf_images(source: str) -> list[ImageItem]:
    name, _, split = source[3:].partition(":")
    try:
        import datasets
    except ImportError:
        raise PezError(f"{source} needs the `datasets` package and the hub: pip install datasets") from None
    try:
        ds = datasets.load_dataset(name, split=split or "train")
    except Exception as e:  # the hub raises many types; all mean the dataset cannot be had here
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise PezError(f"cannot load {source} from the Hugging Face hub ({first})") from e
    column = next((c for c, f in ds.features.items() if isinstance(f, datasets.Image)), None)
    if column is None:
        raise PezError(f"{source} has no image column (its columns: {', '.join(ds.column_names)})")
    split = split or "train"
    return [ImageItem(f"hf:{name}:{split}:{i}", lambda i=i: ds[i][column]) for i in range(len(ds))]


def shard(items: list[ImageItem], rank: int, world: int) -> list[ImageItem]:
    """This process's disjoint share of the items (every ``world``-th from ``rank``)."""
    return items[rank::world] if world > 1 else list(items)
