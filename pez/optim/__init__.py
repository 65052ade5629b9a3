"""Prompt optimisers, one file each, all with the surface of :class:`pez.optim.base.PromptOptimizer`."""

from pez.optim.autoprompt import AutoPrompt, AutoPromptConfig
from pez.optim.base import CandidateConfig, OptimizerConfig, Progress, PromptOptimizer
from pez.optim.fluent import FluentConfig, FluentPrompt
from pez.optim.gcg import GCG, GCGConfig
from pez.optim.hotflip import HotFlip, HotFlipConfig
from pez.optim.pez import PEZ, PEZConfig
from pez.optim.random_search import RandomConfig, RandomSearch
from pez.optim.soft import SoftConfig, SoftPrompt

METHODS: dict[str, type[PromptOptimizer]] = {
    cls.name: cls for cls in (PEZ, HotFlip, AutoPrompt, GCG, FluentPrompt, SoftPrompt, RandomSearch)
}

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
]
