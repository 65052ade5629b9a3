"""Prompt optimisers, one file each, all with the surface of :class:`pez.optim.loop.PromptOptimizer`.

The loop is split by concern: :mod:`~pez.optim.config` (shared fields), :mod:`~pez.optim.loop` (the steps),
:mod:`~pez.optim.tracking` (best prompt, honest re-scoring), :mod:`~pez.optim.budget`,
:mod:`~pez.optim.checkpoint` and :mod:`~pez.optim.candidates` (what the discrete methods share).
:mod:`~pez.optim.peft` trains PEFT's continuous prompts (a different surface: vectors, not text).
"""

from pez.errors import PezError
from pez.optim.autoprompt import AutoPrompt, AutoPromptConfig
from pez.optim.config import CandidateConfig, OptimizerConfig
from pez.optim.fluent import FluentConfig, FluentPrompt
from pez.optim.gcg import GCG, GCGConfig
from pez.optim.hotflip import HotFlip, HotFlipConfig
from pez.optim.loop import PromptOptimizer
from pez.optim.pez import PEZ, PEZConfig
from pez.optim.random_search import RandomConfig, RandomSearch
from pez.optim.soft import SoftConfig, SoftPrompt
from pez.optim.tracking import Progress

METHODS: dict[str, type[PromptOptimizer]] = {
    cls.name: cls for cls in (PEZ, HotFlip, AutoPrompt, GCG, FluentPrompt, SoftPrompt, RandomSearch)
}


def method_class(name: str) -> type[PromptOptimizer]:
    """The optimiser called ``name``.

    Raises:
        PezError: no method has that name.
    """
    if name not in METHODS:
        raise PezError(f"unknown method {name!r}: choose from {', '.join(METHODS)}")
    return METHODS[name]


def method_for(config: OptimizerConfig) -> type[PromptOptimizer]:
    """The optimiser that ``config`` belongs to."""
    for cls in METHODS.values():
        if type(config) is cls.config_class:
            return cls
    raise PezError(f"no method takes a {type(config).__name__}; known: {', '.join(METHODS)}")


def make_config(method: str, overrides: dict | None = None, defaults: dict | None = None) -> OptimizerConfig:
    """The one way a method config is built from a name: the method's dataclass defaults, then the job's
    ``defaults`` (only the fields this method has), then the user's ``overrides`` (all must be fields of it).

    Raises:
        PezError: an unknown method, a field the method does not have, or an invalid value.
    """
    cls = method_class(method).config_class
    names = set(cls.__dataclass_fields__)
    for k in overrides or {}:
        if k not in names:
            raise PezError(f"--{k.replace('_', '-')} does not apply to method {method} ({cls.__name__} has no {k!r})")
    merged = {k: v for k, v in (defaults or {}).items() if k in names} | dict(overrides or {})
    return cls(**merged)


__all__ = [
    "METHODS",
    "GCG",
    "PEZ",
    "AutoPrompt",
    "AutoPromptConfig",
    "CandidateConfig",
    "FluentConfig",
    "FluentPrompt",
    "GCGConfig",
    "HotFlip",
    "HotFlipConfig",
    "OptimizerConfig",
    "PEZConfig",
    "Progress",
    "PromptOptimizer",
    "RandomConfig",
    "RandomSearch",
    "SoftConfig",
    "SoftPrompt",
    "make_config",
    "method_class",
    "method_for",
]
