"""Gist tokens (Mu, Li & Goodman, "Learning to Compress Prompts with Gist Tokens", NeurIPS 2023) beside
``pez compress``: fine-tune a causal LM once so that any instruction followed by K gist tokens is compressed in one
forward pass into the gist positions' keys and values, which then stand in for the instruction.

- :mod:`~pez.gist.mask`: the decoder gist mask, a custom 4D ``attention_mask``.
- :mod:`~pez.gist.data`: instruction JSONL files and the embedded default set.
- :mod:`~pez.gist.train`: :func:`gist_train` (full fine-tuning or LoRA, checkpoints, resume).
- :mod:`~pez.gist.cache`: :func:`gist_compress`, :func:`gist_generate`, :func:`gist_evaluate` (a saved
  ``DynamicCache``, checked against the model it came from).
- :mod:`~pez.gist.compare`: :func:`compare_compression`: full instruction, hard prompt, gist, prompt tuning, none.
"""

from pez.gist.cache import GistCache, gist_compress, gist_evaluate, gist_generate
from pez.gist.compare import compare_compression
from pez.gist.data import GistData, GistExample, default_gist_data, read_gist_data
from pez.gist.model import GistModel, load_gist_model
from pez.gist.train import TrainProgress, gist_train
from pez.records.gist import METHODS, CompressionComparison, GistEval, GistTrainReport

__all__ = [
    "METHODS",
    "CompressionComparison",
    "GistCache",
    "GistData",
    "GistEval",
    "GistExample",
    "GistModel",
    "GistTrainReport",
    "TrainProgress",
    "compare_compression",
    "default_gist_data",
    "gist_compress",
    "gist_evaluate",
    "gist_generate",
    "gist_train",
    "load_gist_model",
    "read_gist_data",
]
