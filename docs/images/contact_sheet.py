"""Makes docs/images/contact_sheet.png offline (random weights: the layout, not the quality, is what it shows).

    .venv/bin/python docs/images/contact_sheet.py
"""

import pathlib
import shutil
import tempfile

from PIL import Image
from skimage import data

import pez
from pez.generation.offline import tiny_sd_pipeline

work = pathlib.Path(tempfile.mkdtemp())
(work / "photos").mkdir()
for name in ["astronaut", "chelsea", "coffee", "rocket"]:
    Image.fromarray(getattr(data, name)()).save(work / "photos" / f"{name}.png")
clip = pez.load_model("ViT-B-32/random", "cpu")
pez.invert_dataset(str(work / "photos"), work / "results.jsonl", model=clip, batch=4, prompt_len=8, steps=50, seed=0)
pipe = tiny_sd_pipeline(work / "sd")
pez.evaluate_images([work / "results.jsonl"], work / "eval", pipeline=pipe, reference_model=clip, generations=3,
                    steps=10, device="cpu")  # fmt: skip
shutil.copy(work / "eval" / "contact_sheet.png", pathlib.Path(__file__).parent / "contact_sheet.png")
