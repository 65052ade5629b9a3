"""The entry points that load a dataset spec: :func:`load_examples` and :func:`load_splits` dispatch a spec to
the embedded data (:mod:`pez.data.movies`), a file (:mod:`pez.data.files`) or a Hugging Face dataset
(:mod:`pez.data.huggingface`)."""

from __future__ import annotations

import os
from pathlib import Path

from pez.data.examples import DEV, EMBEDDED_DATA, HELD_OUT, SEED, Example, Splits, cap, split_examples, split_name
from pez.data.files import FILE_TYPES, read_file
from pez.data.huggingface import hf_parts, hf_splits
from pez.data.movies import movie_reviews, movie_splits
from pez.errors import PezError


def load_examples(
    spec: str,
    split: str | None = None,
    text_field: str | None = None,
    label_field: str | None = None,
    target_field: str | None = None,
    limit: int | None = None,
) -> list[Example]:
    """Load the examples of a dataset spec.

    Args:
        spec: ``movie-reviews``, a ``.jsonl`` / ``.json`` / ``.csv`` / ``.tsv`` file, or a Hugging Face dataset
            (``hf:NAME[:CONFIG]`` or a bare name).
        split: ``train``, ``dev`` (or ``validation``), ``test``, or None / ``all`` for every example. A split of a
            file is the one :func:`load_splits` draws with its defaults, so ``test`` is the data a search on
            that file never saw.
        text_field, label_field, target_field: field names; by default found among :data:`TEXT_FIELDS`,
            :data:`LABEL_FIELDS` and :data:`TARGET_FIELDS` (case-insensitive).
        limit: at most this many examples, chosen deterministically and in proportion to the labels.

    Returns:
        The examples, in a fixed order.
    """
    spec, part = _spec(spec), split_name(split)
    _check_limit(limit)
    fields = (text_field, label_field, target_field)
    if part is None:
        return cap(_load_all(spec, fields), limit)
    return getattr(_splits(spec, None, None, HELD_OUT, DEV, SEED, limit, fields), part)


def load_splits(
    spec: str,
    eval_spec: str | None = None,
    test_spec: str | None = None,
    held_out: float = HELD_OUT,
    dev: float = DEV,
    seed: int = SEED,
    limit: int | None = None,
) -> Splits:
    """Train / dev / test examples of a dataset.

    ``movie-reviews`` has its own fixed splits, and a Hugging Face dataset its own where it has them. A file is
    split with a seeded permutation, stratified by label: ``held_out`` of it goes to test, ``dev`` to dev, the
    rest to train.

    Args:
        spec: the data (see :func:`load_examples`).
        eval_spec: dev data instead of a split of ``spec`` (a whole file, or the dev split of a named dataset).
        test_spec: test data instead of a split of ``spec`` (a whole file, or the test split of a named dataset).
        held_out: fraction of a file for test.
        dev: fraction of a file for dev.
        seed: seed of the permutation.
        limit: at most this many examples per split (deterministic, stratified by label).
    """
    eval_spec = _spec(eval_spec) if eval_spec is not None else None
    test_spec = _spec(test_spec) if test_spec is not None else None
    return _splits(_spec(spec), eval_spec, test_spec, held_out, dev, seed, limit, (None, None, None))


# ---------------------------------------------------------------------------------------------------------------
# Specs, splits and caps


def _check_limit(limit) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise PezError(f"limit must be a positive whole number of examples, got {limit!r}")


def _spec(spec) -> str:
    if not isinstance(spec, str | os.PathLike) or not os.fspath(spec).strip():
        raise PezError(f"no data given ({spec!r}): pass movie-reviews, a JSONL/CSV file, or a dataset name")
    return os.fspath(spec)


def _kind(spec: str) -> str:
    """``embedded``, ``file`` or ``hf`` for a spec; a missing file with a data suffix is an error."""
    if spec in EMBEDDED_DATA:
        return "embedded"
    if spec.startswith("hf:"):
        return "hf"
    path = Path(spec).expanduser()
    if path.exists():
        return "file"
    if path.suffix.lower() in FILE_TYPES:
        raise PezError(f"data file {spec} not found: check the path")
    return "hf"


def _load_all(spec: str, fields) -> list[Example]:
    kind = _kind(spec)
    if kind == "embedded":
        return movie_reviews("all")
    if kind == "file":
        return read_file(spec, *fields)
    return [e for part in hf_parts(spec, fields).values() if part is not None for e in part]


def _splits(spec, eval_spec, test_spec, held_out, dev, seed, limit, fields) -> Splits:
    for what, frac in (("held_out", held_out), ("dev", dev)):
        if isinstance(frac, bool) or not isinstance(frac, int | float) or not 0 <= frac < 1:
            raise PezError(f"{what} must be a fraction in [0, 1), got {frac!r}")
    if held_out + dev >= 1:
        raise PezError(f"held_out + dev is {held_out + dev:g}: leave some of the data for training (sum below 1)")
    _check_limit(limit)
    kind = _kind(spec)
    dev_ex = _named_part(eval_spec, "dev") if eval_spec else None
    test_ex = _named_part(test_spec, "test") if test_spec else None
    if kind == "embedded":
        own = movie_splits()
        train, dev_own, test_own = own.train, own.dev, own.test
    elif kind == "hf":
        parts = hf_parts(spec, fields)
        train, dev_own, test_own = hf_splits(spec, parts, held_out, dev, seed, dev_ex is None, test_ex is None)
    else:
        rows = read_file(spec, *fields)
        test_frac = 0.0 if test_ex is not None else held_out
        dev_frac = 0.0 if dev_ex is not None else dev
        train, dev_own, test_own = split_examples(rows, test_frac, dev_frac, seed)
        if not train:
            raise PezError(
                f"{spec} has only {len(rows)} examples, too few to split: give more data, or pass dev and test data"
            )
    name = spec
    extra = [f"{s}: {x}" for s, x in (("dev", eval_spec), ("test", test_spec)) if x]
    if extra:
        name += f" ({', '.join(extra)})"
    return Splits(
        train=cap(train, limit),
        dev=cap(dev_ex if dev_ex is not None else dev_own, limit),
        test=cap(test_ex if test_ex is not None else test_own, limit),
        name=name,
    )


def _named_part(spec: str, part: str) -> list[Example]:
    """Dev or test data given separately: a whole file, or that split of an embedded or Hugging Face dataset."""
    if _kind(spec) == "file":
        return read_file(spec)
    return getattr(_splits(spec, None, None, HELD_OUT, DEV, SEED, None, (None, None, None)), part)
