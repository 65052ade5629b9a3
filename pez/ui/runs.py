"""Every run the web UI starts is saved under ``--runs`` as the JSON the command line writes, so closing the
browser loses nothing: a search (``pez invert --out``) or a task report (``pez discover --out``) as one file, a
comparison (``pez compare --out``) as a folder of ``results.md``, ``.csv``, ``.json`` and ``plot.png``, a check by
generating as a folder of ``check.json``, the generations and ``contact_sheet.png``. With ``pez ui --auth``, each
user's runs go in a folder of their own (:func:`user_folder`), listed and served to that user only."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from pathlib import Path

from pez.errors import PezError

FOLDER_RUNS = ("results.json", "check.json")  # the file that describes a run saved as a folder


def user_folder(user: str) -> str:
    """The folder of ``user``'s runs under ``--runs``: the name itself when it is a plain file name, else its
    letters and digits plus a hash of the whole name (so two names never share a folder)."""
    if re.fullmatch(r"[A-Za-z0-9_@-][A-Za-z0-9_.@-]*", user):
        return f"user-{user}"
    plain = re.sub(r"[^A-Za-z0-9_@-]", "_", user)[:40]
    return f"user-{plain}-{hashlib.sha256(user.encode()).hexdigest()[:12]}"


class RunStore:
    """The folder of saved runs; names sort by time: ``YYYYmmdd-HHMMSS-KIND-<six random letters>[.json]``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()

    def prepare(self) -> None:
        """Create the folder (not its parents' parents); a one-line error when it cannot be used."""
        if self.root.exists() and not self.root.is_dir():
            raise PezError(f"--runs {self.root} is a file: give a folder for the saved runs")
        if not self.root.parent.is_dir():
            raise PezError(f"--runs {self.root}: folder {self.root.parent} does not exist (create it first)")
        try:
            self.root.mkdir(exist_ok=True)
        except OSError as e:
            raise PezError(f"--runs {self.root}: cannot create it ({e.strerror})") from None
        if not os.access(self.root, os.W_OK):
            raise PezError(f"--runs {self.root} is not writable")

    def for_user(self, user: str) -> RunStore:
        """The store of ``user``'s runs (:func:`user_folder`), created if missing."""
        store = RunStore(self.root / user_folder(user))
        store.root.mkdir(exist_ok=True)
        return store

    def new_path(self, kind: str, suffix: str = ".json") -> Path:
        """A fresh name for a run of ``kind`` (``distill``, ``invert``, ``discover``, ``compare``)."""
        return self.root / f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}-{secrets.token_hex(3)}{suffix}"

    def save(self, record, kind: str) -> Path:
        """Write a record (:class:`pez.PromptResult`, :class:`pez.TaskReport`) as the CLI's ``--out`` does."""
        path = self.new_path(kind)
        record.save(path)
        return path

    def save_comparison(self, result, folder: Path | None = None) -> dict[str, Path]:
        """Write a :class:`pez.ComparisonResult` as ``pez compare --out`` does; the files' paths by kind."""
        return result.save(folder or self.new_path("compare", ""))

    def recent(self, limit: int = 50) -> list[Path]:
        """The newest saved runs first: result files, the ``results.json`` of comparison folders and the
        ``check.json`` of checks by generating."""
        found = [p for p in self.root.glob("*.json") if p.is_file()]
        found += [p / name for p in self.root.iterdir() for name in FOLDER_RUNS if (p / name).is_file()]
        return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)[:limit]


def describe_run(path: Path) -> str:
    """A few markdown lines about a saved run: what it is, its prompt and score or its table."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if "runs" in data and "summary" in data:  # a comparison
        table = (path.parent / "results.md").read_text(encoding="utf-8") if path.name == "results.json" else ""
        return f"**comparison** `{path.parent.name}`, winner **{data.get('winner', '?')}**\n\n{table}"
    if "scores" in data and "prompt" in data:  # a check by generating
        n, mean = len(data["scores"]), data.get("mean")
        shown = f"mean image-image cosine {mean:.4f} over {n} generations" if isinstance(mean, int | float) else ""
        return f"**check by generating** `{data['prompt']}`: {shown} (seeds from {data.get('seed', 0)})"
    if "accuracy" in data and "prompt" in data:  # a task report
        acc = data["accuracy"]
        held = f"held-out accuracy {acc:.4f} on {data.get('n_test', 0)} examples" if acc is not None else ""
        return f"**task prompt** on {data.get('model', '?')}, {data.get('data', '?')}: `{data['prompt']}` {held}"
    score = data.get("score")
    shown = f"{data.get('score_name', 'score')} {score:.4f}" if isinstance(score, int | float) else ""
    stopped = " (stopped early: the best prompt so far)" if data.get("interrupted") else ""
    return f"**prompt** on {data.get('model', '?')}: `{data.get('text', '')}` {shown}{stopped}"
