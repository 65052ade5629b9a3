"""The contact sheet: one row per prompt, its targets then its generations, the prompt and score as caption."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

TILE = 160  # pixels per image
CAPTION = 36  # pixels of text under each row
GAP = 8


def sheet_size(rows: int, columns: int) -> tuple[int, int]:
    """The (width, height) of a sheet of ``rows`` rows of ``columns`` images (a gap between targets and
    generations)."""
    return columns * TILE + GAP, rows * (TILE + CAPTION)


def contact_sheet(rows: Sequence[tuple[Sequence[Image.Image], Sequence[Image.Image], str]]) -> Image.Image:
    """A sheet from rows of (targets, generations, caption)."""
    columns = max(len(t) + len(g) for t, g, _ in rows)
    width, height = sheet_size(len(rows), columns)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for r, (targets, generated, caption) in enumerate(rows):
        y = r * (TILE + CAPTION)
        for c, im in enumerate([*targets, *generated]):
            x = c * TILE + (GAP if c >= len(targets) else 0)
            sheet.paste(_tile(im), (x, y))
        lines = textwrap.wrap(caption, width=max(20, width // 7))[:2]
        for k, line in enumerate(lines):
            draw.text((4, y + TILE + 2 + 14 * k), line, fill="black", font=font)
    return sheet


def _tile(im: Image.Image) -> Image.Image:
    im = im.convert("RGB")
    scale = TILE / max(im.size)
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))))
    tile = Image.new("RGB", (TILE, TILE), "white")
    tile.paste(im, ((TILE - im.width) // 2, (TILE - im.height) // 2))
    return tile
