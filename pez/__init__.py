"""pez: readable hard prompts, found by gradient (PEZ, Wen et al., NeurIPS 2023) and compared with baselines.

Heavy dependencies load on first use, so ``import pez`` is quick.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "invert": "pez.api",
    "optimize": "pez.api",
    "optimize_each": "pez.api",
    "make_objective": "pez.api",
    "PEZConfig": "pez.optim.pez",
    "PEZ": "pez.optim.pez",
    "OptimizerConfig": "pez.optim.base",
    "Progress": "pez.optim.base",
    "METHODS": "pez.optim",
    "HotFlip": "pez.optim.hotflip",
    "HotFlipConfig": "pez.optim.hotflip",
    "AutoPrompt": "pez.optim.autoprompt",
    "AutoPromptConfig": "pez.optim.autoprompt",
    "GCG": "pez.optim.gcg",
    "GCGConfig": "pez.optim.gcg",
    "FluentPrompt": "pez.optim.fluent",
    "FluentConfig": "pez.optim.fluent",
    "SoftPrompt": "pez.optim.soft",
    "SoftConfig": "pez.optim.soft",
    "RandomSearch": "pez.optim.random_search",
    "RandomConfig": "pez.optim.random_search",
    "CandidateConfig": "pez.optim.base",
    "compare": "pez.compare",
    "ComparisonResult": "pez.compare",
    "Run": "pez.compare",
    "discover": "pez.lm",
    "compress": "pez.lm",
    "evaluate": "pez.lm",
    "compare_task": "pez.lm",
    "make_task": "pez.lm",
    "TaskReport": "pez.lm",
    "ClassificationObjective": "pez.objectives.lm",
    "CompletionObjective": "pez.objectives.lm",
    "CompressionObjective": "pez.objectives.lm",
    "load_lm": "pez.models",
    "EvalResult": "pez.evaluation.base",
    "tune_continuous": "pez.peft_tuning",
    "CLIPObjective": "pez.objectives.clip",
    "SentenceObjective": "pez.objectives.sentence",
    "EmbeddingObjective": "pez.objectives.base",
    "Objective": "pez.objectives.base",
    "PromptResult": "pez.result",
    "PezError": "pez.errors",
    "load_model": "pez.models",
    "LoadedModel": "pez.models",
    "Vocabulary": "pez.vocab",
    "VocabOptions": "pez.vocab",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pez' has no attribute {name!r}")


def __dir__():
    return __all__
