"""The config fields every method shares, as plain dataclasses with help text (the CLI options are generated from
them). Invalid values raise :class:`~pez.errors.PezError` on creation. Defaults: docs/defaults.md."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from pez.errors import PezError


def config_field(default, text: str):
    """A dataclass field with help text (shown by ``pez ... --help``)."""
    return field(default=default, metadata={"help": text})


MAX_BATCH = 65_536  # restarts or examples per step: beyond any machine's memory


def check_positive(config, *names: str) -> None:
    """Raise a one-line :class:`PezError` naming the option when one of these fields is not positive."""
    for name in names:
        value = getattr(config, name)
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise PezError(f"{name.replace('_', '-')} must be positive (and finite), got {value}")


def check_nonnegative(config, *names: str, allow_none: bool = False) -> None:
    """Raise a one-line :class:`PezError` naming the option when one of these fields is not a finite number >= 0
    (or None, where ``allow_none``)."""
    for name in names:
        value = getattr(config, name)
        if value is None and allow_none:
            continue
        if isinstance(value, bool) or not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise PezError(f"{name.replace('_', '-')} must be a finite number >= 0, got {value!r}")


def check_whole(name: str, value, allow_none: bool = True, none_means: str = "", most: int | None = None) -> None:
    """An option that is a positive whole number, at most ``most`` (or None where ``allow_none``; ``none_means``
    says what None does). Raises a one-line :class:`PezError` naming the flag."""
    if value is None and allow_none:
        return
    flag = f"--{name.replace('_', '-')}"
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        what = "a positive whole number" + (f" (or leave it out{none_means})" if allow_none else "")
        raise PezError(f"{flag} must be {what}, got {value!r}")
    if most is not None and value > most:
        raise PezError(f"{flag} must be at most {most:,}, got {value:,}")


def check_adamw(config) -> None:
    """``lr`` > 0 and ``weight_decay`` >= 0 (NaN refused), for the methods that step with AdamW."""
    check_positive(config, "lr")
    if not config.weight_decay >= 0:
        raise PezError(f"weight-decay must be >= 0, got {config.weight_decay}")


@dataclass
class OptimizerConfig:
    """Fields shared by all methods."""

    prompt_len: int = config_field(16, "number of tokens in the prompt")
    steps: int = config_field(3000, "optimisation steps")
    restarts: int = config_field(1, "independent prompts optimised together in one batch; the best is returned")
    seed: int = config_field(0, "seed of the run's torch.Generator (initial prompt, target sampling)")
    batch_size: int | None = config_field(1, "targets drawn per prompt per step for the gradient (None: all)")
    init_text: str | None = config_field(
        None, "start from this text (at most prompt-len tokens) instead of random tokens"
    )
    ascii_only: bool = config_field(True, "allow only tokens whose text is printable ASCII")
    whole_words: bool = config_field(True, "allow only tokens that are whole words, so the text re-tokenises the same")
    blocklist: tuple[str, ...] = config_field((), "never use tokens containing any of these (case-insensitive)")
    sync_every: int = config_field(10, "steps between host syncs: progress, honest re-scoring of improved prompts")
    eval_every: int = config_field(50, "steps between full evaluations when a step sees only a sample of the targets")
    checkpoint_every: int = config_field(100, "steps between checkpoints (a multiple of sync_every)")
    amp: bool = config_field(True, "bf16 autocast on CUDA (the prompt itself stays in fp32)")
    prior: str = config_field("smollm2", "causal LM whose likelihood of the prompt's text steers the search")
    prior_weight: float = config_field(0.0, "weight of the prior's mean NLL per token beside the loss (0: no prior)")
    patience: int | None = config_field(
        None, "early stop: steps without a gain above min-delta in the best honest score, then stop (off: none)"
    )
    min_delta: float = config_field(0.0, "early stop: a smaller gain in the best honest score does not count")

    def __post_init__(self):
        self.blocklist = tuple(self.blocklist)
        if any(not isinstance(b, str) or not b.strip() for b in self.blocklist):
            raise PezError("--blocklist has an empty entry, which every token contains: give the words to block")
        check_positive(self, "prompt_len", "steps", "restarts", "sync_every", "eval_every", "checkpoint_every")
        check_positive(self, "batch_size")
        for name in ("restarts", "batch_size"):  # a batch that large is out of any machine's memory
            value = getattr(self, name)
            if value is not None and value > MAX_BATCH:
                raise PezError(f"--{name.replace('_', '-')} must be at most {MAX_BATCH:,}, got {value:,}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise PezError(f"seed must be a whole number from 0 to 2**63 - 1, got {self.seed}")
        w = self.prior_weight
        if isinstance(w, bool) or not isinstance(w, int | float) or not (math.isfinite(w) and w >= 0):
            raise PezError(f"--prior-weight must be a finite number >= 0 (0: no prior), got {w!r}")
        if not isinstance(self.prior, str) or not self.prior.strip():
            raise PezError("--prior must name a causal LM: smollm2, a transformers folder or a hub name")
        check_whole("patience", self.patience, none_means=": no early stop")
        check_nonnegative(self, "min_delta")
        if self.checkpoint_every % self.sync_every:
            raise PezError(
                f"checkpoint-every ({self.checkpoint_every}) must be a multiple of sync-every ({self.sync_every})"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["blocklist"] = list(self.blocklist)
        return d

    @classmethod
    def from_dict(cls, d: dict):
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class CandidateConfig(OptimizerConfig):
    """Fields shared by the methods that score candidate prompts exactly (AutoPrompt, GCG, HotFlip, random)."""

    eval_chunk: int = config_field(512, "candidate prompts per forward when scoring them (halved on CUDA OOM)")

    def __post_init__(self):
        super().__post_init__()
        check_positive(self, "eval_chunk")
