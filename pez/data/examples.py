"""Examples and their splits, and the entry points that load a dataset spec.

:class:`Example` and :class:`Splits`; :func:`load_examples` and :func:`load_splits`, which dispatch a spec to the
embedded data (:mod:`pez.data.movies`), a file (:mod:`pez.data.files`) or a Hugging Face dataset
(:mod:`pez.data.huggingface`); seeded, label-stratified splitting (:func:`split_examples`) and per-label caps.

Splits are drawn with a seeded permutation built from SHA-256 hashes, so they do not depend on the version of
Python or numpy.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pez.errors import PezError

SPLITS = ("train", "dev", "test")
HELD_OUT, DEV, SEED = 0.2, 0.1, 0  # the default split of a file: 20% test, 10% dev, seed 0

EMBEDDED_DATA: dict[str, str] = {
    "movie-reviews": (
        "10,566 movie review sentences (Pang & Lee 2005) with human sentiment ratings (Hutto & Gilbert 2014), "
        "positive / negative, fixed splits train 8,066 / dev 500 / test 2,000; built once from the "
        "vaderSentiment 3.3.2 source archive (MIT)"
    ),
}


@dataclass(frozen=True)
class Example:
    """One example: an input and its classification label or completion target.

    Attributes:
        text: the input (for completion tasks the context before the target; may be "").
        label: the classification label as a string (integers in the data become ``str(int)``).
        target: the completion target.
    """

    text: str
    label: str | None = None
    target: str | None = None


@dataclass
class Splits:
    """Train, dev and test examples of one dataset; dev picks the best prompt, test is for the final report."""

    train: list[Example]
    dev: list[Example]
    test: list[Example]
    name: str

    def describe(self) -> dict:
        """A JSON-able summary: the name, the size of each split and its label counts (sorted by label)."""
        parts = {s: getattr(self, s) for s in SPLITS}
        return {
            "name": self.name,
            "sizes": {s: len(ex) for s, ex in parts.items()},
            "labels": {s: label_counts(ex) for s, ex in parts.items()},
        }


def label_counts(examples: Sequence[Example]) -> dict[str, int]:
    """How many examples carry each label, sorted by label (unlabelled examples are not counted)."""
    return dict(sorted(Counter(e.label for e in examples if e.label is not None).items()))


# ---------------------------------------------------------------------------------------------------------------
# Public entry points


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
        return _cap(_load_all(spec, fields), limit)
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


def split_name(split: str | None) -> str | None:
    """The canonical split name (``validation`` is ``dev``), or None for None / ``all``; unknown names are errors."""
    if split is None or split == "all":
        return None
    if split == "validation":
        return "dev"
    if split not in SPLITS:
        raise PezError(f"unknown split {split!r}: use train, dev, test or all")
    return split


def _check_limit(limit) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise PezError(f"limit must be a positive whole number of examples, got {limit!r}")


def _spec(spec) -> str:
    if not isinstance(spec, str | os.PathLike) or not os.fspath(spec).strip():
        raise PezError(f"no data given ({spec!r}): pass movie-reviews, a JSONL/CSV file, or a dataset name")
    return os.fspath(spec)


def _kind(spec: str) -> str:
    """``embedded``, ``file`` or ``hf`` for a spec; a missing file with a data suffix is an error."""
    from pez.data.files import FILE_TYPES

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
    from pez.data.files import read_file
    from pez.data.huggingface import hf_parts
    from pez.data.movies import movie_reviews

    kind = _kind(spec)
    if kind == "embedded":
        return movie_reviews("all")
    if kind == "file":
        return read_file(spec, *fields)
    return [e for part in hf_parts(spec, fields).values() if part is not None for e in part]


def _splits(spec, eval_spec, test_spec, held_out, dev, seed, limit, fields) -> Splits:
    from pez.data.files import read_file
    from pez.data.huggingface import hf_parts, hf_splits
    from pez.data.movies import movie_splits

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
        train=_cap(train, limit),
        dev=_cap(dev_ex if dev_ex is not None else dev_own, limit),
        test=_cap(test_ex if test_ex is not None else test_own, limit),
        name=name,
    )


def _named_part(spec: str, part: str) -> list[Example]:
    """Dev or test data given separately: a whole file, or that split of an embedded or Hugging Face dataset."""
    from pez.data.files import read_file

    if _kind(spec) == "file":
        return read_file(spec)
    return getattr(_splits(spec, None, None, HELD_OUT, DEV, SEED, None, (None, None, None)), part)


def _order(n: int, seed: int, salt: str = "") -> list[int]:
    """A permutation of range(n) that depends only on (seed, salt): indices sorted by a SHA-256 key."""
    return sorted(range(n), key=lambda i: hashlib.sha256(f"{salt}:{seed}:{i}".encode()).digest())


def _quotas(sizes: dict, total: int) -> dict:
    """Split ``total`` over groups in proportion to their sizes (largest remainder, ties by group order)."""
    n = sum(sizes.values())
    if n == 0 or total <= 0:
        return dict.fromkeys(sizes, 0)
    exact = {k: total * v / n for k, v in sizes.items()}
    out = {k: int(x) for k, x in exact.items()}
    rest = sorted(sizes, key=lambda k: -(exact[k] - out[k]))
    for k in rest[: total - sum(out.values())]:
        out[k] += 1
    return out


def _groups(examples: Sequence[Example]) -> dict:
    """Example indices by label (None for unlabelled), in sorted label order."""
    groups: dict = {}
    for i, e in enumerate(examples):
        groups.setdefault(e.label, []).append(i)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0] or "")))


def split_examples(
    examples: Sequence[Example], test: float, dev: float, seed: int = 0
) -> tuple[list[Example], list[Example], list[Example]]:
    """Split examples into (train, dev, test) by fractions, stratified by label, with a seeded permutation.

    Each label keeps its share in every split (up to rounding); the examples of each split come in permuted
    order. A nonzero fraction gets at least one example when there are at least two.
    """
    n = len(examples)
    n_test = int(test * n + 0.5) or int(test > 0 and n >= 2)
    n_dev = int(dev * n + 0.5) or int(dev > 0 and n - n_test >= 2)
    return split_counts(examples, n_test, n_dev, seed)


def split_counts(examples: Sequence[Example], n_test: int, n_dev: int, seed: int):
    """(train, dev, test) with exactly ``n_test`` and ``n_dev`` examples, stratified by label."""
    groups = _groups(examples)
    sizes = {k: len(v) for k, v in groups.items()}
    q_test = _quotas(sizes, n_test)
    q_dev = _quotas({k: sizes[k] - q_test[k] for k in sizes}, n_dev)
    rank = {i: r for r, i in enumerate(_order(len(examples), seed, "split"))}
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for k, idx in groups.items():
        idx = sorted(idx, key=rank.__getitem__)
        a, b = q_test[k], q_test[k] + q_dev[k]
        parts[2].extend(idx[:a])
        parts[1].extend(idx[a:b])
        parts[0].extend(idx[b:])
    train, dev_ex, test_ex = ([examples[i] for i in sorted(p, key=rank.__getitem__)] for p in parts)
    return train, dev_ex, test_ex


def _cap(examples: Sequence[Example], limit: int | None) -> list[Example]:
    """At most ``limit`` examples: the seeded, label-stratified sample :func:`stratified_sample` gives (seed 0),
    so a capped split is the same examples wherever it is capped (``pez evaluate --limit``, ``discover``)."""
    if limit is None or limit >= len(examples):
        return list(examples)
    return stratified_sample(examples, limit, 0)


def stratified_sample(examples: Sequence[Example], n: int | None, seed: int = 0) -> list[Example]:
    """A seeded sample of ``n`` examples in proportion to the labels (None or n >= len: all of them), in a seeded
    order whose every prefix is close to the labels' proportions too.

    Raises:
        PezError: ``n`` is not a positive whole number.
    """
    if n is None:
        n = len(examples)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise PezError(f"a sample size must be a positive whole number of examples, got {n!r}")
    groups = _groups(examples)
    quota = _quotas({k: len(v) for k, v in groups.items()}, min(n, len(examples)))
    rank = {i: r for r, i in enumerate(_order(len(examples), seed, "sample"))}
    picked = {k: sorted(idx, key=rank.__getitem__)[: quota[k]] for k, idx in groups.items()}
    # interleave the labels: the j-th of a label of m picks sits at (j + 0.5) / m of the way through
    keyed = [((j + 0.5) / len(idx), rank[i], i) for idx in picked.values() for j, i in enumerate(idx)]
    return [examples[i] for _, _, i in sorted(keyed)]
