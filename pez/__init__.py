"""pez: readable hard prompts, found by gradient (PEZ, Wen et al., NeurIPS 2023) and compared with baselines.

The architecture, one folder each: ``jobs`` (one module per user job, named after its command), ``cli``, ``ui``,
``optim`` (the loop, the one run function and one file per method), ``objectives``, ``text`` (tokenizers,
vocabulary masks, the projection, templates), ``models`` (a registry of model families), ``data`` (LM task data),
``images``, ``generation``, ``evaluation``; ``records`` holds every result type. See CONTRIBUTING.md.

Heavy dependencies load on first use, so ``import pez`` is quick.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    # jobs: one call each, one module per command (pez.jobs)
    "invert": "pez.jobs.invert",
    "make_objective": "pez.jobs.invert",
    "invert_dataset": "pez.jobs.invert_dataset",
    "merge_results": "pez.jobs.invert_dataset",
    "discover": "pez.jobs.discover",
    "compress": "pez.jobs.compress",
    "evaluate": "pez.jobs.evaluate",
    "compare": "pez.jobs.compare",
    "compare_task": "pez.jobs.compare",
    "evaluate_images": "pez.jobs.evaluate_images",
    "check_prompt": "pez.jobs.evaluate_images",
    "check_by_generating": "pez.jobs.evaluate_images",
    "LMTask": "pez.jobs.lm",
    # gist tokens beside pez compress (pez.gist)
    "gist_train": "pez.gist",
    "gist_compress": "pez.gist",
    "gist_generate": "pez.gist",
    "gist_evaluate": "pez.gist",
    "compare_compression": "pez.gist",
    "make_task": "pez.text.templates",
    # methods, their configs and the one way to run them (pez.optim)
    "optimize": "pez.optim",
    "optimize_each": "pez.optim",
    "Budget": "pez.optim",
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
    "VGD": "pez.optim",
    "VGDConfig": "pez.optim",
    "Readable": "pez.optim",
    "ReadableConfig": "pez.optim",
    "tune_continuous": "pez.optim.peft",
    # objectives
    "Objective": "pez.objectives.base",
    "EmbeddingObjective": "pez.objectives.base",
    "CLIPObjective": "pez.objectives.clip",
    "SentenceObjective": "pez.objectives.sentence",
    "ClassificationObjective": "pez.objectives.lm",
    "CompletionObjective": "pez.objectives.lm",
    "CompressionObjective": "pez.objectives.lm",
    # models, text, options, records, errors
    "load_model": "pez.models",
    "load_lm": "pez.models",
    "LoadedModel": "pez.models",
    "Vocabulary": "pez.text",
    "VocabOptions": "pez.text",
    "ApiOptions": "pez.evaluation.options",
    "ApiSearchOptions": "pez.evaluation.options",
    "Scoring": "pez.evaluation.options",
    "PromptResult": "pez.records",
    "TaskReport": "pez.records",
    "EvalResult": "pez.records",
    "ContinuousResult": "pez.records",
    "ComparisonResult": "pez.records",
    "Run": "pez.records",
    "DatasetRun": "pez.records",
    "PromptCheck": "pez.records",
    "ImageReport": "pez.records",
    "ApiSearchReport": "pez.records",
    "ApiPlan": "pez.records",
    "PezError": "pez.errors",
    # Ctrl-C and SIGTERM reach the calling program (pez.interrupts)
    "Interrupted": "pez.interrupts",
    "on_signal": "pez.interrupts",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    # No public name is also the name of a submodule of pez, so importing a submodule never rebinds one; and the
    # value is cached here, so a name is the same object on every use. The functions that run jobs are exported
    # wrapped: a Ctrl-C or SIGTERM they took reaches the caller (pez.interrupts); pez's own code calls them from
    # their modules, and the command line runs under on_signal("return").
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        from pez.interrupts import PUBLIC, reaches_caller

        if name in PUBLIC:
            value = reaches_caller(value)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pez' has no attribute {name!r}")


def __dir__():
    return __all__
