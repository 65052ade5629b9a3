"""Images in any mode become RGB; bad files give one clear error."""

import numpy as np
import pytest
from PIL import Image

from pez.errors import PezError
from pez.images.load import load_image


def _save(tmp_path, im, name):
    path = tmp_path / name
    im.save(path)
    return path


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "P", "CMYK", "1", "I", "F"])
def test_modes_are_converted(tmp_path, mode):
    base = Image.new("RGB", (8, 8), (200, 100, 50))
    im = base.convert(mode)
    ext = "tiff" if mode in ("CMYK", "F", "I") else "png"
    out = load_image(_save(tmp_path, im, f"x.{ext}"))
    assert out.mode == "RGB" and out.size == (8, 8)


def test_sixteen_bit_is_rescaled_not_clipped(tmp_path):
    a = np.array([[0, 32768, 65535]], dtype=np.uint16)
    path = _save(tmp_path, Image.fromarray(a), "deep.png")
    assert Image.open(path).mode.startswith("I")
    out = np.asarray(load_image(path))[0, :, 0]
    assert out.tolist() == [0, 128, 255]


def test_transparent_pixels_become_white():
    im = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    assert load_image(im).getpixel((0, 0)) == (255, 255, 255)


def test_bad_files(tmp_path):
    with pytest.raises(PezError, match="image not found"):
        load_image(tmp_path / "missing.jpg")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(PezError, match="not an image"):
        load_image(text)
    good = _save(tmp_path, Image.new("RGB", (64, 64), (1, 2, 3)), "cut.png")
    cut = tmp_path / "cut2.png"
    cut.write_bytes(good.read_bytes()[:60])
    with pytest.raises(PezError, match="cannot read image|not an image"):
        load_image(cut)
    with pytest.raises(PezError, match="folder"):
        load_image(tmp_path)
