"""Datasets for language-model prompt tasks: files, an embedded sentiment set, and Hugging Face datasets.

A dataset is a list of :class:`Example` (an input text with a classification label or a completion target).
Specs name where it comes from:

- ``movie-reviews``: embedded real data, 10,566 movie review sentences (Pang & Lee 2005) with mean human
  sentiment ratings from Hutto & Gilbert (2014, VADER), labelled ``positive`` / ``negative``; fixed splits
  (:mod:`pez.data.movies`).
- a file: ``.jsonl``, ``.json``, ``.csv`` or ``.tsv``, fields found by name (:mod:`pez.data.files`).
- ``hf:NAME[:CONFIG]`` or a bare name that is neither a file nor embedded: a Hugging Face dataset, which needs
  the optional ``datasets`` package and the hub (:mod:`pez.data.huggingface`).

:func:`load_splits` gives train / dev / test (dev picks the best prompt, test is only for the final report);
the types and the splitting live in :mod:`pez.data.examples`, the dispatch by spec in :mod:`pez.data.sources`.
Images (files, folders, lists, Hugging Face image columns) are not tasks data: they live in :mod:`pez.images`.
"""

from pez.data.examples import EMBEDDED_DATA, SPLITS, Example, Splits, label_counts, split_examples, stratified_sample
from pez.data.files import FILE_TYPES, LABEL_FIELDS, TARGET_FIELDS, TEXT_FIELDS, read_file
from pez.data.movies import build_movie_reviews, movie_reviews, parse_snippets
from pez.data.sources import load_examples, load_splits

__all__ = [
    "EMBEDDED_DATA",
    "FILE_TYPES",
    "LABEL_FIELDS",
    "SPLITS",
    "TARGET_FIELDS",
    "TEXT_FIELDS",
    "Example",
    "Splits",
    "build_movie_reviews",
    "label_counts",
    "load_examples",
    "load_splits",
    "movie_reviews",
    "parse_snippets",
    "read_file",
    "split_examples",
    "stratified_sample",
]
