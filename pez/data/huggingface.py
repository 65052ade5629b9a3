"""The Hugging Face ``datasets`` adapter (optional): ``hf:NAME[:CONFIG]`` or a bare dataset name.

Loads a dataset from the hub, maps its columns to :class:`~pez.data.examples.Example` (ClassLabel ids become
names, hidden labels are dropped) and builds train / dev / test from its own splits, carving what it lacks.
"""

from __future__ import annotations

import logging

from pez.data.examples import EMBEDDED_DATA, Example, split_examples
from pez.data.files import LABEL_FIELDS, TARGET_FIELDS, TEXT_FIELDS, as_label, as_string, find_field
from pez.errors import PezError

logger = logging.getLogger(__name__)

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


def hf_parts(spec: str, fields) -> dict[str, list[Example] | None]:
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
    tf = find_field(where, keys, text_field, TEXT_FIELDS, "text")
    lf = find_field(where, keys, label_field, LABEL_FIELDS, "label")
    gf = find_field(where, keys, target_field, TARGET_FIELDS, "target")
    if (lf is None and gf is None) or (tf is None and gf is None):
        raise PezError(f"{where}: cannot tell its text and label columns among {', '.join(keys)}: convert it to JSONL")
    n = len(ds)
    texts = list(ds[tf]) if tf else [""] * n
    targets = [as_string(t) for t in ds[gf]] if gf else [None] * n
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
        label = as_label(label, f"{where}, row {i}")
        if label is None and target is None:
            continue
        out.append(
            Example(
                text=as_string(text, keep_empty=True).strip() if text is not None else "", label=label, target=target
            )
        )
    return out


def hf_splits(spec, parts, held_out, dev, seed, need_dev, need_test):
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
