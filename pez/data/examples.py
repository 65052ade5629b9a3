"""The types every data source returns and the splitting they share: :class:`Example`, :class:`Splits`, seeded
label-stratified splitting (:func:`split_examples`) and per-label caps. The sources (:mod:`pez.data.movies`,
:mod:`pez.data.files`, :mod:`pez.data.huggingface`) import these; :mod:`pez.data.sources` dispatches a spec to
them, so nothing here imports a source.

Splits are drawn with a seeded permutation built from SHA-256 hashes, so they do not depend on the version of
Python or numpy.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

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
# Splits and caps


def split_name(split: str | None) -> str | None:
    """The canonical split name (``validation`` is ``dev``), or None for None / ``all``; unknown names are errors."""
    if split is None or split == "all":
        return None
    if split == "validation":
        return "dev"
    if split not in SPLITS:
        raise PezError(f"unknown split {split!r}: use train, dev, test or all")
    return split


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


def cap(examples: Sequence[Example], limit: int | None) -> list[Example]:
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
