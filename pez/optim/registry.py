"""The methods by name: :data:`METHODS`, and the one way a method config is built (:func:`make_config`)."""

from __future__ import annotations

from pez.errors import PezError
from pez.optim.ape import APE
from pez.optim.autoprompt import AutoPrompt
from pez.optim.compose import Compose
from pez.optim.config import OptimizerConfig
from pez.optim.fluent import FluentPrompt
from pez.optim.gcg import GCG
from pez.optim.hotflip import HotFlip
from pez.optim.loop import PromptOptimizer
from pez.optim.pez import PEZ
from pez.optim.random_search import RandomSearch
from pez.optim.readable import Readable
from pez.optim.soft import SoftPrompt
from pez.optim.vgd import VGD

METHODS: dict[str, type[PromptOptimizer]] = {
    cls.name: cls
    for cls in (PEZ, HotFlip, AutoPrompt, GCG, FluentPrompt, SoftPrompt, RandomSearch, VGD, Readable, Compose, APE)
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
