"""Files: image bombs and huge images, one writer per file (symlinks and checkpoints), outputs checked before the
work, and no library noise on stderr (each failed on the code before its fix)."""

import json
import os
import struct
import subprocess
import sys
import zlib

import pytest

import pez
from pez.cli import main
from pez.images import load_image


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_png(path, width: int, height: int, mode: str = "L", rows: bool = True) -> None:
    """A solid black PNG of any size, written row by row (small on disk, never whole in memory); ``rows=False``
    writes the header only (Pillow refuses a bomb from its header, before any pixel)."""
    channels, colour = {"L": (1, 0), "RGB": (3, 2)}[mode]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)))
        z, row, data = zlib.compressobj(1), b"\x00" * (1 + width * channels), []
        for _ in range(height if rows else 0):
            data.append(z.compress(row))
        data.append(z.flush())
        f.write(chunk(b"IDAT", b"".join(data)) + chunk(b"IEND", b""))


@pytest.fixture
def bomb(tmp_path):
    path = tmp_path / "bomb.png"
    write_png(path, 30000, 30000, "RGB", rows=False)
    assert path.stat().st_size < 1000
    return path


def test_a_decompression_bomb_is_one_line(capsys, bomb):
    code, out, err = run_cli(capsys, "invert", str(bomb), "--model", "ViT-B-32/random", "--steps", "1")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"pez: error: too large: {bomb} has 900 megapixels, over the 179 megapixels"), err
    with pytest.raises(pez.PezError, match="too large"):
        load_image(bomb)


def test_a_folder_with_a_bomb_inverts_its_good_image(capsys, bomb, photos, tmp_path, tiny_clip_dir):
    from PIL import Image

    Image.open(photos / "chelsea.png").save(bomb.parent / "good.png")
    out = tmp_path / "r.jsonl"
    argv = ["invert-dataset", str(bomb.parent), "--out", str(out), "--model", tiny_clip_dir, "--device", "cpu",
            "--prompt-len", "3", "--steps", "2", "--no-judge", "--quiet"]  # fmt: skip
    for _ in range(2):  # a rerun tries the bomb again and skips it again; the good image stays done
        code, _, err = run_cli(capsys, *argv)
        assert code == 0, err
    rows = {os.path.basename(r["image"]): r for r in map(json.loads, out.read_text().splitlines())}
    assert set(rows) == {"bomb.png", "good.png"} and "text" in rows["good.png"]
    assert rows["bomb.png"]["skipped"].startswith(f"too large: {bomb} has 900 megapixels")


MEASURE = """
import json, resource, sys, warnings
warnings.simplefilter("error")  # a raw library warning fails the run
from PIL import Image
from pez.images.load import load_image
Image.new("RGB", (8, 8)).save(sys.argv[1] + ".small.png")
load_image(sys.argv[1] + ".small.png")  # every import done: what grows next is the big image's
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
im = load_image(sys.argv[1])
grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({"size": im.size, "mode": im.mode, "grew_mb": grew}))
"""


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_a_huge_image_is_downscaled_once_with_bounded_memory(tmp_path, kind):
    """100 megapixels (PNG; Pillow warns past 89) or 81 (JPEG): no raw warning, one line that says it is
    downscaled, and the memory of one decode at most (PNG: 1 byte a pixel in L; JPEG: decoded at a quarter scale)."""
    from PIL import Image

    path = tmp_path / f"big.{kind}"
    if kind == "png":
        write_png(path, 10000, 10000, "L")
        bound = 100 + 60  # MB: the decoded L image once, and a little
    else:
        Image.new("L", (9000, 9000), 128).save(path, quality=50)
        bound = 40  # MB: decoded at 2250 x 2250 by the draft
    run = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout)
    assert max(got["size"]) == 2048 and got["mode"] == "RGB"
    assert got["grew_mb"] < bound, got


def test_the_downscale_is_said_once(tmp_path, caplog):
    from PIL import Image

    from pez.images import load

    load._said.clear()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (5000, 100)).save(tmp_path / name)
        assert load_image(tmp_path / name).size == (2048, 41)
    said = [r.getMessage() for r in caplog.records if "downscaled" in r.getMessage() and r.levelname == "WARNING"]
    assert said == [f"{tmp_path / 'a.png'} is 5000x100 pixels: downscaled to 2048x41 as it loads (the model reads a "
                    "few hundred pixels; pez keeps at most 2048 a side)"]  # fmt: skip


def test_a_huge_image_from_a_dataset_loader_is_downscaled_too():
    from PIL import Image

    from pez.images.sources import ImageItem

    item = ImageItem("hf:x:train:0", lambda: Image.new("P", (6000, 3000)))
    assert item.load().size == (2048, 1024)


HOLD = ("import sys, time; from pez.files import writer_lock\n"
        "with writer_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(600)")  # fmt: skip


@pytest.fixture
def holder():
    """Hold the writer lock of a path in another process (as a run writing it would); killed at the end."""
    procs = []

    def hold(path):
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_symlink_to_an_output_takes_the_same_lock(capsys, holder, photos, tmp_path, tiny_clip_dir):
    real, link = tmp_path / "sym.jsonl", tmp_path / "link.jsonl"
    link.symlink_to(real.name)  # dangling until the first run writes sym.jsonl
    other = holder(real)
    argv = ["invert-dataset", str(photos), "--out", str(link), "--model", tiny_clip_dir, "--device", "cpu",
            "--prompt-len", "3", "--steps", "2", "--no-judge", "--quiet"]  # fmt: skip
    code, _, err = run_cli(capsys, *argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and lines == [f"pez: error: another pez is writing {real} (pid {other.pid}; {link} links to "
                                   "it): wait for it to end, or give another --out"], err  # fmt: skip
    assert not real.exists()


def test_two_searches_on_one_checkpoint_are_refused(capsys, holder, tmp_path):
    ck = tmp_path / "same.pt"
    other = holder(ck)
    argv = ["invert", "--model", "minilm", "--text", "a horse", "--prompt-len", "3", "--steps", "2",
            "--no-judge", "--checkpoint", str(ck)]  # fmt: skip
    code, _, err = run_cli(capsys, *argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and lines == [f"pez: error: another pez is writing {ck} (pid {other.pid}): wait for it to end, "
                                   "or give another --checkpoint"], err  # fmt: skip
    assert not ck.exists()


UNWRITABLE = "/proc/pez-out"  # no one, root included, can create a file here


@pytest.mark.parametrize(
    "argv",
    [
        ["invert", "--model", "minilm", "--text", "a horse", "--out", UNWRITABLE + ".json"],
        ["invert", "--model", "minilm", "--text", "a horse", "--checkpoint", UNWRITABLE + ".pt"],
        ["invert-dataset", "{photos}", "--out", UNWRITABLE + ".jsonl"],
        ["discover", "--out", UNWRITABLE + ".json"],
        ["compress", "--instruction", "Answer in French.", "--out", UNWRITABLE + ".json"],
        ["evaluate", "--prompt", "Review:", "--out", UNWRITABLE + ".json"],
        ["compare", "--methods", "pez", "--text", "a horse", "--model", "minilm", "--out", UNWRITABLE],
        ["evaluate-images", "{photos}/notes.txt", "--out", UNWRITABLE],
        ["gist", "train", "--out", UNWRITABLE],
        ["gist", "compare", "--model", "smollm2", "--out", UNWRITABLE + ".json"],
    ],
)
def test_an_output_that_cannot_be_created_is_refused_before_the_work(capsys, monkeypatch, photos, argv):
    import pez.models

    def no_load(*a, **k):
        raise AssertionError("a model was loaded before the output was checked")

    monkeypatch.setattr(pez.models, "load_model", no_load)
    monkeypatch.setattr(pez.models, "load_lm", no_load)
    code, _, err = run_cli(capsys, *[a.format(photos=photos) for a in argv])
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and UNWRITABLE in lines[0] and "cannot be written" in lines[0], err


def test_loading_models_from_the_python_api_prints_nothing():
    """No "Loading weights" bars or library notes from pez's loaders; ``PEZ_VERBOSE=1`` brings the bars back."""
    code = "from pez.models import load_lm, load_model; load_lm('smollm2'); load_model('minilm')"
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and quiet.stderr.strip() == "", quiet.stderr[-1000:]
    env = {**os.environ, "PEZ_VERBOSE": "1"}
    loud = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert "Loading weights" in loud.stderr
