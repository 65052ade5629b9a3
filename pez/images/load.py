"""Loading target images: any file Pillow reads, in any mode, as an RGB image.

Sizes: a file over Pillow's decompression-bomb limit (``2 * Image.MAX_IMAGE_PIXELS``, about 179 megapixels) is
refused from its header, before any pixel is decoded (:class:`PezError` "too large: ..."; a folder run records it
as a skipped row). A large image below it is downscaled to at most :data:`MAX_SIDE` pixels a side as it loads,
and said once per process: the models read a few hundred pixels. A JPEG is decoded at the reduced scale
(Pillow's ``draft``: 1/2, 1/4 or 1/8), so its memory is that of the small image; other formats decode once at
full size (3 bytes a pixel for RGB), then shrink before any conversion copies them.
"""

from __future__ import annotations

import logging
import os
import re
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from pez.errors import PezError

log = logging.getLogger(__name__)

MAX_SIDE = 2048  # a larger image is downscaled as it loads (CLIP reads 224 to 448 pixels; contact sheets less)
_said: list[bool] = []  # whether the downscale was said in this process (once is enough)


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
    """A PIL image or a path to one, returned in RGB, at most :data:`MAX_SIDE` pixels a side.

    Raises:
        PezError: the file is missing, unreadable, not an image, or too large ("too large: ...", over Pillow's
            decompression-bomb limit).
    """
    if isinstance(source, Image.Image):
        im = shrink(source, getattr(source, "filename", None) or "an image")
        return im if im.mode == "RGB" else to_rgb(im)  # an image loaded here already: no copy
    path = os.fspath(source)
    if not os.path.exists(path):
        raise PezError(f"image not found: {path}")
    if os.path.isdir(path):
        raise PezError(f"{path} is a folder: pass image files")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # pez downscales it and says so
            with Image.open(path) as im:
                size = im.size
                if max(size) > MAX_SIDE and im.format == "JPEG":
                    im.draft("RGB", _fit(size))  # decoded at 1/2, 1/4 or 1/8 scale: never at full size
                im.load()
                rgb = to_rgb(shrink(im, path, size))
        rgb.info["source"] = path  # where it came from, for results that name their targets
        return rgb
    except Image.DecompressionBombError as e:
        raise PezError(too_large(path, e)) from None
    except UnidentifiedImageError:
        raise PezError(f"{path} is not an image Pillow can read (expected JPEG, PNG, WebP, ...)") from None
    except OSError as e:
        raise PezError(f"cannot read image {path}: {e}") from None


def too_large(name: str, error: Exception | None = None) -> str:
    """The one line for an image over Pillow's decompression-bomb limit (its pixel count from Pillow's error)."""
    found = re.search(r"\((\d+) pixels\)", str(error or ""))
    what = f"{int(found.group(1)) / 1e6:,.0f} megapixels" if found else "more pixels than that"
    limit = 2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6
    return f"too large: {name} has {what}, over the {limit:,.0f} megapixels pez reads (a decompression bomb?): " \
        "downscale it first"  # fmt: skip


def _fit(size: tuple[int, int]) -> tuple[int, int]:
    scale = MAX_SIDE / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def shrink(im: Image.Image, name: str, original: tuple[int, int] | None = None) -> Image.Image:
    """``im`` at most :data:`MAX_SIDE` pixels a side (aspect kept; the first downscale in a process is said once,
    later ones go to the debug log); ``im`` itself when it is small enough. ``original``: the file's size, where
    the decoder already reduced it (a JPEG's draft)."""
    original = original or im.size
    if max(original) <= MAX_SIDE:
        return im
    size = _fit(original)
    if not _said:
        _said.append(True)
        log.warning("%s is %dx%d pixels: downscaled to %dx%d as it loads (the model reads a few hundred pixels; "
                    "pez keeps at most %d a side)", name, *original, *size, MAX_SIDE)  # fmt: skip
    else:
        log.debug("%s: downscaled to %dx%d", name, *size)
    if im.size == size:
        return im
    if im.mode in ("1", "P", "PA"):  # these resample by nearest neighbour only
        im = im.convert("L" if im.mode == "1" else "RGBA")
    if im.mode.startswith("I;16"):
        return im.resize(size, Image.Resampling.LANCZOS)  # no reduce for 16-bit: resampled directly
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)  # box-reduced first: one cheap pass
