"""Prompt optimisers, one file each, all with the surface of :class:`pez.optim.loop.PromptOptimizer`.

The loop is split by concern: :mod:`~pez.optim.config` (shared fields), :mod:`~pez.optim.loop` (the steps),
:mod:`~pez.optim.tracking` (best prompt, honest re-scoring), :mod:`~pez.optim.budget`,
:mod:`~pez.optim.checkpoint` and :mod:`~pez.optim.candidates` (what the discrete methods share).
:mod:`~pez.optim.registry` names the methods (:data:`METHODS`, :func:`make_config`); :func:`optimize` /
:func:`optimize_each` (:mod:`~pez.optim.run`) are the one way every job runs a method.
:mod:`~pez.optim.peft` trains PEFT's continuous prompts (a different surface: vectors, not text).
"""

from pez.optim.autoprompt import AutoPrompt, AutoPromptConfig
from pez.optim.budget import Budget
from pez.optim.config import CandidateConfig, OptimizerConfig
from pez.optim.fluent import FluentConfig, FluentPrompt
from pez.optim.gcg import GCG, GCGConfig
from pez.optim.hotflip import HotFlip, HotFlipConfig
from pez.optim.loop import PromptOptimizer
from pez.optim.pez import PEZ, PEZConfig
from pez.optim.random_search import RandomConfig, RandomSearch
from pez.optim.readable import Readable, ReadableConfig
from pez.optim.registry import METHODS, make_config, method_class, method_for
from pez.optim.run import optimize, optimize_each
from pez.optim.soft import SoftConfig, SoftPrompt
from pez.optim.tracking import Progress
from pez.optim.vgd import VGD, VGDConfig

__all__ = [
    "METHODS",
    "Budget",
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
    "Readable",
    "ReadableConfig",
    "SoftConfig",
    "SoftPrompt",
    "VGD",
    "VGDConfig",
    "make_config",
    "method_class",
    "method_for",
    "optimize",
    "optimize_each",
]
