"""Text: tokenizer adapters, allowed-token masks, the one projection, and task templates."""

from pez.text.projection import Projector
from pez.text.templates import DEFAULT_TEMPLATE, Task, Template, Verbalizer
from pez.text.tokenizers import ClipTokenizer, HFTokenizer
from pez.text.vocab import VocabOptions, Vocabulary

__all__ = [
    "DEFAULT_TEMPLATE",
    "ClipTokenizer",
    "HFTokenizer",
    "Projector",
    "Task",
    "Template",
    "Verbalizer",
    "VocabOptions",
    "Vocabulary",
]
