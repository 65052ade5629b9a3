"""Readers for data files: ``.jsonl``, ``.json``, ``.csv`` and ``.tsv``, with field detection by name.

Fields are found among :data:`TEXT_FIELDS`, :data:`LABEL_FIELDS` and :data:`TARGET_FIELDS` (case-insensitive)
unless named; :func:`find_field`, :func:`as_string` and :func:`as_label` are shared with the Hugging Face adapter.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

from pez.data.examples import Example
from pez.errors import PezError

TEXT_FIELDS = ("text", "sentence", "input", "review", "content", "context", "prompt")
LABEL_FIELDS = ("label", "labels", "class", "sentiment", "category")
TARGET_FIELDS = ("target", "completion", "output", "answer")
FILE_TYPES = (".jsonl", ".json", ".csv", ".tsv")


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
        rows = json_lines(path, content)
    elif suffix == ".json":
        rows = _json(path, content)
    else:
        rows = _delimited(path, content, tsv=suffix == ".tsv")
    if not rows:
        raise PezError(f"{path} has a header but no rows: add examples below the header")
    return _examples(path, rows, text_field, label_field, target_field)


def json_lines(path, content: str) -> list[tuple[str, dict]]:
    """Each non-empty line of ``content`` as a JSON object, with where it stands (``line N``); one-line errors."""
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
        return json_lines(path, content)  # JSON lines in a .json file
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


def find_field(path, keys: Sequence[str], given: str | None, names: Sequence[str], what: str) -> str | None:
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
    tf = find_field(path, keys, text_field, TEXT_FIELDS, "text")
    lf = find_field(path, keys, label_field, LABEL_FIELDS, "label")
    gf = find_field(path, keys, target_field, TARGET_FIELDS, "target")
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
        label = as_label(row.get(lf), at) if lf else None
        target = as_string(row.get(gf)) if gf else None
        if label is None and target is None:
            names = " or ".join(f"{f!r}" for f in (lf, gf) if f)
            raise PezError(f"{at} has no {names}: give every example a label or a target")
        if tf is None:
            text = ""
        else:
            value = row.get(tf)
            if value is None:
                raise PezError(f"{at} has no {tf!r} field: give every example its text")
            text = as_string(value, keep_empty=True).strip()
            if not text and target is None:
                raise PezError(f"{at} has an empty {tf!r}: give every example its text, or remove the row")
        out.append(Example(text=text, label=label, target=target))
    return out


def as_string(value, keep_empty: bool = False) -> str | None:
    """A field value as text (lists and dicts as JSON); None when missing, or blank unless ``keep_empty``."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, list | dict) else str(value)
    return text if keep_empty or text.strip() else None


def as_label(value, at: str) -> str | None:
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
