"""Language-model objectives: task prompts for classification, target completions, and prompt compression.

A hard prompt of L tokens sits in a template after a fixed text and is run through any transformers causal LM
from embeddings (:mod:`~pez.objectives.lm.path`); answers are scored by :mod:`~pez.objectives.lm.labels`; the
objectives (:mod:`~pez.objectives.lm.tasks`, :mod:`~pez.objectives.lm.compression`) share
:class:`~pez.objectives.lm.base.LMObjective`. Any of them adds ``fluency * NLL`` of the prompt's own tokens.
See docs/objectives.md#lm-objectives.
"""

from pez.objectives.lm.base import LMObjective
from pez.objectives.lm.compression import CompressionObjective
from pez.objectives.lm.labels import LabelScorer, answer_rows, gather_spots, sum_spots
from pez.objectives.lm.path import LMPath, perplexity, sample_inputs
from pez.objectives.lm.tasks import ClassificationObjective, CompletionObjective

__all__ = [
    "ClassificationObjective",
    "CompletionObjective",
    "CompressionObjective",
    "LMObjective",
    "LMPath",
    "LabelScorer",
    "answer_rows",
    "gather_spots",
    "perplexity",
    "sample_inputs",
    "sum_spots",
]
