"""Prompt optimisers, one file each, all with the surface of :class:`pez.optim.base.PromptOptimizer`."""

from pez.optim.base import OptimizerConfig, Progress, PromptOptimizer
from pez.optim.pez import PEZ, PEZConfig

METHODS: dict[str, type[PromptOptimizer]] = {PEZ.name: PEZ}

__all__ = ["METHODS", "PEZ", "OptimizerConfig", "PEZConfig", "Progress", "PromptOptimizer"]
