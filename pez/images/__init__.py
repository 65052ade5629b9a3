"""Target images: :mod:`~pez.images.load` reads any file Pillow reads as RGB (:func:`load_image`);
:mod:`~pez.images.sources` lists the images of a folder, a list file or a Hugging Face image column, and shards
them across processes (``pez invert-dataset``)."""

from pez.images.load import load_image, to_rgb
from pez.images.sources import ImageItem, list_images, shard

__all__ = ["ImageItem", "list_images", "load_image", "shard", "to_rgb"]
