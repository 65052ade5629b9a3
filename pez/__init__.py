"""pez: readable hard prompts, found by gradient (PEZ, Wen et al., NeurIPS 2023) and compared with baselines.

The architecture, one folder each: ``jobs`` (one function per user job), ``cli``, ``optim`` (the loop and one
file per method), ``objectives``, ``text`` (tokenizers, vocabulary masks, the projection, templates),
``models``, ``data``, ``evaluation``; ``records`` holds every result type. See CONTRIBUTING.md.

Heavy dependencies load on first use, so ``import pez`` is quick.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    # jobs: one call each (pez.jobs)
    "invert": "pez.jobs",
    "optimize": "pez.jobs",
    "optimize_each": "pez.jobs",
    "make_objective": "pez.jobs",
    "discover": "pez.jobs",
    "compress": "pez.jobs",
    "evaluate": "pez.jobs",
    "compare": "pez.jobs",
    "compare_task": "pez.jobs",
    "ComparisonResult": "pez.jobs",
    "Run": "pez.jobs",
    "invert_dataset": "pez.jobs",
    "evaluate_images": "pez.jobs",
    "check_prompt": "pez.jobs",
    "ImageReport": "pez.jobs",
    "PromptCheck": "pez.jobs",
    "merge_results": "pez.jobs",
    "DatasetRun": "pez.jobs",
    "make_task": "pez.text.templates",
    # methods and their configs (pez.optim)
    "METHODS": "pez.optim",
    "make_config": "pez.optim",
    "OptimizerConfig": "pez.optim",
    "CandidateConfig": "pez.optim",
    "Progress": "pez.optim",
    "PEZ": "pez.optim",
    "PEZConfig": "pez.optim",
    "HotFlip": "pez.optim",
    "HotFlipConfig": "pez.optim",
    "AutoPrompt": "pez.optim",
    "AutoPromptConfig": "pez.optim",
    "GCG": "pez.optim",
    "GCGConfig": "pez.optim",
    "FluentPrompt": "pez.optim",
    "FluentConfig": "pez.optim",
    "SoftPrompt": "pez.optim",
    "SoftConfig": "pez.optim",
    "RandomSearch": "pez.optim",
    "RandomConfig": "pez.optim",
    "tune_continuous": "pez.optim.peft",
    # objectives
    "Objective": "pez.objectives.base",
    "EmbeddingObjective": "pez.objectives.base",
    "CLIPObjective": "pez.objectives.clip",
    "SentenceObjective": "pez.objectives.sentence",
    "ClassificationObjective": "pez.objectives.lm",
    "CompletionObjective": "pez.objectives.lm",
    "CompressionObjective": "pez.objectives.lm",
    # models, text, records, errors
    "load_model": "pez.models",
    "load_lm": "pez.models",
    "LoadedModel": "pez.models",
    "Vocabulary": "pez.text",
    "VocabOptions": "pez.text",
    "PromptResult": "pez.records",
    "TaskReport": "pez.records",
    "EvalResult": "pez.records",
    "ContinuousResult": "pez.records",
    "ApiSearchReport": "pez.jobs.api_search",
    "ApiPlan": "pez.jobs.api_plan",
    "PezError": "pez.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    # No public name is also the name of a submodule of pez, so importing a submodule never rebinds one; and the
    # value is cached here, so a name is the same object on every use.
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pez' has no attribute {name!r}")


def __dir__():
    return __all__
