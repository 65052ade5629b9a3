"""The options of an OpenAI-compatible API as data: :class:`ApiOptions` (``pez evaluate`` on ``openai:MODEL``)
and :class:`ApiSearchOptions` (``pez discover --target``: the API model chooses among the local search's
prompts). Fields carry their help text; the CLI flags are generated from them (:func:`pez.cli.options.add_fields`)
and the values are checked on creation, before any request."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from enum import StrEnum

from pez.errors import PezError
from pez.optim.config import check_whole, config_field


class Scoring(StrEnum):
    """How an API model's answer is read (docs/evaluation.md#api-scoring)."""

    AUTO = "auto"  # check the server: log-probabilities where they can be trusted, else parsing
    LOGPROB = "logprob"  # the label with the highest echoed log-probability
    PARSE = "parse"  # a chat answer, parsed for a label word


class PromptRole(StrEnum):
    """Where a chat request puts the prompt."""

    USER = "user"
    SYSTEM = "system"


def parse_api_model(spec) -> str | None:
    """``"openai:gpt-4o-mini"`` -> ``"gpt-4o-mini"``; None for any other spec (a local model)."""
    if not isinstance(spec, str) or not spec.startswith("openai:"):
        return None
    name = spec[len("openai:") :].strip()
    if not name:
        raise PezError("openai: needs a model name after the colon, e.g. openai:gpt-4o-mini")
    return name


def _choice(enum: type[StrEnum], value, what: str):
    try:
        return enum(value)
    except ValueError:
        raise PezError(f"unknown {what} {value!r}: use {', '.join(e.value for e in enum)}") from None


@dataclass
class ApiOptions:
    """How pez talks to an OpenAI-compatible endpoint."""

    base_url: str | None = config_field(None, "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    api_key_env: str = config_field("OPENAI_API_KEY", "environment variable holding the API key")
    cache: str | None = config_field(None, "API response cache file (default in ~/.cache/pez/api)")
    scoring: Scoring = config_field(Scoring.AUTO, "how answers are scored: auto checks the server")
    prompt_role: PromptRole = config_field(PromptRole.USER, "chat scoring: the prompt's message, user or system")
    timeout: float = config_field(60.0, "seconds per API request")
    max_retries: int = config_field(6, "retries per API request after connection errors, 429 and 5xx")
    concurrency: int = config_field(1, "API requests in flight at once")
    backoff: float = config_field(1.0, "seconds before the first retry (doubled each time)")
    recheck_server: bool = config_field(False, "check the server again instead of using the cached verdict")

    def __post_init__(self):
        self.scoring = _choice(Scoring, self.scoring, "scoring mode")
        self.prompt_role = _choice(PromptRole, self.prompt_role, "prompt role")
        if not (isinstance(self.timeout, int | float) and self.timeout > 0 and math.isfinite(self.timeout)):
            raise PezError(f"timeout must be positive seconds, got {self.timeout}")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise PezError(f"max_retries must be 0 or more, got {self.max_retries}")
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise PezError(f"concurrency must be 1 or more, got {self.concurrency}")
        if not (isinstance(self.backoff, int | float) and self.backoff >= 0 and math.isfinite(self.backoff)):
            raise PezError(f"backoff must be 0 or more seconds, got {self.backoff}")

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    @classmethod
    def take(cls, options: dict):
        """The options of this class taken out of ``options`` (a job's keyword arguments), or None if none is
        there."""
        mine = {k: options.pop(k) for k in list(options) if k in cls.field_names()}
        return cls(**mine) if mine else None


@dataclass
class ApiSearchOptions(ApiOptions):
    """``discover --target``: the local model searches, the API model chooses (docs/evaluation.md)."""

    target: str | None = config_field(None, "openai:MODEL, the API model to find the prompt for")
    api_budget: int | None = config_field(None, "requests the server check and the choice may spend")
    api_token_budget: int | None = config_field(None, "tokens the server check and the choice may spend")
    api_dev_size: int = config_field(16, "dev examples the API scores each prompt on")
    api_swaps: int = config_field(4, "gradient swaps of the API's choice raced per round")
    dry_run: bool = config_field(False, "print the requests and tokens a run would spend; send none")

    def __post_init__(self):
        super().__post_init__()
        if self.target is None:
            raise PezError("the API options need --target openai:MODEL (the API model to choose the prompt on)")
        self.model_name = parse_api_model(self.target)
        if self.model_name is None:
            raise PezError(f"--target {self.target!r} is not an API model: use openai:MODEL with --base-url")
        if not self.base_url:
            raise PezError("--target needs --base-url URL (an OpenAI-compatible endpoint)")
        if self.api_budget is None:
            raise PezError("--target needs --api-budget N: the requests the API may spend choosing the prompt")
        check_whole("api_budget", self.api_budget, allow_none=False)
        check_whole("api_token_budget", self.api_token_budget)
        check_whole("api_dev_size", self.api_dev_size, allow_none=False)
        check_whole("api_swaps", self.api_swaps, allow_none=False)
        if self.api_budget < self.api_dev_size + 2:
            raise PezError(
                f"--api-budget {self.api_budget} cannot score even one prompt on {self.api_dev_size} dev examples "
                f"and check the server: give at least {self.api_dev_size + 2} (log-probability scoring needs one "
                "request per label and example), or lower --api-dev-size"
            )
