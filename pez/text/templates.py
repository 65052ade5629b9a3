"""Language-model tasks as plain data: a template with slots for the prompt and the input, and a verbaliser.

The template ``"{prompt} {text} It was"`` is the paper's SST-2 protocol (Wen et al. 2023, after Shin et al.
2020): the model reads the prompt, then the input, then a cue, and the label is read off the log-probability of
each label's word right after the cue. The same :class:`Task` fills text for local models and for APIs, so a
prompt is scored the same way everywhere.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from pez.errors import PezError

DEFAULT_TEMPLATE = "{prompt} {text} It was"


@dataclass(frozen=True)
class Template:
    """A text with a ``{text}`` slot (the input) and a ``{prompt}`` slot before it (the prompt).

    Without ``{prompt}``, the prompt goes first, followed by a space.
    """

    text: str = DEFAULT_TEMPLATE

    def __post_init__(self):
        try:
            slots = [name for _, name, _, _ in string.Formatter().parse(self.text) if name is not None]
        except ValueError as e:
            raise PezError(f"bad template {self.text!r}: {e} (write literal braces as {{{{ and }}}})") from None
        unknown = sorted(set(slots) - {"prompt", "text"})
        if unknown:
            raise PezError(
                f"template {self.text!r} has unknown slot {{{unknown[0]}}}: use only {{prompt}} and {{text}}"
            )
        if slots.count("text") != 1:
            raise PezError(f"template {self.text!r} needs exactly one {{text}} slot for the input")
        if slots.count("prompt") > 1:
            raise PezError(f"template {self.text!r} has more than one {{prompt}} slot")
        if "prompt" not in slots:
            object.__setattr__(self, "text", "{prompt} " + self.text)
        elif self.text.index("{prompt}") > self.text.index("{text}"):
            raise PezError(f"template {self.text!r}: put {{prompt}} before {{text}} (the prompt is a shared prefix)")

    def split(self) -> tuple[str, str]:
        """(before the prompt, after the prompt), the latter still holding ``{text}``."""
        before, after = self.text.split("{prompt}")
        return _literal(before), after

    def before(self) -> str:
        """The fixed text before the prompt."""
        return self.split()[0]

    def after(self, text: str) -> str:
        """The text after the prompt for one input."""
        return _literal(self.split()[1]).replace("\0TEXT\0", text)

    def fill(self, prompt: str, text: str) -> str:
        """The whole text a model reads; an empty prompt leaves no doubled space behind."""
        before, after = self.before(), self.after(text)
        if not prompt:
            return (before.rstrip() + " " + after.lstrip()).strip() if before.strip() else after.lstrip()
        return before + prompt + after


def _literal(part: str) -> str:
    """Turn a template part into literal text, with ``{text}`` kept as a marker."""
    return part.replace("{text}", "\0TEXT\0").replace("{{", "{").replace("}}", "}")


@dataclass(frozen=True)
class Verbalizer:
    """Label names (as in the data) and the word the model should say for each.

    Args:
        labels: label names, in order (integer labels in data index this list).
        words: the word for each label; by default the label names themselves.
    """

    labels: tuple[str, ...]
    words: tuple[str, ...]

    def __post_init__(self):
        if len(self.labels) < 2:
            raise PezError(f"a classification task needs at least two labels, got {list(self.labels)}")
        if len(set(self.labels)) != len(self.labels):
            raise PezError(f"labels must differ, got {list(self.labels)}")
        if len(self.words) != len(self.labels):
            raise PezError("give one word per label")
        if any(not w.strip() for w in self.words):
            raise PezError("a label word is empty")

    @classmethod
    def parse(cls, spec: str | Sequence[str]) -> Verbalizer:
        """``"negative,positive"`` or ``"0=terrible,1=great"`` (label=word pairs), or a list of such items."""
        items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
        items = [s for s in items if s]
        labels, words = [], []
        for item in items:
            label, eq, word = item.partition("=")
            labels.append(label.strip())
            words.append(word.strip() if eq else label.strip())
        return cls(tuple(labels), tuple(words))

    def index(self, label) -> int:
        """The class index of a label value from data (its name, or an integer index)."""
        key = str(label).strip()
        if key in self.labels:
            return self.labels.index(key)
        if re.fullmatch(r"-?\d+", key) and not any(re.fullmatch(r"-?\d+", x) for x in self.labels):
            i = int(key)
            if 0 <= i < len(self.labels):
                return i
        raise PezError(
            f"label {label!r} in the data is not covered by the verbaliser ({', '.join(self.labels)}): "
            "add it to --labels (LABEL=WORD pairs map data labels to words)"
        )


@dataclass(frozen=True)
class Task:
    """A classification task: template + verbaliser. The answer is the label word right after the template."""

    template: Template
    verbalizer: Verbalizer

    def continuation(self, c: int) -> str:
        """The text that follows the filled template for label ``c``: its word, after a space."""
        before = self.template.text
        word = self.verbalizer.words[c]
        return word if before.endswith((" ", "\n")) else " " + word


def make_task(template: str = DEFAULT_TEMPLATE, labels: str | Sequence[str] = "negative,positive") -> Task:
    """A :class:`Task` from a template string and a verbaliser spec (``"negative,positive"``, ``"0=bad,1=good"``)."""
    return Task(Template(template), Verbalizer.parse(labels))
