"""Loading target images: any file Pillow reads, in any mode, as an RGB image."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from pez.errors import PezError


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert an image of any mode to RGB (alpha composited on white, 16-bit and float rescaled to 8 bits)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        if im.mode == "F" and a.max() <= 1.0:
            hi = 1.0
        im = Image.fromarray(np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    return im.convert("RGB")


def load_image(source) -> Image.Image:
    """A PIL image or a path to one, returned in RGB.

    Raises:
        PezError: the file is missing, unreadable, or not an image.
    """
    if isinstance(source, Image.Image):
        return source if source.mode == "RGB" else to_rgb(source)  # an image loaded here already: no copy
    path = os.fspath(source)
    if not os.path.exists(path):
        raise PezError(f"image not found: {path}")
    if os.path.isdir(path):
        raise PezError(f"{path} is a folder: pass image files")
    try:
        with Image.open(path) as im:
            im.load()
            rgb = to_rgb(im)
            rgb.info["source"] = path  # where it came from, for results that name their targets
            return rgb
    except UnidentifiedImageError:
        raise PezError(f"{path} is not an image Pillow can read (expected JPEG, PNG, WebP, ...)") from None
    except OSError as e:
        raise PezError(f"cannot read image {path}: {e}") from None
