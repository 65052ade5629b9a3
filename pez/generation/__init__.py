"""Checking a prompt the way the paper does: generate images from it with a diffusers text-to-image pipeline and
score them against the target images under a reference CLIP (docs/evaluation.md#image-evaluation-protocol).

- :mod:`~pez.generation.pipelines`: load a pipeline (hub name or local folder), the default pipeline for the CLIP
  a prompt was found with, seeded generation.
- :mod:`~pez.generation.scoring`: image-image cosine under a reference CLIP.
- :mod:`~pez.generation.sheets`: the contact sheet (targets beside generations, the prompt as caption).
"""
